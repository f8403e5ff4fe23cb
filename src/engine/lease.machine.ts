// The engine's leader election (fleet's engine lease): follower → candidate → leader.
//
//  follower ──retry──▶ candidate ──acquired──▶ leader.holding ──renewEvery──▶ leader.renewing
//     ▲                   │ taken / error            ▲                          │ ok
//     └───────────────────┘                          └──────────────────────────┘
//     ▲                                                     error / no answer in renewTimeout
//     └──────────────────────── step down at once ──────────────┘
//  RESIGN (from anywhere): a leader releases its lease (so others need not wait a TTL), then stopped.
//  VACANT (the `vacancy` child saw the lease key deleted: a leader let go): a follower stands
//  at once instead of at its next retry; one that hears it while standing stands again once more.
//
// The effects are actors injected with .provide(): `acquire` (KV create of the lease key, then a
// first update that records the term's epoch), `renew` (KV update by revision), `release` (KV
// delete guarded by revision), `vacancy` (a watch of the lease key: VACANT on a delete). This
// file decides nothing about NATS; the pure timing lives in leaseTimings().
import { assign, fromCallback, fromPromise, setup } from "xstate";

export interface LeaseInput {
  holder: string;
  ttlMs: number;
}

export type AcquireResult =
  | { acquired: true; epoch: number; revision: number; sentAt?: number }
  | { acquired: false; holder?: string };

export interface LeaseContext {
  holder: string;
  ttlMs: number;
  /** The term: strictly increasing across leaders (see lease.ts for why it is a stream sequence). */
  epoch: number;
  /** KV revision of our latest write of the lease; the next renewal must match it. */
  revision: number;
  /**
   * Until when the lease is surely ours: the send time of the last write the server accepted
   * (create or compare-and-set update) plus the TTL. Nobody can win the key before it expires,
   * and it cannot expire before then. 0 when unknown.
   */
  validUntil: number;
  /** Who holds the lease, as last seen by a candidate that lost. */
  seenHolder: string;
  lastError: string;
  terms: number;
  /** A VACANT came while an acquire was in flight: if it loses, stand again at once. */
  vacant: boolean;
}

export type LeaseEvent = { type: "RESIGN" } | { type: "VACANT" };

/**
 * Renew every TTL/3; a renewal unanswered after TTL/2 is a failure, so a leader gives up at the
 * latest 5/6 TTL after its last good renewal, before the lease can expire and someone else win
 * it. Candidates retry often (TTL/10, 50–500 ms): failover is the TTL plus at most this.
 */
export function leaseTimings(ttlMs: number): { renewEvery: number; renewTimeout: number; retry: number } {
  return {
    renewEvery: Math.max(1, Math.floor(ttlMs / 3)),
    renewTimeout: Math.max(1, Math.floor(ttlMs / 2)),
    retry: Math.min(500, Math.max(50, Math.floor(ttlMs / 10))),
  };
}

export const leaseMachine = setup({
  types: {
    input: {} as LeaseInput,
    context: {} as LeaseContext,
    events: {} as LeaseEvent,
  },
  actors: {
    acquire: fromPromise<AcquireResult, { holder: string; ttlMs: number }>(async () => {
      throw new Error("acquire not provided");
    }),
    renew: fromPromise<{ revision: number; sentAt?: number }, { holder: string; ttlMs: number; epoch: number; revision: number }>(async () => {
      throw new Error("renew not provided");
    }),
    release: fromPromise<void, { revision: number }>(async () => undefined),
    /** Watches the lease key for a holder letting go; without it, followers retry on their timer only. */
    vacancy: fromCallback<LeaseEvent>(() => () => undefined),
  },
  guards: {
    acquired: ({ event }) => (event as unknown as { output: AcquireResult }).output.acquired,
    vacant: ({ context }) => context.vacant,
  },
  actions: {
    takeTerm: assign(({ context, event }) => {
      const out = (event as unknown as { output: AcquireResult & { acquired: true } }).output;
      return {
        epoch: out.epoch,
        revision: out.revision,
        validUntil: out.sentAt !== undefined ? out.sentAt + context.ttlMs : 0,
        terms: context.terms + 1,
        lastError: "",
        seenHolder: context.holder,
        vacant: false,
      };
    }),
    noteHolder: assign(({ event }) => ({ seenHolder: (event as unknown as { output: { holder?: string } }).output.holder ?? "" })),
    noteRenewal: assign(({ context, event }) => {
      const out = (event as unknown as { output: { revision: number; sentAt?: number } }).output;
      return { revision: out.revision, validUntil: out.sentAt !== undefined ? out.sentAt + context.ttlMs : 0 };
    }),
    forgetLease: assign({ validUntil: 0 }),
    noteError: assign(({ event }) => ({ lastError: errorText((event as unknown as { error: unknown }).error) })),
    noteTimeout: assign({ lastError: "lease renewal got no answer in time" }),
    noteVacant: assign({ vacant: true }),
    clearVacant: assign({ vacant: false }),
  },
  delays: {
    retry: ({ context }) => leaseTimings(context.ttlMs).retry,
    renewEvery: ({ context }) => leaseTimings(context.ttlMs).renewEvery,
    renewTimeout: ({ context }) => leaseTimings(context.ttlMs).renewTimeout,
  },
}).createMachine({
  id: "lease",
  context: ({ input }) => ({
    holder: input.holder,
    ttlMs: input.ttlMs,
    epoch: 0,
    revision: 0,
    validUntil: 0,
    seenHolder: "",
    lastError: "",
    terms: 0,
    vacant: false,
  }),
  invoke: { id: "vacancy", src: "vacancy" },
  initial: "candidate",
  on: { RESIGN: ".stopped" },
  states: {
    follower: {
      always: { guard: "vacant", target: "candidate" },
      on: { VACANT: "candidate" },
      after: { retry: "candidate" },
    },
    candidate: {
      entry: "clearVacant",
      on: { VACANT: { actions: "noteVacant" } },
      invoke: {
        id: "acquire",
        src: "acquire",
        input: ({ context }) => ({ holder: context.holder, ttlMs: context.ttlMs }),
        onDone: [
          { guard: "acquired", target: "leader", actions: "takeTerm" },
          { target: "follower", actions: "noteHolder" },
        ],
        onError: { target: "follower", actions: "noteError" },
      },
    },
    leader: {
      initial: "holding",
      on: { RESIGN: { target: ".releasing", actions: "forgetLease" } },
      states: {
        holding: {
          after: { renewEvery: "renewing" },
        },
        renewing: {
          invoke: {
            id: "renew",
            src: "renew",
            input: ({ context }) => ({ holder: context.holder, ttlMs: context.ttlMs, epoch: context.epoch, revision: context.revision }),
            onDone: { target: "holding", actions: "noteRenewal" },
            onError: { target: "#lease.follower", actions: ["noteError", "forgetLease"] },
          },
          after: { renewTimeout: { target: "#lease.follower", actions: ["noteTimeout", "forgetLease"] } },
        },
        releasing: {
          invoke: {
            id: "release",
            src: "release",
            input: ({ context }) => ({ revision: context.revision }),
            onDone: "#lease.stopped",
            onError: "#lease.stopped",
          },
        },
      },
    },
    stopped: { type: "final" },
  },
});

/** Whether a snapshot's state is one in which this engine may write (leader, not releasing). */
export function isLeading(value: unknown): boolean {
  return typeof value === "object" && value !== null && "leader" in value && (value as { leader: string }).leader !== "releasing";
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
