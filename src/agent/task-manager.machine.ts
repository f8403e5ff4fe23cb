// One unit's task manager as a statechart (SwarmKit's taskManager): the parent of that unit's
// task attempts (task.machine.ts), one at a time, each a new child so that an attempt's chart
// only ever moves forward.
//
//   idle ──ATTEMPT──▶ attempting ──(attempt done: restart due)──▶ restartWaiting ──after──▶ attempting
//                       │  ▲  START/STOP go to the attempt        │ HOLD (stopped meanwhile)
//                       │  └──────────── ATTEMPT ─────────────┐   ▼
//                       └──(attempt done: no restart)──────▶ ended
//   DETACH (from anywhere) ──▶ detached   (the agent stops; the workload keeps running)
//
// The TaskManager (task-manager.ts) provides the attempt (the task chart with its controller's
// effects), the restart decision (task-policy.ts) and the reports; this chart sequences them.
import { assign, sendTo, setup } from "xstate";
import type { RunInfo } from "../exec/executor.js";
import { taskMachine } from "./task.machine.js";

export interface TaskManagerInput {
  unit: string;
  target: "loaded" | "launched";
  /** Restarts so far (from the worker store, after an agent restart). */
  restarts?: number;
  /**
   * Whose effects the provided chart runs (the TaskManager): the chart is provided once for
   * every unit, and its actions find their task manager here, not in a closure per unit.
   */
  owner?: unknown;
}

export interface TaskManagerContext {
  unit: string;
  target: "loaded" | "launched";
  /** A workload an earlier agent process started, for the next attempt to adopt. */
  adopt?: RunInfo;
  attempts: number;
  restarts: number;
  restartDelayMs: number;
  owner?: unknown;
}

export type TaskManagerEvent =
  | { type: "ATTEMPT"; adopt?: RunInfo; target: "loaded" | "launched" }
  | { type: "START" }
  | { type: "STOP" }
  | { type: "HOLD" }
  | { type: "DETACH" };

export const taskManagerMachine = setup({
  types: {
    input: {} as TaskManagerInput,
    context: {} as TaskManagerContext,
    events: {} as TaskManagerEvent,
  },
  actors: {
    /** One attempt; the TaskManager provides it with the controller's effects. */
    task: taskMachine,
  },
  guards: {
    /** Provided: the attempt ended and Restart=, RestartSec= and the start limit want another. */
    restartDue: () => false,
  },
  actions: {
    // Provided by the TaskManager.
    newAttempt: () => undefined,
    closeAttempt: () => undefined,
    attemptChanged: () => undefined,
    attemptEnded: () => undefined,
    attemptCrashed: () => undefined,
    takeAttempt: assign(({ context, event }) => {
      const e = event as { adopt?: RunInfo; target?: "loaded" | "launched" };
      return { adopt: e.adopt, target: e.target ?? context.target, attempts: context.attempts + 1 };
    }),
    takeRestart: assign(({ context }) => ({ adopt: undefined, attempts: context.attempts + 1, restarts: context.restarts + 1, target: "launched" as const })),
    toAttempt: sendTo("task", ({ event }) => ({ type: (event as { type: "START" | "STOP" }).type })),
    noteDelay: assign({ restartDelayMs: () => 0 }),
  },
  delays: {
    restartDelay: ({ context }) => context.restartDelayMs,
  },
}).createMachine({
  id: "task-manager",
  context: ({ input }) => ({ unit: input.unit, target: input.target, attempts: 0, restarts: input.restarts ?? 0, restartDelayMs: 0, owner: input.owner }),
  initial: "idle",
  on: { DETACH: ".detached" },
  states: {
    idle: {
      // HOLD: resumed from the worker store as it ended (a failed unit stays failed).
      on: { ATTEMPT: { target: "attempting", actions: "takeAttempt" }, HOLD: "ended" },
    },
    attempting: {
      entry: "newAttempt",
      exit: "closeAttempt",
      invoke: {
        // No system id: a daemon's one actor system holds every unit's task manager, and a
        // system id is one per system. The inspector names it task:<unit> from its parent.
        id: "task",
        src: "task",
        input: ({ context }) => ({ unit: context.unit, desired: context.target, adopt: context.adopt }),
        onSnapshot: { actions: "attemptChanged" },
        onDone: [
          { guard: "restartDue", target: "restartWaiting", actions: ["attemptEnded", "noteDelay"] },
          { target: "ended", actions: "attemptEnded" },
        ],
        onError: { target: "ended", actions: "attemptCrashed" },
      },
      on: {
        START: { actions: "toAttempt" },
        STOP: { actions: "toAttempt" },
        ATTEMPT: { target: "attempting", reenter: true, actions: "takeAttempt" },
      },
    },
    restartWaiting: {
      after: { restartDelay: { target: "attempting", actions: "takeRestart" } },
      on: { HOLD: "ended", ATTEMPT: { target: "attempting", actions: "takeAttempt" } },
    },
    ended: {
      on: { ATTEMPT: { target: "attempting", actions: "takeAttempt" } },
    },
    detached: { type: "final" },
  },
});
