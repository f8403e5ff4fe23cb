// The engine statechart (src/engine/engine.machine.ts): path coverage with xstate/graph's
// TestModel (every transition taken, every path replayed on a live actor), and the timing of
// rounds (debounce, the duty bound, timer rounds, floods) under a SimulatedClock. Its effects
// are deferred promises and a captured sendBack the test drives; the lease child is a stub
// that the test moves between leading and not.
import { describe, expect, it } from "vitest";
import { createActor, createMachine, fromCallback, fromPromise, getNextSnapshot, SimulatedClock, type AnyEventObject, type AnyMachineSnapshot } from "xstate";
import { TestModel } from "xstate/graph";
import { engineMachine, type EngineEvent, type RoundOutput } from "../../src/engine/engine.machine.js";

const DEBOUNCE = 5;
const QUIET: RoundOutput = { progress: false, dutyMs: 0, nextWakeMs: 2000 };
const MORE_NOW: RoundOutput = { progress: true, dutyMs: 0, nextWakeMs: 2000 };
const MORE_LATER: RoundOutput = { progress: true, dutyMs: 100, nextWakeMs: 2000 };
const RESYNC: RoundOutput = { progress: false, dutyMs: 0, nextWakeMs: 0, resync: "stream sequence 9 is not ours" };

/** A lease stand-in: leads (epoch 7) on LEAD, loses on LOSE, notes RESIGN, ends on END (its release done). */
const leaseStub = createMachine({
  id: "lease",
  context: { epoch: 0, lastError: "" },
  initial: "candidate",
  states: {
    candidate: { on: { LEAD: { target: "leader", actions: assignEpoch(7) }, RESIGN: "resigned" } },
    leader: { initial: "holding", states: { holding: {} }, on: { LOSE: { target: "candidate", actions: assignEpoch(0) }, RESIGN: "resigned" } },
    resigned: { on: { END: "stopped" } },
    stopped: { type: "final" },
  },
});
function assignEpoch(epoch: number) {
  return ({ context }: { context: { epoch: number } }) => {
    context.epoch = epoch; // a stub: mutating is enough to be read by the parent's leaseChanged
  };
}

function harness() {
  const clock = new SimulatedClock();
  const pending: Record<string, { resolve: (v: unknown) => void; reject: (e: unknown) => void } | undefined> = {};
  const calls = { round: [] as { periodic: boolean }[], resync: 0, drain: 0, beginTerm: 0, endTerm: [] as string[], loaded: 0 };
  let sendBack: ((e: EngineEvent) => void) | undefined;
  let quietBack: ((e: EngineEvent) => void) | undefined;
  const deferred = <I,>(name: string, onCall: (input: I) => void) =>
    fromPromise<never, I>(({ input }) => {
      onCall(input);
      return new Promise((resolve, reject) => {
        pending[name] = { resolve: resolve as (v: unknown) => void, reject };
      });
    });
  const machine = engineMachine.provide({
    actors: {
      lease: leaseStub as never,
      watches: fromCallback(({ sendBack: sb }) => {
        sendBack = sb as (e: EngineEvent) => void;
        return () => (sendBack = undefined);
      }) as never,
      quiet: fromCallback(({ sendBack: sb }) => {
        quietBack = sb as (e: EngineEvent) => void;
        return () => (quietBack = undefined);
      }) as never,
      round: deferred<{ periodic: boolean }>("round", (i) => calls.round.push(i)) as never,
      resync: deferred<{ why: string }>("resync", () => calls.resync++) as never,
      drain: deferred<void>("drain", () => calls.drain++) as never,
    },
    actions: {
      beginTerm: () => void calls.beginTerm++,
      endTerm: ({ event }) => void calls.endTerm.push(event.type),
      clusterLoaded: () => void calls.loaded++,
    },
  });
  const actor = createActor(machine, { input: { holder: "me", leaseTtlMs: 3000, debounceMs: DEBOUNCE }, clock });
  const lease = () => actor.getSnapshot().children.lease as unknown as { send(e: AnyEventObject): void; getSnapshot(): { value: unknown } };
  return { clock, pending, calls, actor, lease, send: (e: EngineEvent) => sendBack?.(e), quiet: () => quietBack?.({ type: "QUIET" }), quietRuns: () => quietBack !== undefined };
}

const flush = () => new Promise((r) => setImmediate(r));
const value = (h: ReturnType<typeof harness>) => h.actor.getSnapshot().value;

