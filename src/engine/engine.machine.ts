// The engine's statechart (fleet's engine): its term and its rounds, made explicit.
//
//  engine
//  ├── (child) lease              candidate → leader.{holding, renewing} → … (lease.machine.ts)
//  ├── follower ──LEADING──▶ leading
//  │                          ├── loading      the watches replay units, schedule, machines
//  │                          ├── idle  ◀──────────────┐   after nextWake (a timer round, or the
//  │                          │   │ CHANGE            │   moment a machine's silence reaches TTL)
//  │                          ├── debouncing ──after debounce──▶ deciding
//  │                          ├── deciding     one round: decide and write (invoked)
//  │                          ├── pausing      the duty bound while a flood still pours in (QUIET ends it)
//  │                          └── resyncing    someone else wrote into the schedule: replay it
//  ├── standingDown → stoodDown   the cluster state cannot be read: give the lease up (the
//  │                              Engine stands again after a pause)
//  └── stopping → releasing → stopped   the round in flight ends, then the lease is released
//
// NOT_LEADING (the lease is lost) ends a term from any leading state. A FLOOD (1,000 changes
// waiting) starts a round at once instead of waiting for the debounce timer, which a busy socket
// starves. The work itself (views, watches, the reconciler, the writer) lives in the Engine
// (engine.ts), which provides the actors and actions named here; this file decides only when.
import { assign, enqueueActions, fromCallback, fromPromise, sendTo, setup, stateIn } from "xstate";
import { isLeading, leaseMachine } from "./lease.machine.js";

export interface EngineInput {
  holder: string;
  leaseTtlMs: number;
  debounceMs: number;
}

/** What a round reports back (engine.ts decides and writes; this chart only sequences). */
export interface RoundOutput {
  /** Something was placed or removed: another round follows. */
  progress: boolean;
  /** Wait before that round (the duty bound while changes pour in), ms. */
  dutyMs: number;
  /** When nothing follows: the next timer round, ms from now. */
  nextWakeMs: number;
  /** Someone else wrote into the schedule (or a write failed): reload it first. */
  resync?: string;
}

export interface EngineContext {
  holder: string;
  leaseTtlMs: number;
  debounceMs: number;
  epoch: number;
  /** A change came while a round ran: another round follows it. */
  again: boolean;
  /** The round about to run is a timer round (it also checks the schedule for foreign writes). */
  periodic: boolean;
  dutyMs: number;
  nextWakeMs: number;
  lastWhy: string;
  rounds: number;
}

export type EngineEvent =
  | { type: "CHANGE" }
  | { type: "FLOOD" }
  | { type: "READY" }
  | { type: "QUIET" }
  | { type: "WATCH_FAILED"; why: string }
  | { type: "LEADING"; epoch: number }
  | { type: "NOT_LEADING"; why: string }
  | { type: "STOP" };

const outputOf = (e: unknown): RoundOutput => (e as { output: RoundOutput }).output;

