// Path coverage of the heart and monitor statecharts (xstate/graph's TestModel): every
// transition is listed and must be taken by a generated path; every path is replayed on a real
// actor whose effects are deferred promises settled by the path's xstate.done/error.actor.*
// events and whose delays run on a SimulatedClock.
import { describe, expect, test } from "vitest";
import { createActor, fromPromise, SimulatedClock, type AnyStateMachine } from "xstate";
import { TestModel } from "xstate/graph";
import { heartMachine } from "../../src/machine/heart.machine.js";
import { monitorMachine } from "../../src/machine/monitor.machine.js";

type AnyEvent = { type: string; [k: string]: unknown };
type Snap = { value: unknown; status: string; children: Record<string, unknown>; can(e: unknown): boolean };
type Step = { event: AnyEvent; state: Snap };

const stateKey = (v: unknown): string => (typeof v === "string" ? v : JSON.stringify(v));

function paths(machine: AnyStateMachine, events: AnyEvent[], input: unknown): Step[][] {
  const eventsFor = (s: Snap) =>
    s.status !== "active"
      ? []
      : events.filter((e) => {
          const m = /^xstate\.(done|error)\.actor\.(\w+)$/.exec(e.type);
          if (m) return s.children[m[2]!] !== undefined;
          if (e.type.startsWith("xstate.after.")) return e.type.endsWith(`.${stateKey(s.value)}`);
          return true;
        });
  const serializeState = (s: Snap) => stateKey(s.value);
  const model = new TestModel(machine as never, { events: eventsFor as never, serializeState: serializeState as never, input } as never);
  const shortest = new Map<string, Step[]>();
  for (const p of model.getShortestPaths({ allowDuplicatePaths: true })) shortest.set(serializeState(p.state as never), p.steps as never);
  const adj = model.getAdjacencyMap() as unknown as Record<string, { state: Snap; transitions: Record<string, Step> }>;
  const out: Step[][] = [];
  for (const [from, v] of Object.entries(adj)) {
    for (const t of Object.values(v.transitions)) {
      if (!v.state.can(t.event)) continue;
      out.push([...shortest.get(from)!, t]);
    }
  }
  return out;
}

function edges(all: Step[][], label: (e: AnyEvent) => string = (e) => e.type): Set<string> {
  const seen = new Set<string>();
  for (const steps of all) {
    let prev: Snap | undefined;
    for (const s of steps) {
      if (prev) seen.add(`${stateKey(prev.value)} --${label(s.event)}--> ${stateKey(s.state.value)}`);
      prev = s.state;
    }
  }
  return seen;
}

async function replay(machine: AnyStateMachine, actors: string[], input: unknown, steps: Step[]): Promise<void> {
  const pending = new Map<string, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  const provided = Object.fromEntries(
    actors.map((id) => [id, fromPromise<unknown, unknown>(() => new Promise((resolve, reject) => pending.set(id, { resolve, reject })))]),
  );
  const clock = new SimulatedClock();
  const actor = createActor(machine.provide({ actors: provided } as never), { input, clock } as never).start();
  for (const step of steps) {
    const ev = step.event;
    const m = /^xstate\.(done|error)\.actor\.(\w+)$/.exec(ev.type);
    if (m) {
      const d = pending.get(m[2]!);
      expect(d, `a pending ${m[2]} for ${ev.type}`).toBeDefined();
      pending.delete(m[2]!);
      if (m[1] === "done") d!.resolve(undefined);
      else d!.reject(new Error("effect failed"));
    } else if (ev.type.startsWith("xstate.after.")) {
      clock.increment(60_000);
    } else if (ev.type !== "xstate.init") {
      actor.send(ev as never);
    }
    for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
    expect(actor.getSnapshot().value).toEqual(step.state.value);
  }
  actor.stop();
}

describe("monitor statechart", () => {
  const EVENTS: AnyEvent[] = [
    { type: "BEAT_OK" },
    { type: "BEAT_FAILED", failures: 1 },
    { type: "BEAT_FAILED", failures: 3 },
    { type: "xstate.done.actor.stopComponents" },
    { type: "xstate.error.actor.stopComponents" },
    { type: "xstate.done.actor.startComponents" },
    { type: "xstate.error.actor.startComponents" },
  ];
  const label = (e: AnyEvent) => (e.type === "BEAT_FAILED" ? `BEAT_FAILED(${e.failures})` : e.type);
  const all = paths(monitorMachine, EVENTS, { threshold: 3 });

  test("every transition is covered, and no other exists", () => {
    expect([...edges(all, label)].sort()).toEqual(
      [
        "healthy --BEAT_FAILED(3)--> stopping",
        "stopping --xstate.done.actor.stopComponents--> waitingForBeat",
        "stopping --xstate.error.actor.stopComponents--> waitingForBeat",
        "waitingForBeat --BEAT_OK--> restarting",
        "restarting --xstate.done.actor.startComponents--> healthy",
        "restarting --xstate.error.actor.startComponents--> stopping",
      ].sort(),
    );
  });

  test.each(all.map((p, i) => [i, p.map((s) => `${label(s.event)}`).join(" → "), p] as const))("path %i: %s", async (_i, _n, steps) => {
    await replay(monitorMachine, ["stopComponents", "startComponents"], { threshold: 3 }, steps);
  });
});

describe("heart statechart", () => {
  const EVENTS: AnyEvent[] = [
    { type: "BEAT_NOW" },
    { type: "xstate.done.actor.beat" },
    { type: "xstate.error.actor.beat" },
    { type: "xstate.after.interval.heart.waiting" },
    { type: "xstate.after.retry.heart.retrying" },
  ];
  const all = paths(heartMachine, EVENTS, { ttlMs: 1000 });

  test("every transition is covered, and no other exists", () => {
    expect([...edges(all)].sort()).toEqual(
      [
        "beating --xstate.done.actor.beat--> waiting",
        "beating --xstate.error.actor.beat--> retrying",
        "waiting --xstate.after.interval.heart.waiting--> beating",
        "waiting --BEAT_NOW--> beating",
        "retrying --xstate.after.retry.heart.retrying--> beating",
        "retrying --BEAT_NOW--> beating",
      ].sort(),
    );
  });

  test.each(all.map((p, i) => [i, p.map((s) => s.event.type).join(" → "), p] as const))("path %i: %s", async (_i, _n, steps) => {
    await replay(heartMachine, ["beat"], { ttlMs: 1000 }, steps);
  });
});
