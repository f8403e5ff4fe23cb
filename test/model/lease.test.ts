// Path coverage of the lease statechart: xstate/graph's TestModel (what createTestModel builds;
// createTestModel itself refuses charts with `after`) enumerates the simple paths, which must
// take every transition listed below; each path is replayed on a live actor whose effects are
// deferred promises the test settles, with time driven by a SimulatedClock.
import { describe, expect, it } from "vitest";
import { createActor, fromPromise, SimulatedClock, type AnyEventObject } from "xstate";
import { TestModel } from "xstate/graph";
import { leaseMachine, leaseTimings, isLeading } from "../../src/engine/lease.machine.js";

const TTL = 3000;
const T = leaseTimings(TTL);

const EVENTS: AnyEventObject[] = [
  { type: "xstate.done.actor.acquire", output: { acquired: true, epoch: 41, revision: 42 } },
  { type: "xstate.done.actor.acquire", output: { acquired: false, holder: "other" } },
  { type: "xstate.error.actor.acquire", error: new Error("nats down") },
  { type: "xstate.done.actor.renew", output: { revision: 43 } },
  { type: "xstate.error.actor.renew", error: new Error("wrong last sequence") },
  { type: "xstate.done.actor.release" },
  { type: "xstate.error.actor.release", error: new Error("gone") },
  { type: "xstate.after.retry.lease.follower" },
  { type: "xstate.after.renewEvery.lease.leader.holding" },
  { type: "xstate.after.renewTimeout.lease.leader.renewing" },
  { type: "RESIGN" },
  { type: "VACANT" },
];

/** Only the events a state can receive (an invoked actor's results only while it runs). */
function applicable(value: unknown, type: string): boolean {
  const v = JSON.stringify(value);
  if (type === "RESIGN") return v !== '"stopped"';
  if (type === "VACANT") return v === '"follower"' || v === '"candidate"';
  if (type.endsWith(".acquire")) return v === '"candidate"';
  if (type.endsWith(".renew") || type.includes("renewTimeout")) return v === '{"leader":"renewing"}';
  if (type.endsWith(".release")) return v === '{"leader":"releasing"}';
  if (type.includes("retry")) return v === '"follower"';
  if (type.includes("renewEvery")) return v === '{"leader":"holding"}';
  return false;
}

const DELAYS: Record<string, number> = {
  "xstate.after.retry.lease.follower": T.retry,
  "xstate.after.renewEvery.lease.leader.holding": T.renewEvery,
  "xstate.after.renewTimeout.lease.leader.renewing": T.renewTimeout,
};

function harness() {
  const clock = new SimulatedClock();
  const pending: Record<string, { resolve: (v: unknown) => void; reject: (e: unknown) => void } | undefined> = {};
  const calls: Record<string, unknown[]> = { acquire: [], renew: [], release: [] };
  const deferred = (name: string) =>
    fromPromise<never, unknown>(({ input }) => {
      calls[name]!.push(input);
      return new Promise((resolve, reject) => {
        pending[name] = { resolve: resolve as (v: unknown) => void, reject };
      });
    });
  const machine = leaseMachine.provide({
    actors: { acquire: deferred("acquire"), renew: deferred("renew"), release: deferred("release") } as never,
  });
  const actor = createActor(machine, { input: { holder: "me", ttlMs: TTL }, clock });
  return { clock, pending, calls, actor };
}

// Lets settled actor promises deliver their done/error events (no time passes: SimulatedClock).
const flush = () => new Promise((r) => setImmediate(r));

