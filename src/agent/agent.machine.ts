// The agent's statechart (fleet's agent, SwarmKit's worker): where it stands with the cluster.
//
//   starting ──STARTED──▶ syncing ──SYNCED──▶ steady ◀─┐ after reconcileEvery (the timer round)
//                            ▲                   │     └──┘
//                            │               DISCONNECTED
//                       RECONNECTED              ▼
//                            └──────────── disconnected     (tasks keep running, untouched)
//   STOP (from anywhere) ──▶ stopped
//
// starting: the worker store is opened and the tasks it knew are resumed (adopted, not started
// twice). syncing: the schedule slice and the units are being replayed; nothing is reconciled on
// half a picture. steady: every watch event and every reconcileEvery reconciles. The Agent
// (agent.ts) does the work; this chart says when, and is what a person sees in the visualizer.
import { assign, setup } from "xstate";

export interface AgentInput {
  reconcileEveryMs: number;
}

export interface AgentContext {
  reconcileEveryMs: number;
  /** Tasks resumed from the worker store at start. */
  resumed: number;
  /** Times the NATS connection came back (each one resynchronises). */
  resyncs: number;
}

export type AgentEvent =
  | { type: "STARTED"; resumed: number }
  | { type: "SYNCED" }
  | { type: "DISCONNECTED" }
  | { type: "RECONNECTED" }
  | { type: "STOP" };

export const agentMachine = setup({
  types: {
    input: {} as AgentInput,
    context: {} as AgentContext,
    events: {} as AgentEvent,
  },
  actions: {
    // Provided by the Agent.
    reconcile: () => undefined,
    resync: () => undefined,
    noteStarted: assign({ resumed: ({ event }) => (event as { resumed: number }).resumed }),
    countResync: assign({ resyncs: ({ context }) => context.resyncs + 1 }),
  },
  delays: {
    reconcileEvery: ({ context }) => context.reconcileEveryMs,
  },
}).createMachine({
  id: "agent",
  context: ({ input }) => ({ reconcileEveryMs: input.reconcileEveryMs, resumed: 0, resyncs: 0 }),
  initial: "starting",
  on: { STOP: ".stopped" },
  states: {
    starting: {
      on: { STARTED: { target: "syncing", actions: "noteStarted" }, DISCONNECTED: "disconnected" },
    },
    syncing: {
      on: { SYNCED: { target: "steady", actions: "reconcile" }, DISCONNECTED: "disconnected" },
    },
    steady: {
      after: { reconcileEvery: { target: "steady", reenter: true, actions: "reconcile" } },
      on: { DISCONNECTED: "disconnected" },
    },
    disconnected: {
      on: { RECONNECTED: { target: "syncing", actions: ["countResync", "resync"] } },
    },
    stopped: { type: "final" },
  },
});