export const engineMachine = setup({
  types: {
    input: {} as EngineInput,
    context: {} as EngineContext,
    events: {} as EngineEvent,
  },
  actors: {
    /** The lease statechart; the Engine provides it with its NATS-backed effects (lease.ts). */
    lease: leaseMachine,
    /** Opens the watches for the term; sends READY once every bucket replayed, CHANGE/FLOOD as they come, WATCH_FAILED. */
    watches: fromCallback<EngineEvent, { epoch: number }>(() => () => undefined),
    round: fromPromise<RoundOutput, { periodic: boolean }>(async () => ({ progress: false, dutyMs: 0, nextWakeMs: 2000 })),
    /** While the duty bound holds: sends QUIET once the changes have stopped coming in. */
    quiet: fromCallback<EngineEvent>(() => () => undefined),
    /** Replays the schedule into the view after a foreign write. */
    resync: fromPromise<void, { why: string }>(async () => undefined),
    /** Waits for the round in flight (its writes) to end before the lease is released. */
    drain: fromPromise<void>(async () => undefined),
  },
  actions: {
    // Provided by the Engine: the term's side effects.
    beginTerm: () => undefined,
    /** Leaving the term (the event says why: NOT_LEADING, WATCH_FAILED, STOP). */
    endTerm: () => undefined,
    clusterLoaded: () => undefined,
    leaseChanged: enqueueActions(({ context, event, enqueue }) => {
      const snap = (event as unknown as { snapshot: { value: unknown; status: string; context: { epoch: number; lastError: string } } }).snapshot;
      const leading = isLeading(snap.value);
      if (leading && context.epoch !== snap.context.epoch) enqueue.raise({ type: "LEADING", epoch: snap.context.epoch });
      else if (!leading && context.epoch !== 0) enqueue.raise({ type: "NOT_LEADING", why: snap.context.lastError || (snap.status === "done" ? "resigned" : "lost the lease") });
    }),
    takeEpoch: assign({ epoch: ({ event }) => (event as { epoch: number }).epoch, again: false }),
    forgetEpoch: assign({ epoch: 0, lastWhy: ({ event }) => (event as { why?: string }).why ?? "" }),
    noteAgain: assign({ again: true }),
    timerRound: assign({ periodic: true }),
    changeRound: assign({ periodic: false }),
    tookRound: assign(({ context, event }) => {
      const out = outputOf(event);
      return {
        again: false,
        rounds: context.rounds + 1,
        dutyMs: out.dutyMs,
        nextWakeMs: out.nextWakeMs,
        lastWhy: out.resync ?? context.lastWhy,
      };
    }),
    noteWhy: assign({ lastWhy: ({ event }) => (event as { why: string }).why }),
    resign: sendTo("lease", { type: "RESIGN" }),
  },
  guards: {
    standingDown: stateIn("#engine.standingDown"),
    needsResync: ({ event }) => outputOf(event).resync !== undefined,
    roundAgainNow: ({ context, event }) => (context.again || outputOf(event).progress) && outputOf(event).dutyMs <= 0,
    roundAgainLater: ({ context, event }) => context.again || outputOf(event).progress,
  },
  delays: {
    debounce: ({ context }) => context.debounceMs,
    duty: ({ context }) => Math.max(0, context.dutyMs),
    nextWake: ({ context }) => Math.max(0, context.nextWakeMs),
    drainBudget: 1000,
  },
}).createMachine({
  id: "engine",
  context: ({ input }) => ({
    holder: input.holder,
    leaseTtlMs: input.leaseTtlMs,
    debounceMs: input.debounceMs,
    epoch: 0,
    again: false,
    periodic: false,
    dutyMs: 0,
    nextWakeMs: 0,
    lastWhy: "",
    rounds: 0,
  }),
  invoke: {
    id: "lease",
    systemId: "lease",
    src: "lease",
    input: ({ context }) => ({ holder: context.holder, ttlMs: context.leaseTtlMs }),
    onSnapshot: { actions: "leaseChanged" },
    // The lease ends only when told to (RESIGN, on stop or when standing down): then so do we.
    onDone: [{ guard: "standingDown", target: ".stoodDown" }, { target: ".stopped" }],
  },
  initial: "follower",
  on: { STOP: ".stopping" },
  states: {
    follower: {
      on: { LEADING: { target: "leading", actions: "takeEpoch" } },
    },
    leading: {
      entry: "beginTerm",
      exit: "endTerm",
      invoke: {
        id: "watches",
        src: "watches",
        input: ({ context }) => ({ epoch: context.epoch }),
      },
      on: {
        NOT_LEADING: { target: "follower", actions: "forgetEpoch" },
        LEADING: { target: "leading", reenter: true, actions: "takeEpoch" },
        WATCH_FAILED: { target: "standingDown", actions: "noteWhy" },
      },
      initial: "loading",
      states: {
        loading: {
          on: { READY: { target: "deciding", actions: ["clusterLoaded", "changeRound"] } },
        },
        idle: {
          on: {
            CHANGE: { target: "debouncing", actions: "changeRound" },
            FLOOD: { target: "deciding", actions: "changeRound" },
          },
          after: { nextWake: { target: "deciding", actions: "timerRound" } },
        },
        debouncing: {
          on: { FLOOD: "deciding" },
          after: { debounce: "deciding" },
        },
        deciding: {
          invoke: {
            id: "round",
            src: "round",
            input: ({ context }) => ({ periodic: context.periodic }),
            onDone: [
              { guard: "needsResync", target: "resyncing", actions: "tookRound" },
              { guard: "roundAgainNow", target: "deciding", reenter: true, actions: ["tookRound", "changeRound"] },
              { guard: "roundAgainLater", target: "pausing", actions: ["tookRound", "changeRound"] },
              { target: "idle", actions: "tookRound" },
            ],
            onError: { target: "idle", actions: "noteWhy" },
          },
          on: { CHANGE: { actions: "noteAgain" }, FLOOD: { actions: "noteAgain" } },
        },
        // The duty bound holds while changes pour in: they (even a FLOOD) wait for its end. Once
        // they stop (QUIET), the pause has nothing left to make room for: the round starts.
        pausing: {
          invoke: { id: "quiet", src: "quiet" },
          on: { QUIET: "deciding" },
          after: { duty: "deciding" },
        },
        resyncing: {
          invoke: {
            id: "resync",
            src: "resync",
            input: ({ context }) => ({ why: context.lastWhy }),
            onDone: { target: "deciding", actions: "changeRound" },
            onError: { target: "#engine.standingDown", actions: "noteWhy" },
          },
        },
      },
    },
    // The cluster state cannot be read: give the lease up; the Engine stands again after a pause.
    standingDown: {
      entry: "resign",
      after: { drainBudget: "stoodDown" },
    },
    stoodDown: { type: "final" },
    stopping: {
      invoke: { id: "drain", src: "drain", onDone: "releasing", onError: "releasing" },
      after: { drainBudget: "releasing" },
    },
    releasing: {
      entry: "resign",
      after: { drainBudget: "stopped" },
    },
    stopped: { type: "final" },
  },
});
