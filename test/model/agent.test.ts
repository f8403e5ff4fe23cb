// The agent statechart (src/agent/agent.machine.ts): every transition by path coverage, and the
// timer round under a SimulatedClock.
import { describe, expect, it } from "vitest";
import { createActor, getNextSnapshot, SimulatedClock, type AnyEventObject, type AnyMachineSnapshot } from "xstate";
import { TestModel } from "xstate/graph";
import { agentMachine, type AgentEvent } from "../../src/agent/agent.machine.js";

function harness() {
  const clock = new SimulatedClock();
  const calls = { reconcile: 0, resync: 0 };
  const m = agentMachine.provide({ actions: { reconcile: () => void calls.reconcile++, resync: () => void calls.resync++ } });
  const actor = createActor(m, { input: { reconcileEveryMs: 2000 }, clock });
  return { clock, calls, actor };
}

describe("agent statechart", () => {
  it("reconciles once synced and every reconcileEvery while steady; not while syncing or disconnected", () => {
    const h = harness();
    h.actor.start();
    h.actor.send({ type: "STARTED", resumed: 3 });
    expect(h.actor.getSnapshot().value).toBe("syncing");
    h.clock.increment(5000);
    expect(h.calls.reconcile).toBe(0);
    h.actor.send({ type: "SYNCED" });
    expect(h.actor.getSnapshot()).toMatchObject({ value: "steady", context: { resumed: 3 } });
    expect(h.calls.reconcile).toBe(1);
    h.clock.increment(1999);
    expect(h.calls.reconcile).toBe(1);
    h.clock.increment(1);
    expect(h.calls.reconcile).toBe(2);
    h.actor.send({ type: "DISCONNECTED" });
    h.clock.increment(10_000);
    expect(h.calls.reconcile).toBe(2);
    h.actor.send({ type: "RECONNECTED" });
    expect(h.actor.getSnapshot()).toMatchObject({ value: "syncing", context: { resyncs: 1 } });
    expect(h.calls.resync).toBe(1);
    h.actor.send({ type: "STOP" });
    expect(h.actor.getSnapshot().status).toBe("done");
  });

  const EVENTS: AnyEventObject[] = [
    { type: "STARTED", resumed: 1 },
    { type: "SYNCED" },
    { type: "DISCONNECTED" },
    { type: "RECONNECTED" },
    { type: "STOP" },
    { type: "xstate.after.reconcileEvery.agent.steady" },
  ];
  it("takes every transition, and every path replays on a live actor", () => {
    const model = new TestModel(agentMachine as never, {
      events: ((s: { value: unknown }) => EVENTS.filter((e) => !e.type.startsWith("xstate.after") || s.value === "steady")) as never,
      serializeState: ((s: { value: unknown; status: string }) => JSON.stringify([s.value, s.status])) as never,
      input: { reconcileEveryMs: 2000 },
    } as never);
    const paths = model.getSimplePaths() as unknown as { steps: { event: AnyEventObject; state: AnyMachineSnapshot }[] }[];
    const seen = new Set<string>();
    const reached = new Map<string, AnyMachineSnapshot>();
    for (const p of paths) for (const st of p.steps) reached.set(JSON.stringify(st.state.value), st.state);
    for (const snap of reached.values()) {
      if (snap.status !== "active") continue;
      for (const e of EVENTS) {
        const next = getNextSnapshot(agentMachine, snap as never, e as never);
        if (JSON.stringify(next.value) !== JSON.stringify(snap.value) || (e.type.startsWith("xstate.after") && snap.value === "steady")) seen.add(`${String(snap.value)} --${e.type}--> ${String(next.value)}`);
      }
    }
    expect([...seen].sort()).toEqual(
      [
        "starting --STARTED--> syncing",
        "starting --DISCONNECTED--> disconnected",
        "starting --STOP--> stopped",
        "syncing --SYNCED--> steady",
        "syncing --DISCONNECTED--> disconnected",
        "syncing --STOP--> stopped",
        "steady --DISCONNECTED--> disconnected",
        "steady --STOP--> stopped",
        "steady --xstate.after.reconcileEvery.agent.steady--> steady",
        "disconnected --RECONNECTED--> syncing",
        "disconnected --STOP--> stopped",
      ].sort(),
    );
    for (const p of paths) {
      const h = harness();
      h.actor.start();
      for (const st of p.steps) {
        if (st.event.type === "xstate.init") continue;
        if (st.event.type.startsWith("xstate.after")) h.clock.increment(2000);
        else h.actor.send(st.event as AgentEvent);
        expect(h.actor.getSnapshot().value).toEqual(st.state.value);
      }
    }
  });
});