async function leadingAndLoaded(h: ReturnType<typeof harness>): Promise<void> {
  h.actor.start();
  h.lease().send({ type: "LEAD" });
  expect(value(h)).toEqual({ leading: "loading" });
  h.send({ type: "READY" });
  expect(value(h)).toEqual({ leading: "deciding" });
}

describe("engine statechart timing (SimulatedClock)", () => {
  it("becomes leader with its lease, loads, and decides at once; then a timer round after nextWake", async () => {
    const h = harness();
    await leadingAndLoaded(h);
    expect(h.calls).toMatchObject({ beginTerm: 1, loaded: 1, round: [{ periodic: false }] });
    expect(h.actor.getSnapshot().context.epoch).toBe(7);
    h.pending.round!.resolve(QUIET);
    await flush();
    expect(value(h)).toEqual({ leading: "idle" });
    h.clock.increment(1999);
    expect(value(h)).toEqual({ leading: "idle" });
    h.clock.increment(1);
    expect(value(h)).toEqual({ leading: "deciding" });
    expect(h.calls.round[1]).toEqual({ periodic: true });
  });

  it("a change waits for the debounce; a flood starts the round at once", async () => {
    const h = harness();
    await leadingAndLoaded(h);
    h.pending.round!.resolve(QUIET);
    await flush();
    h.send({ type: "CHANGE" });
    expect(value(h)).toEqual({ leading: "debouncing" });
    h.clock.increment(DEBOUNCE - 1);
    expect(value(h)).toEqual({ leading: "debouncing" });
    h.clock.increment(1);
    expect(value(h)).toEqual({ leading: "deciding" });
    expect(h.calls.round[1]).toEqual({ periodic: false });
    h.pending.round!.resolve(QUIET);
    await flush();
    h.send({ type: "CHANGE" });
    h.send({ type: "FLOOD" });
    expect(value(h)).toEqual({ leading: "deciding" });
  });

  it("a change during a round makes another round follow at once; progress while flooding waits the duty bound", async () => {
    const h = harness();
    await leadingAndLoaded(h);
    h.send({ type: "CHANGE" });
    h.pending.round!.resolve(QUIET);
    await flush();
    expect(value(h)).toEqual({ leading: "deciding" });
    expect(h.calls.round).toHaveLength(2);
    h.pending.round!.resolve(MORE_LATER);
    await flush();
    expect(value(h)).toEqual({ leading: "pausing" });
    h.send({ type: "FLOOD" }); // the duty bound holds even for a flood
    h.clock.increment(99);
    expect(value(h)).toEqual({ leading: "pausing" });
    h.clock.increment(1);
    expect(value(h)).toEqual({ leading: "deciding" });
    h.pending.round!.resolve(MORE_NOW);
    await flush();
    expect(h.calls.round).toHaveLength(4);
  });

  it("changes that stop during the pause end it: the round starts before the duty bound", async () => {
    const h = harness();
    await leadingAndLoaded(h);
    expect(h.quietRuns()).toBe(false);
    h.pending.round!.resolve(MORE_LATER);
    await flush();
    expect(value(h)).toEqual({ leading: "pausing" });
    // The child that watches for the end of the flood runs only while the chart pauses.
    expect(h.quietRuns()).toBe(true);
    h.clock.increment(30);
    expect(value(h)).toEqual({ leading: "pausing" });
    h.quiet();
    expect(value(h)).toEqual({ leading: "deciding" });
    expect(h.quietRuns()).toBe(false);
    expect(h.calls.round).toHaveLength(2);
  });

  it("a foreign write: resync first, then a round", async () => {
    const h = harness();
    await leadingAndLoaded(h);
    h.pending.round!.resolve(RESYNC);
    await flush();
    expect(value(h)).toEqual({ leading: "resyncing" });
    expect(h.actor.getSnapshot().context.lastWhy).toBe(RESYNC.resync);
    h.pending.resync!.resolve(undefined);
    await flush();
    expect(value(h)).toEqual({ leading: "deciding" });
  });

  it("losing the lease ends the term at once, from any state", async () => {
    const h = harness();
    await leadingAndLoaded(h);
    h.lease().send({ type: "LOSE" });
    expect(value(h)).toBe("follower");
    expect(h.calls.endTerm).toEqual(["NOT_LEADING"]);
    expect(h.actor.getSnapshot().context.epoch).toBe(0);
  });

  it("stops: the round in flight ends, then the lease is released, then stopped", async () => {
    const h = harness();
    await leadingAndLoaded(h);
    h.actor.send({ type: "STOP" });
    expect(value(h)).toBe("stopping");
    expect(h.calls.endTerm).toEqual(["STOP"]);
    h.pending.drain!.resolve(undefined);
    await flush();
    expect(value(h)).toBe("releasing");
    expect(h.lease().getSnapshot().value).toBe("resigned");
    h.lease().send({ type: "END" });
    expect(h.actor.getSnapshot().status).toBe("done");
    expect(value(h)).toBe("stopped");
  });

  it("a drain that does not end within its budget does not hold the stop", async () => {
    const h = harness();
    await leadingAndLoaded(h);
    h.actor.send({ type: "STOP" });
    h.clock.increment(1000);
    expect(value(h)).toBe("releasing");
    h.clock.increment(1000); // nor a release that gets no answer
    expect(value(h)).toBe("stopped");
  });

  it("watches that cannot be opened: gives the lease up and ends as stoodDown (the Engine stands again)", async () => {
    const h = harness();
    await leadingAndLoaded(h);
    h.send({ type: "WATCH_FAILED", why: "cannot watch the cluster state (timeout)" });
    expect(value(h)).toBe("standingDown");
    expect(h.lease().getSnapshot().value).toBe("resigned");
    h.lease().send({ type: "END" });
    expect(value(h)).toBe("stoodDown");
    expect(h.actor.getSnapshot().context.lastWhy).toMatch(/cannot watch/);
  });
});