describe("lease statechart paths", () => {
  const model = new TestModel(leaseMachine as never, {
    events: ((s: { value: unknown }) => EVENTS.filter((e) => applicable(s.value, e.type))) as never,
    // terms and errors are unbounded: states are told apart by value, whether a term was won and
    // the lease revision (bounded by the fixed outputs above: 42 after acquire, 43 after a renewal).
    serializeState: ((s: { value: unknown; context: { terms: number; revision: number; vacant: boolean }; status: string }) =>
      JSON.stringify([s.value, s.context.terms > 0, s.context.revision, s.context.vacant, s.status])) as never,
    input: { holder: "me", ttlMs: TTL },
  } as never);
  const paths = model.getSimplePaths() as unknown as { description: string; state: { value: unknown }; steps: { event: AnyEventObject; state: { value: unknown } }[] }[];
  const key = (v: unknown): string => (typeof v === "string" ? v : Object.entries(v as object).map(([k, x]) => `${k}.${key(x)}`).join(","));
  const EXPECTED = [
    "candidate --xstate.done.actor.acquire--> leader.holding",
    "candidate --xstate.done.actor.acquire--> follower",
    "candidate --xstate.error.actor.acquire--> follower",
    "candidate --RESIGN--> stopped",
    // A VACANT while standing is noted; the try that then loses stands again at once. That
    // second step leads back to a state already on the path, which simple paths never take:
    // the test "a follower told the lease is vacant ..." below drives it.
    "candidate --VACANT--> candidate",
    "follower --VACANT--> candidate",
    "follower --xstate.after.retry.lease.follower--> candidate",
    "follower --RESIGN--> stopped",
    "leader.holding --xstate.after.renewEvery.lease.leader.holding--> leader.renewing",
    "leader.holding --RESIGN--> leader.releasing",
    "leader.renewing --xstate.done.actor.renew--> leader.holding",
    "leader.renewing --xstate.error.actor.renew--> follower",
    "leader.renewing --xstate.after.renewTimeout.lease.leader.renewing--> follower",
    "leader.renewing --RESIGN--> leader.releasing",
    "leader.releasing --xstate.done.actor.release--> stopped",
    "leader.releasing --xstate.error.actor.release--> stopped",
  ];

  it("takes every transition of the chart, and no other", () => {
    const seen = new Set<string>();
    for (const p of paths) {
      let prev: unknown = "candidate";
      for (const st of p.steps) {
        if (st.event.type !== "xstate.init") seen.add(`${key(prev)} --${st.event.type}--> ${key(st.state.value)}`);
        prev = st.state.value;
      }
    }
    expect([...seen].sort()).toEqual([...EXPECTED].sort());
  });

  it("reaches every state", () => {
    const reached = new Set(paths.flatMap((p) => p.steps.map((st) => JSON.stringify(st.state.value))));
    for (const v of ["candidate", "follower", { leader: "holding" }, { leader: "renewing" }, { leader: "releasing" }, "stopped"]) {
      expect(reached).toContain(JSON.stringify(v));
    }
  });

  it("replays every path on a live actor", async () => {
    expect(paths.length).toBeGreaterThan(10);
    for (const path of paths) {
      const h = harness();
      h.actor.start();
      for (const step of path.steps) {
        const e = step.event as AnyEventObject;
        if (e.type.startsWith("xstate.done.actor.")) {
          h.pending[e.type.slice("xstate.done.actor.".length)]!.resolve(e.output);
        } else if (e.type.startsWith("xstate.error.actor.")) {
          h.pending[e.type.slice("xstate.error.actor.".length)]!.reject(e.error);
        } else if (e.type.startsWith("xstate.after.")) {
          h.clock.increment(DELAYS[e.type]!);
        } else if (e.type !== "xstate.init") {
          h.actor.send(e as { type: "RESIGN" } | { type: "VACANT" });
        }
        await flush();
        expect(h.actor.getSnapshot().value, path.description).toEqual(step.state.value);
      }
      h.actor.stop();
    }
  });

  it("renews every TTL/3 with the last revision, and steps down at once on a rejected renewal", async () => {
    const h = harness();
    h.actor.start();
    h.pending.acquire!.resolve({ acquired: true, epoch: 7, revision: 8 });
    await flush();
    expect(isLeading(h.actor.getSnapshot().value)).toBe(true);
    h.clock.increment(T.renewEvery - 1);
    expect(h.calls.renew).toHaveLength(0);
    h.clock.increment(1);
    expect(h.calls.renew).toEqual([{ holder: "me", ttlMs: TTL, epoch: 7, revision: 8 }]);
    h.pending.renew!.resolve({ revision: 9 });
    await flush();
    h.clock.increment(T.renewEvery);
    expect(h.calls.renew[1]).toMatchObject({ revision: 9, epoch: 7 });
    h.pending.renew!.reject(new Error("wrong last sequence"));
    await flush();
    expect(h.actor.getSnapshot().value).toBe("follower");
    expect(h.actor.getSnapshot().context.lastError).toBe("wrong last sequence");
    expect(isLeading(h.actor.getSnapshot().value)).toBe(false);
    h.actor.stop();
  });

  it("a renewal with no answer within TTL/3 steps down before the lease can expire", async () => {
    const h = harness();
    h.actor.start();
    h.pending.acquire!.resolve({ acquired: true, epoch: 1, revision: 2 });
    await flush();
    h.clock.increment(T.renewEvery);
    h.clock.increment(T.renewTimeout);
    expect(h.actor.getSnapshot().value).toBe("follower");
    expect(T.renewEvery + T.renewTimeout).toBeLessThan(TTL);
    // and a follower stands again after the retry delay
    h.clock.increment(T.retry);
    expect(h.actor.getSnapshot().value).toBe("candidate");
    expect(h.calls.acquire).toHaveLength(2);
    h.actor.stop();
  });

  it("knows until when the lease is surely its own, and forgets it on stepping down", async () => {
    const h = harness();
    h.actor.start();
    h.pending.acquire!.resolve({ acquired: true, epoch: 5, revision: 6, sentAt: 1000 });
    await flush();
    expect(h.actor.getSnapshot().context.validUntil).toBe(1000 + TTL);
    h.clock.increment(T.renewEvery);
    h.pending.renew!.resolve({ revision: 7, sentAt: 2000 });
    await flush();
    expect(h.actor.getSnapshot().context.validUntil).toBe(2000 + TTL);
    h.clock.increment(T.renewEvery);
    h.pending.renew!.reject(new Error("wrong last sequence"));
    await flush();
    expect(h.actor.getSnapshot().context.validUntil).toBe(0);
    h.actor.stop();
  });

  it("a follower told the lease is vacant stands at once; told so while standing, it stands again once if it loses", async () => {
    const h = harness();
    h.actor.start();
    h.pending.acquire!.resolve({ acquired: false, holder: "other" });
    await flush();
    expect(h.actor.getSnapshot().value).toBe("follower");
    h.actor.send({ type: "VACANT" });
    expect(h.actor.getSnapshot().value).toBe("candidate");
    expect(h.calls.acquire).toHaveLength(2);
    // The holder lets go while this try is in flight: the try loses, and another goes at once.
    h.actor.send({ type: "VACANT" });
    h.pending.acquire!.resolve({ acquired: false, holder: "other" });
    await flush();
    expect(h.actor.getSnapshot().value).toBe("candidate");
    expect(h.calls.acquire).toHaveLength(3);
    // The same when the try fails (NATS did not answer).
    h.actor.send({ type: "VACANT" });
    h.pending.acquire!.reject(new Error("timeout"));
    await flush();
    expect(h.actor.getSnapshot().value).toBe("candidate");
    expect(h.calls.acquire).toHaveLength(4);
    // Only once: losing again, it waits for its timer.
    h.pending.acquire!.resolve({ acquired: false, holder: "third" });
    await flush();
    expect(h.actor.getSnapshot().value).toBe("follower");
    h.clock.increment(T.retry - 1);
    expect(h.calls.acquire).toHaveLength(4);
    h.clock.increment(1);
    expect(h.calls.acquire).toHaveLength(5);
    h.actor.stop();
  });

  it("keeps its named actors, guards and delays in the exported chart", () => {
    const json = JSON.stringify(leaseMachine.toJSON());
    for (const name of ["acquire", "renew", "release", "vacancy", "acquired", "takeTerm"]) expect(json).toContain(name);
  });
});
