// The visualizer's pure parts: definition -> ELK graph, state value -> active state ids.
import { describe, expect, it } from "vitest";
import { buildChartGraph, lowestCommonAncestor, takenEdges, transitionLabel, type ElkNode } from "../../ui/lib/graph.js";
import { activeIds } from "../../ui/lib/active.js";
import type { Def, StateNodeDef } from "../../ui/lib/types.js";

function node(id: string, type: StateNodeDef["type"], extra: Partial<StateNodeDef> = {}): StateNodeDef {
  return { id, key: id.split(".").pop()!, type, states: {}, transitions: [], ...extra };
}

// lease-like: candidate -> leader.{holding, renewing}; a parallel "watch" with two regions.
const def: Def = {
  id: "m",
  root: node("m", "compound", {
    initial: "candidate",
    transitions: [{ kind: "on", event: "STOP", targets: ["m.stopped"] }],
    states: {
      candidate: node("m.candidate", "atomic", {
        transitions: [
          { kind: "on", event: "xstate.done.actor.acquire", guard: "acquired", targets: ["m.leader"] },
          { kind: "after", event: "xstate.after.retry.m.candidate", delay: "retry", targets: ["m.candidate"], reenter: true },
        ],
      }),
      leader: node("m.leader", "compound", {
        initial: "holding",
        transitions: [{ kind: "on", event: "RESIGN", targets: ["m.candidate"] }],
        states: {
          holding: node("m.leader.holding", "atomic", {
            transitions: [
              { kind: "after", event: "xstate.after.500.m.leader.holding", delay: 500, targets: ["m.leader.renewing"] },
              { kind: "on", event: "NOTE", targets: [], actions: ["log"] },
            ],
          }),
          renewing: node("m.leader.renewing", "atomic", {
            transitions: [
              { kind: "always", event: "", guard: "expired", targets: ["m.candidate"] },
              { kind: "on", event: "xstate.done.actor.renew", targets: ["m.leader.holding"] },
            ],
          }),
        },
      }),
      watch: node("m.watch", "parallel", {
        states: {
          a: node("m.watch.a", "compound", { initial: "x", states: { x: node("m.watch.a.x", "atomic") } }),
          b: node("m.watch.b", "compound", {
            initial: "y",
            states: {
              y: node("m.watch.b.y", "atomic", { transitions: [{ kind: "on", event: "GO", targets: ["m.watch.a.x"] }] }),
            },
          }),
        },
      }),
      stopped: node("m.stopped", "final"),
    },
  }),
};

function find(n: ElkNode, id: string): ElkNode | undefined {
  if (n.id === id) return n;
  for (const c of n.children ?? []) {
    const f = find(c, id);
    if (f) return f;
  }
  return undefined;
}

