// Path coverage of the task statechart (xstate/graph's TestModel, what createTestModel builds). Every transition of the
// chart is listed below and must be taken by some generated path; every generated path is then
// replayed on a real actor whose controller calls are deferred promises resolved by the test
// (the xstate.done.actor.* / xstate.error.actor.* events) and whose delays run on a
// SimulatedClock. Along every path the task state only moves forward.
import { describe, expect, test } from "vitest";
import { createActor, fromPromise, SimulatedClock, type SnapshotFrom } from "xstate";
import { TestModel } from "xstate/graph";
import { taskMachine, type TaskInput } from "../../src/agent/task.machine.js";
import { FlotillaError } from "../../src/protocol/errors.js";
import { taskStateRank, type TaskState } from "../../src/protocol/messages.js";
import type { RunInfo } from "../../src/exec/executor.js";
import { MAX_RETRIES } from "../../src/agent/task-policy.js";

type Snap = SnapshotFrom<typeof taskMachine>;
type AnyEvent = { type: string; [k: string]: unknown };

const run: RunInfo = { supervisorPid: 10, startTime: 1, mainPid: 11, startedAt: 0 };
const temp = new FlotillaError("exec_failed", "temporary trouble", { temporary: true });
const fatal = new FlotillaError("exec_failed", "fatal trouble");

const EVENTS: AnyEvent[] = [
  { type: "START" },
  { type: "STOP" },
  { type: "xstate.done.actor.prepare" },
  { type: "xstate.error.actor.prepare", error: temp },
  { type: "xstate.error.actor.prepare", error: fatal },
  { type: "xstate.after.retryDelay.task.preparing.backoff" },
  { type: "xstate.done.actor.start", output: run },
  { type: "xstate.error.actor.start", error: temp },
  { type: "xstate.error.actor.start", error: fatal },
  { type: "xstate.after.retryDelay.task.starting.backoff" },
  { type: "xstate.done.actor.adopt", output: { alive: true, run } },
  { type: "xstate.done.actor.adopt", output: { alive: false, exit: { exitCode: 0 } } },
  { type: "xstate.done.actor.adopt", output: { alive: false, exit: { exitCode: 1 } } },
  { type: "xstate.error.actor.adopt", error: fatal },
  { type: "xstate.done.actor.wait", output: { exitCode: 0 } },
  { type: "xstate.done.actor.wait", output: { exitCode: 2 } },
  { type: "xstate.error.actor.wait", error: fatal },
  { type: "xstate.done.actor.shutdown", output: { signal: "SIGTERM" } },
  { type: "xstate.error.actor.shutdown", error: fatal },
  { type: "xstate.done.actor.terminate" },
  { type: "xstate.error.actor.terminate", error: fatal },
];

/** Only events the chart can receive where it is: a controller call's result while it is invoked, a delay while waiting. */
function eventsFor(s: Snap): AnyEvent[] {
  if (s.status !== "active") return [];
  return EVENTS.filter((e) => {
    const m = /^xstate\.(done|error)\.actor\.(\w+)$/.exec(e.type);
    if (m) return (s.children as Record<string, unknown>)[m[2]!] !== undefined;
    if (e.type.startsWith("xstate.after.")) return e.type.endsWith(`task.${stateKey(s.value)}`);
    return true;
  });
}

const serializeState = (s: Snap) =>
  JSON.stringify({ v: s.value, d: s.context.desired, r: Math.min(s.context.retries, MAX_RETRIES), st: s.status });

const stateKey = (v: unknown): string => (typeof v === "string" ? v : Object.entries(v as Record<string, unknown>).map(([k, c]) => `${k}.${stateKey(c)}`)[0]!);

