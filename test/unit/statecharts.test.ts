// Statechart export (src/inspect/definition.ts, registry.ts) from the real definitions, and the
// inspection v2 messages (publisher.ts) an actor produces.
import { describe, expect, it } from "vitest";
import { createActor, createMachine, fromPromise, setup } from "xstate";
import type { NatsConnection } from "@nats-io/nats-core";
import { describeMachine, definitionHash, stateIds, toDot, toMermaid, type StateNodeDef } from "../../src/inspect/definition.js";
import { STATECHARTS, statecharts } from "../../src/inspect/registry.js";
import { inspector, InspectMessage } from "../../src/inspect/publisher.js";
import { taskMachine } from "../../src/agent/task.machine.js";
import { leaseMachine } from "../../src/engine/lease.machine.js";
import { Names } from "../../src/protocol/names.js";
import { FlotillaError } from "../../src/protocol/errors.js";

function node(root: StateNodeDef, path: string[]): StateNodeDef {
  return path.reduce((n, k) => n.states[k]!, root);
}

describe("statechart export", () => {
  it("has every actor kind a daemon runs", () => {
    expect(Object.keys(STATECHARTS).sort()).toEqual(["agent", "engine", "heart", "lease", "machine", "monitor", "task", "task-manager"]);
    for (const s of statecharts()) {
      expect(s.hash).toMatch(/^[0-9a-f]{16}$/);
      expect(s.definition.root.id).toBe(s.definition.id);
    }
  });

  it("keeps the task chart's always transitions (toJSON drops them) with their guards", () => {
    const d = describeMachine(taskMachine);
    const accepted = node(d.root, ["accepted"]);
    expect(accepted.transitions).toEqual([
      { kind: "always", event: "", guard: "hasRunToAdopt", targets: ["task.adopting"], actions: [] },
      { kind: "always", event: "", targets: ["task.preparing"], actions: [] },
    ]);
    expect(accepted.entry).toEqual(["enter"]);
    expect(d.root.initial).toBe("accepted");
    expect(node(d.root, ["preparing"]).type).toBe("compound");
    expect(node(d.root, ["complete"]).type).toBe("final");
  });

  it("names delayed transitions by their delay, invoked actors by src, without XState's own raise/cancel", () => {
    const d = describeMachine(leaseMachine);
    const renewing = node(d.root, ["leader", "renewing"]);
    expect(renewing.invoke).toEqual([{ id: "renew", src: "renew" }]);
    expect(renewing.transitions.find((t) => t.kind === "after")).toMatchObject({ delay: "renewTimeout", targets: ["lease.follower"], actions: ["noteTimeout", "forgetLease"] });
    expect(renewing.entry).toEqual([]);
    expect(renewing.exit).toEqual([]);
    const candidate = node(d.root, ["candidate"]);
    expect(candidate.transitions.map((t) => [t.event, t.guard, t.targets])).toEqual([
      ["VACANT", undefined, []],
      ["xstate.done.actor.acquire", "acquired", ["lease.leader"]],
      ["xstate.done.actor.acquire", undefined, ["lease.follower"]],
      ["xstate.error.actor.acquire", undefined, ["lease.follower"]],
    ]);
    expect(d.root.transitions).toEqual([{ kind: "on", event: "RESIGN", targets: ["lease.stopped"], actions: [] }]);
    expect(d.root.invoke).toEqual([{ id: "vacancy", src: "vacancy" }]);
    const follower = node(d.root, ["follower"]);
    expect(follower.transitions.map((t) => [t.kind, t.kind === "after" ? t.delay : t.event, t.guard, t.targets])).toEqual([
      ["on", "VACANT", undefined, ["lease.candidate"]],
      ["after", "retry", undefined, ["lease.candidate"]],
      ["always", "", "vacant", ["lease.candidate"]],
    ]);
    expect(stateIds(d.root)).toContain("lease.leader.releasing");
  });

  it("draws parallel states and hashes by content: the same for a .provide()d copy, different for another chart", () => {
    const m = createMachine({ id: "p", type: "parallel", states: { a: { initial: "x", states: { x: { on: { GO: "y" } }, y: {} } }, b: {} } });
    const d = describeMachine(m);
    expect(d.root.type).toBe("parallel");
    expect(d.root.initial).toBeUndefined();
    expect(node(d.root, ["a"]).initial).toBe("x");
    expect(definitionHash(taskMachine)).toBe(definitionHash(taskMachine.provide({ actors: { prepare: fromPromise<void>(async () => undefined) } })));
    expect(definitionHash(taskMachine)).not.toBe(definitionHash(leaseMachine));
  });

  it("prints mermaid and dot text", () => {
    const d = describeMachine(leaseMachine);
    const mm = toMermaid(d);
    expect(mm).toMatch(/^stateDiagram-v2\n/);
    expect(mm).toContain("lease_candidate --> lease_leader: xstate.done.actor.acquire [acquired]");
    expect(mm).toContain("lease_leader_holding --> lease_leader_renewing: after renewEvery");
    const dot = toDot(d);
    expect(dot).toContain('"lease.follower" -> "lease.candidate" [label="after retry"];');
    expect(dot).toContain('subgraph "cluster_lease.leader"');
  });

  it("refuses an unknown actor or hash with unknown_actor", () => {
    for (const f of [{ actor: "nope" }, { hash: "0000000000000000" }]) {
      try {
        statecharts(f);
        throw new Error("accepted");
      } catch (e) {
        expect((e as FlotillaError).code).toBe("unknown_actor");
      }
    }
  });
});