describe("definition -> layout graph", () => {
  const g = buildChartGraph(def);

  it("nests compound and parallel states as containers, with an initial dot per compound state", () => {
    expect(g.graph.id).toBe("m");
    expect(g.graph.layoutOptions?.["elk.hierarchyHandling"]).toBe("INCLUDE_CHILDREN");
    expect(g.graph.children?.map((c) => c.id)).toEqual(["m.__initial", "m.candidate", "m.leader", "m.watch", "m.stopped"]);
    expect(find(g.graph, "m.leader")?.children?.map((c) => c.id)).toEqual(["m.leader.__initial", "m.leader.holding", "m.leader.renewing"]);
    const watch = find(g.graph, "m.watch")!;
    // a parallel state has no initial dot; its regions are stacked across the chart's flow
    expect(watch.children?.map((c) => c.id)).toEqual(["m.watch.a", "m.watch.b"]);
    expect(watch.layoutOptions?.["elk.direction"]).toBe("DOWN");
    expect(g.nodes.get("m.watch")?.type).toBe("parallel");
    expect(find(g.graph, "m.watch.a")?.children?.map((c) => c.id)).toEqual(["m.watch.a.__initial", "m.watch.a.x"]);
    // leaves have a size; containers are sized by ELK
    expect(find(g.graph, "m.candidate")?.width).toBeGreaterThan(0);
    expect(find(g.graph, "m.leader")?.width).toBeUndefined();
  });

  it("labels on, always and after edges with their guards", () => {
    const labels = g.edges.filter((e) => e.kind !== "initial").map((e) => `${e.source}->${e.target} ${e.kind}: ${e.label}`);
    expect(labels).toEqual([
      "m.candidate->m.leader on: done: acquire [acquired]",
      "m.candidate->m.candidate after: after retry",
      "m.leader->m.candidate on: RESIGN",
      "m.leader.holding->m.leader.renewing after: after 500 ms",
      "m.leader.holding->m.leader.holding on: NOTE",
      "m.leader.renewing->m.candidate always: always [expired]",
      "m.leader.renewing->m.leader.holding on: done: renew",
      "m.watch.b.y->m.watch.a.x on: GO",
    ]);
    expect(g.edges.find((e) => e.label === "NOTE")?.internal).toBe(true);
    expect(transitionLabel({ kind: "always", event: "", targets: [] })).toBe("always");
    // the root's own transitions have no box to leave from: listed beside the chart
    expect(g.rootTransitions).toEqual([{ label: "STOP", targets: ["m.stopped"] }]);
  });

  it("places every edge in the lowest common ancestor of its ends", () => {
    const where = (label: string) => g.edges.find((e) => e.label === label)!.container;
    expect(where("done: acquire [acquired]")).toBe("m"); // siblings under the root
    expect(where("after 500 ms")).toBe("m.leader"); // inside leader
    expect(where("always [expired]")).toBe("m"); // leaves leader for a sibling of leader
    expect(where("GO")).toBe("m.watch"); // across the regions of a parallel state
    expect(where("after retry")).toBe("m"); // a self-loop lives in the parent
    expect(where("NOTE")).toBe("m.leader");
    // and the ELK graph has each edge in that container's edge list
    for (const e of g.edges) {
      expect(find(g.graph, e.container)?.edges?.some((x) => x.id === e.id), `${e.id} in ${e.container}`).toBe(true);
    }
    // initial dots point at the initial child, inside their compound state
    const init = g.edges.find((e) => e.source === "m.leader.__initial")!;
    expect([init.target, init.container]).toEqual(["m.leader.holding", "m.leader"]);
  });

  it("lowestCommonAncestor: a compound state and its own child meet in the compound state", () => {
    expect(lowestCommonAncestor("m.leader", "m.leader.holding", g.nodes)).toBe("m.leader");
    expect(lowestCommonAncestor("m.leader.holding", "m.leader", g.nodes)).toBe("m.leader");
    expect(lowestCommonAncestor("m.watch.a.x", "m.watch.b.y", g.nodes)).toBe("m.watch");
  });

  it("marks the edge a step took (by source, target and event)", () => {
    const taken = takenEdges(g, [{ source: "m.leader.holding", targets: ["m.leader.renewing"], event: "xstate.after.500.m.leader.holding" }]);
    expect([...taken].map((id) => g.edges.find((e) => e.id === id)!.label)).toEqual(["after 500 ms"]);
    const acquired = takenEdges(g, [{ source: "m.candidate", targets: ["m.leader"], event: "xstate.done.actor.acquire" }]);
    expect([...acquired].map((id) => g.edges.find((e) => e.id === id)!.label)).toEqual(["done: acquire [acquired]"]);
    expect(takenEdges(g, [{ source: "m.candidate", targets: ["m.leader"], event: "OTHER" }]).size).toBe(0);
  });
});

describe("state value -> active ids", () => {
  it("atomic, nested and parallel values", () => {
    expect([...activeIds("m", "candidate")]).toEqual(["m", "m.candidate"]);
    expect([...activeIds("m", { leader: "holding" })]).toEqual(["m", "m.leader", "m.leader.holding"]);
    expect([...activeIds("m", { watch: { a: "x", b: "y" } })].sort()).toEqual(
      ["m", "m.watch", "m.watch.a", "m.watch.a.x", "m.watch.b", "m.watch.b.y"].sort(),
    );
    expect([...activeIds("m", undefined)]).toEqual(["m"]);
  });
});
