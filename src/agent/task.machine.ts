// One attempt of one task, as a statechart (SwarmKit's exec.Do as states). Forward only:
//   accepted → preparing → ready → starting → running → complete | failed
//   any live state --STOP--> (stopping) → shutdown;  prepare fails fatally → rejected
//   accepted --(input.adopt)--> adopting → running | complete | failed   (after an agent restart)
// Controller calls are invoked actors declared here and provided by the task manager with
// .provide(); decisions are the pure functions of task-policy.ts. A restart is a new attempt
// (a new actor), as in SwarmKit, so that this chart never moves backwards.
import { assign, fromPromise, setup } from "xstate";
import type { DesiredState, TaskState } from "../protocol/messages.js";
import { describeError } from "../protocol/errors.js";
import type { AdoptResult, ExitStatus, RunInfo } from "../exec/executor.js";
import { advance, backoffMs, canRetry, describeExit, exitedOk } from "./task-policy.js";

export interface TaskInput {
  unit: string;
  desired: Exclude<DesiredState, "inactive">;
  /** A workload an earlier agent process started: adopt it instead of starting another. */
  adopt?: RunInfo;
}

export interface TaskContext {
  unit: string;
  desired: Exclude<DesiredState, "inactive">;
  taskState: TaskState;
  retries: number;
  adopt?: RunInfo;
  run?: RunInfo;
  exit?: ExitStatus;
  error?: string;
}

export type TaskEvent = { type: "START" } | { type: "STOP" };

const never = <T>() => fromPromise<T>(() => new Promise<T>(() => undefined));

export const taskMachine = setup({
  types: {
    context: {} as TaskContext,
    events: {} as TaskEvent,
    input: {} as TaskInput,
  },
  actors: {
    prepare: never<void>(),
    start: never<RunInfo>(),
    adopt: fromPromise<AdoptResult, RunInfo>(() => new Promise<AdoptResult>(() => undefined)),
    wait: never<ExitStatus>(),
    shutdown: never<ExitStatus>(),
    terminate: never<void>(),
  },
  guards: {
    hasRunToAdopt: ({ context }) => context.adopt !== undefined,
    wantsLaunch: ({ context }) => context.desired === "launched",
    canRetry: ({ context, event }) => canRetry((event as { error?: unknown }).error, context.retries),
    adoptedAlive: ({ event }) => (event as unknown as { output: AdoptResult }).output.alive,
    adoptedExitedOk: ({ event }) => {
      const out = (event as unknown as { output: AdoptResult }).output;
      return !out.alive && exitedOk(out.exit);
    },
    exitedOk: ({ event }) => exitedOk((event as unknown as { output: ExitStatus }).output),
  },
  actions: {
    enter: assign({ taskState: ({ context }, params: { state: TaskState }) => advance(context.taskState, params.state) }),
    setLaunched: assign({ desired: "launched" as const }),
    countRetry: assign({ retries: ({ context }) => context.retries + 1 }),
    resetRetries: assign({ retries: 0 }),
    recordError: assign({ error: ({ event }) => describeError((event as { error?: unknown }).error) }),
    recordRun: assign({ run: ({ event }) => (event as unknown as { output: RunInfo }).output, error: undefined }),
    recordAdopted: assign(({ event }) => {
      const out = (event as unknown as { output: AdoptResult }).output;
      return out.alive ? { run: out.run } : { exit: out.exit, error: exitedOk(out.exit) ? undefined : describeExit(out.exit) };
    }),
    recordExit: assign(({ event }) => {
      const exit = (event as unknown as { output: ExitStatus }).output;
      return { exit, error: exitedOk(exit) ? undefined : describeExit(exit) };
    }),
    recordStopped: assign({ exit: ({ event }) => (event as unknown as { output?: ExitStatus }).output }),
  },
  delays: {
    retryDelay: ({ context }) => backoffMs(context.retries),
  },
}).createMachine({
  id: "task",
  // The final context goes to the task manager with the done event (its last report).
  output: ({ context }) => context,
  context: ({ input }) => ({ unit: input.unit, desired: input.desired, adopt: input.adopt, taskState: "accepted", retries: 0 }),
  initial: "accepted",
  states: {
    accepted: {
      entry: { type: "enter", params: { state: "accepted" } },
      always: [{ guard: "hasRunToAdopt", target: "adopting" }, { target: "preparing" }],
    },
    adopting: {
      invoke: {
        id: "adopt",
        src: "adopt",
        input: ({ context }) => context.adopt!,
        onDone: [
          { guard: "adoptedAlive", target: "running", actions: "recordAdopted" },
          { guard: "adoptedExitedOk", target: "complete", actions: "recordAdopted" },
          { target: "failed", actions: "recordAdopted" },
        ],
        onError: { target: "failed", actions: "recordError" },
      },
      on: { STOP: "stopping" },
    },
    preparing: {
      entry: { type: "enter", params: { state: "preparing" } },
      initial: "run",
      states: {
        run: {
          invoke: {
            id: "prepare",
            src: "prepare",
            onDone: "#task.ready",
            onError: [
              { guard: "canRetry", target: "backoff", actions: ["countRetry", "recordError"] },
              { target: "#task.rejected", actions: "recordError" },
            ],
          },
        },
        backoff: { after: { retryDelay: "run" } },
      },
      on: { STOP: "shutdown", START: { actions: "setLaunched" } },
    },
    ready: {
      entry: [{ type: "enter", params: { state: "ready" } }, "resetRetries"],
      always: { guard: "wantsLaunch", target: "starting" },
      on: { START: { target: "starting", actions: "setLaunched" }, STOP: "shutdown" },
    },
    starting: {
      entry: { type: "enter", params: { state: "starting" } },
      initial: "run",
      states: {
        run: {
          invoke: {
            id: "start",
            src: "start",
            onDone: { target: "#task.running", actions: "recordRun" },
            onError: [
              { guard: "canRetry", target: "backoff", actions: ["countRetry", "recordError"] },
              { target: "#task.failed", actions: "recordError" },
            ],
          },
        },
        backoff: { after: { retryDelay: "run" } },
      },
      on: { STOP: "stopping" },
    },
    running: {
      entry: [{ type: "enter", params: { state: "running" } }, "resetRetries"],
      invoke: {
        id: "wait",
        src: "wait",
        onDone: [
          { guard: "exitedOk", target: "complete", actions: "recordExit" },
          { target: "failed", actions: "recordExit" },
        ],
        onError: { target: "failed", actions: "recordError" },
      },
      on: { STOP: "stopping" },
    },
    // Still reported as the state it came from: the task is what it was until it is gone.
    stopping: {
      invoke: {
        id: "shutdown",
        src: "shutdown",
        onDone: { target: "shutdown", actions: "recordStopped" },
        onError: { target: "terminating", actions: "recordError" },
      },
    },
    terminating: {
      invoke: {
        id: "terminate",
        src: "terminate",
        onDone: "shutdown",
        onError: { target: "shutdown", actions: "recordError" },
      },
    },
    complete: { type: "final", entry: { type: "enter", params: { state: "complete" } } },
    shutdown: { type: "final", entry: { type: "enter", params: { state: "shutdown" } } },
    failed: { type: "final", entry: { type: "enter", params: { state: "failed" } } },
    rejected: { type: "final", entry: { type: "enter", params: { state: "rejected" } } },
  },
});

export type TaskMachine = typeof taskMachine;
