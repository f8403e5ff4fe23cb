// The `monitor` actor (fleet's server/monitor.go): watches the heart. After `threshold`
// consecutive failed beats this daemon can no longer vouch for itself (a leader's lease, an
// agent's watch may be gone), so it stops every component; at the next good beat it starts
// them again. The heart itself never stops, so the record reappears by itself.
import { fromPromise, setup } from "xstate";

export interface MonitorInput {
  threshold: number;
}

export type MonitorEvent = { type: "BEAT_OK" } | { type: "BEAT_FAILED"; failures: number };

export const monitorMachine = setup({
  types: {
    input: {} as MonitorInput,
    context: {} as { threshold: number; restarts: number },
    events: {} as MonitorEvent,
  },
  actors: {
    stopComponents: fromPromise<void, void>(async () => undefined),
    startComponents: fromPromise<void, void>(async () => undefined),
  },
  guards: {
    tooManyFailures: ({ context }, p: { failures: number }) => p.failures >= context.threshold,
  },
}).createMachine({
  id: "monitor",
  context: ({ input }) => ({ threshold: input.threshold, restarts: 0 }),
  initial: "healthy",
  states: {
    healthy: {
      on: {
        BEAT_FAILED: {
          guard: { type: "tooManyFailures", params: ({ event }) => ({ failures: event.failures }) },
          target: "stopping",
        },
      },
    },
    stopping: {
      invoke: { id: "stopComponents", src: "stopComponents", onDone: "waitingForBeat", onError: "waitingForBeat" },
    },
    waitingForBeat: {
      on: { BEAT_OK: "restarting" },
    },
    restarting: {
      invoke: { id: "startComponents", src: "startComponents", onDone: "healthy", onError: "stopping" },
    },
  },
});