// ---- path coverage ----

const ROUND_OUTPUTS = [QUIET, MORE_NOW, MORE_LATER, RESYNC];
const EVENTS: AnyEventObject[] = [
  { type: "LEADING", epoch: 7 },
  { type: "NOT_LEADING", why: "lost the lease" },
  { type: "READY" },
  { type: "CHANGE" },
  { type: "FLOOD" },
  { type: "QUIET" },
  { type: "WATCH_FAILED", why: "x" },
  { type: "STOP" },
  ...ROUND_OUTPUTS.map((output) => ({ type: "xstate.done.actor.round", output })),
  { type: "xstate.error.actor.round", error: new Error("boom") },
  { type: "xstate.done.actor.resync" },
  { type: "xstate.error.actor.resync", error: new Error("no") },
  { type: "xstate.done.actor.drain" },
  { type: "xstate.done.actor.lease" },
  { type: "xstate.after.debounce.engine.leading.debouncing" },
  { type: "xstate.after.duty.engine.leading.pausing" },
  { type: "xstate.after.nextWake.engine.leading.idle" },
  { type: "xstate.after.drainBudget.engine.stopping" },
  { type: "xstate.after.drainBudget.engine.releasing" },
  { type: "xstate.after.drainBudget.engine.standingDown" },
];

function applicable(v: string, type: string): boolean {
  if (type.endsWith(".round")) return v === '{"leading":"deciding"}';
  if (type.endsWith(".resync")) return v === '{"leading":"resyncing"}';
  if (type.endsWith(".drain")) return v === '"stopping"';
  if (type.endsWith(".lease")) return v === '"releasing"' || v === '"standingDown"';
  if (type.startsWith("xstate.after.")) {
    const state = type.split(".").slice(3).join(".").replace(/^engine\./, "");
    const path = state.split(".");
    return v === JSON.stringify(path.length === 1 ? path[0] : { [path[0]!]: path[1] });
  }
  if (v === '"stopped"' || v === '"stoodDown"') return false;
  if (["READY", "CHANGE", "FLOOD", "QUIET", "WATCH_FAILED", "NOT_LEADING"].includes(type)) return v.startsWith('{"leading"');
  if (type === "LEADING") return v === '"follower"';
  return true; // STOP
}