/** Every transition of the chart: from (state value) --event--> to (state value after eventless ones). */
const EXPECTED = [
  "preparing.run --xstate.done.actor.prepare--> ready", // desired loaded
  "preparing.run --xstate.done.actor.prepare--> starting.run", // desired launched (through ready's always)
  "preparing.run --xstate.error.actor.prepare(temp)--> preparing.backoff",
  "preparing.run --xstate.error.actor.prepare(temp)--> rejected", // retries exhausted
  "preparing.run --xstate.error.actor.prepare(fatal)--> rejected",
  "preparing.backoff --xstate.after.retryDelay.task.preparing.backoff--> preparing.run",
  "preparing.run --START--> preparing.run",
  "preparing.backoff --START--> preparing.backoff",
  "preparing.run --STOP--> shutdown",
  "preparing.backoff --STOP--> shutdown",
  "ready --START--> starting.run",
  "ready --STOP--> shutdown",
  "starting.run --xstate.done.actor.start--> running",
  "starting.run --xstate.error.actor.start(temp)--> starting.backoff",
  "starting.run --xstate.error.actor.start(temp)--> failed", // retries exhausted
  "starting.run --xstate.error.actor.start(fatal)--> failed",
  "starting.backoff --xstate.after.retryDelay.task.starting.backoff--> starting.run",
  "starting.run --STOP--> stopping",
  "starting.backoff --STOP--> stopping",
  "adopting --xstate.done.actor.adopt--> running",
  "adopting --xstate.done.actor.adopt--> complete",
  "adopting --xstate.done.actor.adopt--> failed",
  "adopting --xstate.error.actor.adopt(fatal)--> failed",
  "adopting --STOP--> stopping",
  "running --xstate.done.actor.wait--> complete",
  "running --xstate.done.actor.wait--> failed",
  "running --xstate.error.actor.wait(fatal)--> failed",
  "running --STOP--> stopping",
  "stopping --xstate.done.actor.shutdown--> shutdown",
  "stopping --xstate.error.actor.shutdown(fatal)--> terminating",
  "terminating --xstate.done.actor.terminate--> shutdown",
  "terminating --xstate.error.actor.terminate(fatal)--> shutdown",
];

const EXPECTED_TASK_STATE: Record<string, TaskState> = {
  "preparing.run": "preparing",
  "preparing.backoff": "preparing",
  ready: "ready",
  "starting.run": "starting",
  "starting.backoff": "starting",
  running: "running",
  complete: "complete",
  failed: "failed",
  shutdown: "shutdown",
  rejected: "rejected",
};

function edgeName(from: Snap, ev: AnyEvent, to: Snap): string {
  const e = ev.error as { temporary?: boolean } | undefined;
  const err = e ? (e.temporary ? "(temp)" : "(fatal)") : "";
  return `${stateKey(from.value)} --${ev.type}${err}--> ${stateKey(to.value)}`;
}

const INPUTS: TaskInput[] = [
  { unit: "a.service", desired: "loaded" },
  { unit: "a.service", desired: "launched" },
  { unit: "a.service", desired: "launched", adopt: run },
];

/** Replays a path on a real actor: controller calls are deferred promises the events settle. */
async function replay(input: TaskInput, steps: { event: AnyEvent; state: Snap }[]): Promise<void> {
  const pending = new Map<string, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  const deferred = (id: string) =>
    fromPromise<any, any>(() => new Promise((resolve, reject) => pending.set(id, { resolve, reject })));
  const clock = new SimulatedClock();
  const actor = createActor(
    taskMachine.provide({
      actors: {
        prepare: deferred("prepare"),
        start: deferred("start"),
        adopt: deferred("adopt"),
        wait: deferred("wait"),
        shutdown: deferred("shutdown"),
        terminate: deferred("terminate"),
      },
    }),
    { input, clock },
  );
  actor.start();
  let last: TaskState = actor.getSnapshot().context.taskState;
  for (const step of steps) {
    const ev = step.event;
    const m = /^xstate\.(done|error)\.actor\.(\w+)$/.exec(ev.type);
    if (m) {
      const d = pending.get(m[2]!);
      expect(d, `a pending ${m[2]} call for ${ev.type}`).toBeDefined();
      pending.delete(m[2]!);
      if (m[1] === "done") d!.resolve(ev.output);
      else d!.reject(ev.error);
    } else if (ev.type.startsWith("xstate.after.")) {
      clock.increment(60_000);
    } else if (ev.type !== "xstate.init") {
      actor.send(ev as { type: "START" } | { type: "STOP" });
    }
    for (let i = 0; i < 5; i++) await Promise.resolve();
    await new Promise((r) => setImmediate(r));
    const snap = actor.getSnapshot();
    expect(snap.value).toEqual(step.state.value);
    expect(taskStateRank(snap.context.taskState)).toBeGreaterThanOrEqual(taskStateRank(last));
    last = snap.context.taskState;
  }
  actor.stop();
}

