// NATS-backed effects of the lease statechart (lease.machine.ts), on the `leases` bucket whose
// TTL is the lease TTL: a holder that stops renewing loses the key by expiry.
//
// Epochs. Each term's epoch is the KV revision (stream sequence) of the `create` that won it.
// "Previous epoch + 1" cannot be kept on nats-server 2.9: when the lease expires by TTL its
// value is gone, and with it the last epoch. Stream sequences never go back, so epochs still
// strictly increase from term to term; the winner writes its epoch into the lease record at once
// (an update right after the create) and into every schedule entry of its term.
import type { KV } from "@nats-io/kv";
import type { Logger } from "pino";
import { fromPromise } from "xstate";
import { encode, decodeAs } from "../protocol/codec.js";
import { LeaseRecord } from "../protocol/messages.js";
import { LEASE_KEY_ENGINE, keys } from "../protocol/names.js";
import { describeError, isWrongLastSequence } from "../protocol/errors.js";
import { leaseMachine, type AcquireResult } from "./lease.machine.js";

export const LEASE_KEY = keys.lease(LEASE_KEY_ENGINE);

/** Reads the lease record; undefined when absent, "garbage" when unreadable (logged). */
export async function readLease(kv: KV, log: Logger): Promise<LeaseRecord | undefined | "garbage"> {
  const e = await kv.get(LEASE_KEY);
  if (!e || e.operation !== "PUT") return undefined;
  try {
    return decodeAs(LeaseRecord, e.value, `leases/${LEASE_KEY}`);
  } catch (err) {
    log.warn({ err: describeError(err) }, "skipping an unreadable lease record; it expires with the lease TTL");
    return "garbage";
  }
}

export async function acquireLease(kv: KV, holder: string, ttlMs: number, log: Logger): Promise<AcquireResult> {
  let rev: number;
  try {
    rev = await kv.create(LEASE_KEY, encode({ holder, epoch: 0, expiresAt: Date.now() + ttlMs } satisfies LeaseRecord));
  } catch (e) {
    if (!isWrongLastSequence(e) && !/exists/i.test(describeError(e))) throw e;
    const cur = await readLease(kv, log);
    return { acquired: false, holder: cur === "garbage" ? "(unreadable)" : cur?.holder };
  }
  const sentAt = Date.now();
  const record: LeaseRecord = { holder, epoch: rev, expiresAt: sentAt + ttlMs };
  const revision = await kv.update(LEASE_KEY, encode(record), rev);
  return { acquired: true, epoch: rev, revision, sentAt };
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

/** The lease statechart with its NATS-backed effects. */
export function leaseMachineFor(kv: KV, log: Logger, onRenewed?: (ms: number) => void) {
  return leaseMachine.provide({
    actors: {
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