describe("inspection v2 messages", () => {
  function capture() {
    const sent: { subject: string; msg: InspectMessage }[] = [];
    const nc = { isClosed: () => false, publish: (subject: string, data: string) => sent.push({ subject, msg: InspectMessage.parse(JSON.parse(data)) }) };
    return { sent, nc: nc as unknown as NatsConnection };
  }

  it("publishes each step with a gapless seq, the definition hash, the event and the transitions taken", () => {
    const { sent, nc } = capture();
    const m = setup({ guards: { yes: () => true } }).createMachine({
      id: "toy",
      initial: "a",
      states: { a: { always: { guard: "yes", target: "b" } }, b: { on: { GO: "c" } }, c: { type: "final" } },
    });
    const actor = createActor(m, { id: "hello.service", inspect: inspector(nc, new Names("pfx"), "m1", "task") });
    actor.start();
    actor.send({ type: "GO" });
    expect(sent.map((s) => s.subject)).toEqual(["pfx.inspect.m1.task.hello.service", "pfx.inspect.m1.task.hello.service"]);
    const [first, second] = sent.map((s) => s.msg);
    expect(first).toMatchObject({ v: 2, id: "task:hello.service", unit: "hello.service", seq: 1, event: "xstate.init", value: "b", defHash: definitionHash(m) });
    expect(first!.transitions).toEqual([{ source: "toy.a", targets: ["toy.b"], event: "" }]);
    expect(second).toMatchObject({ seq: 2, event: "GO", value: "c", status: "done", transitions: [{ source: "toy.b", targets: ["toy.c"], event: "GO" }] });
  });

  it("escapes a template unit's @ in the subject and keeps one actor's seq across attempts", () => {
    const { sent, nc } = capture();
    const m = createMachine({ id: "t", initial: "x", states: { x: {} } });
    const ins = inspector(nc, new Names("pfx"), "m1", "task");
    createActor(m, { id: "web@1.service", inspect: ins }).start();
    createActor(m, { id: "web@1.service", inspect: ins }).start();
    expect(sent.map((s) => [s.subject, s.msg.seq])).toEqual([
      ["pfx.inspect.m1.task.web=401.service", 1],
      ["pfx.inspect.m1.task.web=401.service", 2],
    ]);
  });

  it("singleton actors publish on their role's subject, invoked children are not published on their own", () => {
    const { sent, nc } = capture();
    const m = setup({ actors: { child: createMachine({ id: "kid", initial: "k", states: { k: {} } }) } }).createMachine({
      id: "parent",
      initial: "p",
      states: { p: { invoke: { src: "child" } } },
    });
    createActor(m, { inspect: inspector(nc, new Names("pfx"), "m1", "heart") }).start();
    expect(sent.map((s) => [s.subject, s.msg.id, s.msg.value])).toEqual([["pfx.inspect.m1.heart", "heart", "p"]]);
  });
});
