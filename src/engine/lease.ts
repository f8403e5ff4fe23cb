// NATS-backed effects of the lease statechart (lease.machine.ts), on the `leases` bucket whose
// TTL is the lease TTL: a holder that stops renewing loses the key by expiry.
//
// Epochs. Each term's epoch is the KV revision (stream sequence) of the `create` that won it.
// "Previous epoch + 1" cannot be kept on nats-server 2.9: when the lease expires by TTL its
// value is gone, and with it the last epoch. Stream sequences never go back, so epochs still
// strictly increase from term to term; the winner writes its epoch into the lease record at once
// (an update right after the create) and into every schedule entry of its term.
import type { LeaseKv as KV } from "../store/engine-store.js";
import type { Logger } from "pino";
import { fromCallback, fromPromise } from "xstate";
import { encode, decodeAs } from "../protocol/codec.js";
import { LeaseRecord } from "../protocol/messages.js";
import { LEASE_KEY_ENGINE, keys } from "../protocol/names.js";
import { describeError, isWrongLastSequence } from "../protocol/errors.js";
import { leaseMachine, type AcquireResult, type LeaseEvent } from "./lease.machine.js";
import type { BucketWatch, WatchHandlers } from "../nats/kv-watch.js";

export const LEASE_KEY = keys.lease(LEASE_KEY_ENGINE);

/** Reads the lease record; undefined when absent, "garbage" when unreadable (logged). */
export async function readLease(kv: KV, log: Logger): Promise<LeaseRecord | undefined | "garbage"> {
  const e = await readLeaseEntry(kv, log);
  return e === undefined || e === "garbage" ? e : e.record;
}

async function readLeaseEntry(kv: KV, log: Logger): Promise<{ record: LeaseRecord; revision: number } | undefined | "garbage"> {
  const e = await kv.get(LEASE_KEY);
  if (!e || e.operation !== "PUT") return undefined;
  try {
    return { record: decodeAs(LeaseRecord, e.value, `leases/${LEASE_KEY}`), revision: e.revision };
  } catch (err) {
    log.warn({ err: describeError(err) }, "skipping an unreadable lease record; it expires with the lease TTL");
    return "garbage";
  }
}

/**
 * Create the key, then record the term's epoch in it with an update. Either step can fail after
 * the server took it (a lost reply); the key then holds a record of ours that nobody else can
 * take for a whole TTL. So a record of our own holder found in the key is ours: we lead with its
 * revision instead of waiting for it to expire.
 */
export async function acquireLease(kv: KV, holder: string, ttlMs: number, log: Logger): Promise<AcquireResult> {
  let rev: number;
  const createdAt = Date.now();
  try {
    rev = await kv.create(LEASE_KEY, encode({ holder, epoch: 0, expiresAt: createdAt + ttlMs } satisfies LeaseRecord));
  } catch (e) {
    if (!isWrongLastSequence(e) && !/exists/i.test(describeError(e))) throw e;
    const cur = await readLeaseEntry(kv, log);
    if (cur !== "garbage" && cur?.record.holder === holder) {
      // Our own create (or update) whose answer we never got. When it was sent is unknown, so
      // the lease counts as held only from the first renewal on (validUntil 0 until then).
      log.info({ revision: cur.revision }, "the lease key holds our own record from an acquire whose answer was lost; taking it");
      return { acquired: true, epoch: cur.record.epoch || cur.revision, revision: cur.revision };
    }
    return { acquired: false, holder: cur === "garbage" ? "(unreadable)" : cur?.record.holder };
  }
  const sentAt = Date.now();
  const record: LeaseRecord = { holder, epoch: rev, expiresAt: sentAt + ttlMs };
  try {
    const revision = await kv.update(LEASE_KEY, encode(record), rev);
    return { acquired: true, epoch: rev, revision, sentAt };
  } catch (e) {
    // The key is ours whether or not the update landed: find out at which revision. The key
    // expires no earlier than TTL after the create was sent.
    const cur = await readLeaseEntry(kv, log).catch(() => undefined);
    if (cur !== undefined && cur !== "garbage" && cur.record.holder === holder) {
      log.warn({ err: describeError(e), revision: cur.revision }, "recording the lease's epoch failed; leading with the key as it stands");
      return { acquired: true, epoch: rev, revision: cur.revision, sentAt: createdAt };
    }
    // Cannot tell: give the key back (guarded by its revision) so that nobody waits a TTL.
    await kv.delete(LEASE_KEY, { previousSeq: rev }).catch(() => undefined);
    throw e;
  }
}

export async function renewLease(
  kv: KV,
  i: { holder: string; ttlMs: number; epoch: number; revision: number },
): Promise<{ revision: number; sentAt?: number }> {
  const sentAt = Date.now();
  const record: LeaseRecord = { holder: i.holder, epoch: i.epoch, expiresAt: sentAt + i.ttlMs };
  const revision = await kv.update(LEASE_KEY, encode(record), i.revision, Math.max(100, Math.floor(i.ttlMs / 2)));
  return { revision, sentAt };
}

export async function releaseLease(kv: KV, revision: number): Promise<void> {
  await kv.delete(LEASE_KEY, { previousSeq: revision });
}

/**
 * The lease statechart with its NATS-backed effects. `watch` follows the lease key (the store's
 * watchLease): a delete or purge there is a holder letting go, and a follower stands at once.
 * Expiry leaves no marker on nats-server 2.9, so a crashed leader's lease is still found by the
 * retry timer.
 */
export function leaseMachineFor(kv: KV, log: Logger, onRenewed?: (ms: number) => void, watch?: (h: WatchHandlers) => Promise<BucketWatch>) {
  return leaseMachine.provide({
    actors: {
      vacancy: fromCallback<LeaseEvent>(({ sendBack }) => {
        if (!watch) return () => undefined;
        let w: BucketWatch | undefined;
        let stopped = false;
        watch({
          entry: (e) => {
            if (e.operation !== "PUT") sendBack({ type: "VACANT" });
          },
          caughtUp: () => undefined,
        }).then(
          (opened) => {
            if (stopped) opened.stop();
            else w = opened;
          },
          (e: unknown) => {
            if (!stopped) log.warn({ err: describeError(e) }, "cannot watch the engine lease; a leader's release is noticed at the next retry only");
          },
        );
        return () => {
          stopped = true;
          w?.stop();
        };
      }),
      acquire: fromPromise(({ input }: { input: { holder: string; ttlMs: number } }) => acquireLease(kv, input.holder, input.ttlMs, log)),
      renew: fromPromise(async ({ input }: { input: { holder: string; ttlMs: number; epoch: number; revision: number } }) => {
        const t0 = Date.now();
        const r = await renewLease(kv, input);
        onRenewed?.(Date.now() - t0);
        return r;
      }),
      release: fromPromise(({ input }: { input: { revision: number } }) => releaseLease(kv, input.revision)),
    },
  });
}