describe("task statechart", () => {
  const seen = new Set<string>();
  const reached = new Set<string>();
  const all: { input: TaskInput; steps: { event: AnyEvent; state: Snap }[] }[] = [];
  for (const input of INPUTS) {
    // createTestModel() refuses charts with invoke/after (it cannot run them); TestModel is the
    // same model without that check, and the replay below runs the invoked actors for real.
    const model = new TestModel(taskMachine as never, { events: eventsFor as never, serializeState: serializeState as never, input } as never);
    // Transition coverage: the shortest path to every state, extended by each of its edges.
    const shortest = new Map<string, { event: AnyEvent; state: Snap }[]>();
    for (const p of model.getShortestPaths({ allowDuplicatePaths: true })) shortest.set(serializeState(p.state as Snap), p.steps as never);
    const adj = model.getAdjacencyMap() as unknown as Record<string, { state: Snap; transitions: Record<string, { event: AnyEvent; state: Snap }> }>;
    for (const [from, v] of Object.entries(adj)) {
      const prefix = shortest.get(from);
      if (!prefix) throw new Error(`no path to ${from}`);
      for (const t of Object.values(v.transitions)) {
        if (!v.state.can(t.event as never)) continue; // an event this state does not handle
        all.push({ input, steps: [...prefix, { event: t.event, state: t.state }] });
      }
    }
  }
  for (const p of all) {
    let prev: Snap | undefined;
    for (const s of p.steps) {
      reached.add(stateKey(s.state.value));
      if (prev) seen.add(edgeName(prev, s.event, s.state));
      const ts = EXPECTED_TASK_STATE[stateKey(s.state.value)];
      if (ts) expect(s.state.context.taskState).toBe(ts);
      prev = s.state;
    }
  }

  test("every transition is covered by a path, and no other transition exists", () => {
    const missing = EXPECTED.filter((e) => !seen.has(e.replace(/\s+\/\/.*$/, "")));
    expect(missing).toEqual([]);
    const unexpected = [...seen].filter((e) => !EXPECTED.includes(e));
    expect(unexpected).toEqual([]);
    for (const s of ["adopting", "preparing.run", "preparing.backoff", "ready", "starting.run", "starting.backoff", "running", "stopping", "terminating", "complete", "failed", "shutdown", "rejected"]) {
      expect(reached.has(s), s).toBe(true);
    }
  });

  test("every path replays on a real actor, forward only", async () => {
    expect(all.length).toBeGreaterThan(20);
    for (const p of all) await replay(p.input, p.steps);
  }, 60_000);

  test("the chart keeps its named actors, guards and actions (toJSON)", () => {
    const json = JSON.stringify(taskMachine.toJSON());
    // (toJSON leaves out eventless `always` transitions, so hasRunToAdopt/wantsLaunch are not in it.)
    for (const name of ["prepare", "start", "adopt", "wait", "shutdown", "terminate", "canRetry", "exitedOk", "adoptedAlive", "enter", "recordExit"]) {
      expect(json).toContain(`"${name}"`);
    }
  });
});