describe("engine statechart paths", () => {
  const model = new TestModel(engineMachine as never, {
    events: ((s: { value: unknown }) => EVENTS.filter((e) => applicable(JSON.stringify(s.value), e.type))) as never,
    serializeState: ((s: { value: unknown; context: { again: boolean; epoch: number; dutyMs: number }; status: string }) =>
      JSON.stringify([s.value, s.context.again, s.context.epoch > 0, s.context.dutyMs > 0, s.status])) as never,
    input: { holder: "me", leaseTtlMs: 3000, debounceMs: DEBOUNCE },
  } as never);
  const paths = model.getSimplePaths() as unknown as { description: string; steps: { event: AnyEventObject; state: { value: unknown } }[] }[];
  const key = (v: unknown): string => (typeof v === "string" ? v : Object.entries(v as object).map(([k, x]) => `${k}.${key(x)}`).join(","));
  // Every edge out of every state the paths reach (simple paths never take an edge back to a
  // state already on them, such as idle --FLOOD--> deciding).
  const seen = new Set<string>();
  const reached = new Map<string, AnyMachineSnapshot>();
  for (const p of paths) for (const st of p.steps) reached.set(JSON.stringify(st.state.value) + JSON.stringify((st.state as AnyMachineSnapshot).context), st.state as AnyMachineSnapshot);
  for (const snap of reached.values()) {
    for (const e of EVENTS.filter((x) => applicable(JSON.stringify(snap.value), x.type))) {
      const next = getNextSnapshot(engineMachine, snap as never, e as never);
      seen.add(`${key(snap.value)} --${e.type}--> ${key(next.value)}`);
    }
  }

  it("takes every transition of the chart", () => {
    const must = [
      "follower --LEADING--> leading.loading",
      "leading.loading --READY--> leading.deciding",
      "leading.deciding --xstate.done.actor.round--> leading.idle",
      "leading.deciding --xstate.done.actor.round--> leading.deciding",
      "leading.deciding --xstate.done.actor.round--> leading.pausing",
      "leading.deciding --xstate.done.actor.round--> leading.resyncing",
      "leading.deciding --xstate.error.actor.round--> leading.idle",
      "leading.deciding --CHANGE--> leading.deciding",
      "leading.idle --CHANGE--> leading.debouncing",
      "leading.idle --FLOOD--> leading.deciding",
      "leading.idle --xstate.after.nextWake.engine.leading.idle--> leading.deciding",
      "leading.debouncing --FLOOD--> leading.deciding",
      "leading.debouncing --xstate.after.debounce.engine.leading.debouncing--> leading.deciding",
      "leading.pausing --xstate.after.duty.engine.leading.pausing--> leading.deciding",
      "leading.pausing --QUIET--> leading.deciding",
      "leading.resyncing --xstate.done.actor.resync--> leading.deciding",
      "leading.resyncing --xstate.error.actor.resync--> standingDown",
      "leading.loading --NOT_LEADING--> follower",
      "leading.deciding --NOT_LEADING--> follower",
      "leading.idle --WATCH_FAILED--> standingDown",
      "leading.deciding --STOP--> stopping",
      "follower --STOP--> stopping",
      "stopping --xstate.done.actor.drain--> releasing",
      "stopping --xstate.after.drainBudget.engine.stopping--> releasing",
      "releasing --xstate.after.drainBudget.engine.releasing--> stopped",
      "standingDown --xstate.after.drainBudget.engine.standingDown--> stoodDown",
      "standingDown --xstate.done.actor.lease--> stoodDown",
      "releasing --xstate.done.actor.lease--> stopped",
    ];
    for (const t of must) expect(seen, t).toContain(t);
  });

  it("replays every path on a live actor", async () => {
    expect(paths.length).toBeGreaterThan(20);
    for (const path of paths.slice(0, 400)) {
      const h = harness();
      h.actor.start();
      for (const step of path.steps) {
        const e = step.event;
        if (e.type === "xstate.done.actor.lease") h.lease().send({ type: "END" });
        else if (e.type.startsWith("xstate.done.actor.")) h.pending[e.type.slice("xstate.done.actor.".length)]!.resolve(e.output);
        else if (e.type.startsWith("xstate.error.actor.")) h.pending[e.type.slice("xstate.error.actor.".length)]!.reject(e.error);
        else if (e.type.startsWith("xstate.after.")) {
          const delay = e.type.split(".")[2]!;
          const ctx = h.actor.getSnapshot().context;
          h.clock.increment({ debounce: DEBOUNCE, duty: ctx.dutyMs, nextWake: ctx.nextWakeMs, drainBudget: 1000 }[delay]!);
        } else if (e.type === "LEADING") h.lease().send({ type: "LEAD" });
        else if (e.type === "NOT_LEADING") h.lease().send({ type: "LOSE" });
        else if (e.type !== "xstate.init") h.actor.send(e as EngineEvent);
        await flush();
        expect(h.actor.getSnapshot().value, path.description).toEqual(step.state.value);
      }
      h.actor.stop();
    }
  });

  it("keeps its named actors, guards and delays in the exported chart", () => {
    const json = JSON.stringify(engineMachine.toJSON());
    for (const name of ["lease", "watches", "quiet", "round", "resync", "drain", "roundAgainNow", "needsResync", "debounce", "duty", "nextWake"]) expect(json).toContain(name);
  });
});
