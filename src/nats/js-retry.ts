// Retrying what JetStream refuses for a moment. In a JetStream cluster a node loss costs a few
// seconds of leader elections; meanwhile requests time out (the stream leader is gone and no one
// answers yet) or get 503 no responders, which nats.js reports as "jetstream is not enabled" (a
// KV put to a stream without a leader has no responder). Measured on nats-server 2.9.10, 3
// nodes, R3 bucket, one node SIGKILLed: puts fail 4-6 s with "jetstream is not enabled", the
// first STREAM.INFO after the kill times out (5 s), then everything answers again.
//
// Retrying a write after a timeout is safe for our writes: a put is idempotent, and a
// compare-and-set that landed the first time fails the second with 10071 "wrong last sequence",
// which the writers already handle by re-reading (src/unit/store.ts).
import type { KV } from "@nats-io/kv";
import type { Logger } from "pino";
import { describeError } from "../protocol/errors.js";

/** True for what a JetStream cluster answers while it elects a leader (or a node reconnects). */
export function isTemporaryJsError(e: unknown): boolean {
  if (e === null || e === undefined) return false;
  const name = (e as { name?: string }).name ?? "";
  if (name === "TimeoutError" || name === "JetStreamNotEnabled" || name === "NoRespondersError") return true;
  const code = (e as { code?: unknown }).code;
  // FlotillaError("timeout"/"nats_unavailable", { temporary: true }) and friends.
  if ((e as { temporary?: unknown }).temporary === true) return true;
  if (code === "TIMEOUT" || code === "503" || code === 503) return true;
  const text = describeError(e);
  // 10008 "JetStream system temporarily unavailable"; "no suitable peers" while a dead peer is
  // still listed as current; "cluster not available"/"no leader" during elections.
  return /\btimeout\b|timed out|not enabled|no responders|\b503\b|temporarily unavailable|no suitable peers|cluster not available|no (stream |meta )?leader/i.test(
    text,
  );
}

export interface RetryOptions {
  /** Total time allowed for all attempts (default 8 s: under the CLI's 10 s request timeout). */
  budgetMs?: number;
  /** First delay; doubles up to maxDelayMs (default 100 ms, 1 s). */
  delayMs?: number;
  maxDelayMs?: number;
  /** What is being done, for the log line ("get units/hello.service"). */
  what?: string;
  log?: Logger;
}

/**
 * Calls fn until it resolves, a non-temporary error, or the budget is spent (then the last error
 * is thrown as it was). Temporary errors are retried with backoff.
 */
export async function withJsRetry<T>(fn: () => Promise<T>, o: RetryOptions = {}): Promise<T> {
  const budget = o.budgetMs ?? 8000;
  const deadline = Date.now() + budget;
  let delay = o.delayMs ?? 100;
  const maxDelay = o.maxDelayMs ?? 1000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (!isTemporaryJsError(e)) throw e;
      const left = deadline - Date.now();
      if (left <= 0) throw e;
      const wait = Math.min(delay, left);
      o.log?.warn(`JetStream did not answer ${o.what ?? "a request"}: ${describeError(e)} (attempt ${attempt}, retrying in ${wait} ms)`);
      await new Promise((r) => setTimeout(r, wait));
      delay = Math.min(delay * 2, maxDelay);
    }
  }
}

const RETRIED = new Set(["get", "put", "create", "update", "delete", "purge", "status"]);

/**
 * The same KV, with get/put/create/update/delete/purge/status retried on temporary JetStream
 * errors (watch, keys and history pass through: they are long-lived and have their own
 * recovery). For request handlers, where an answer a few seconds late beats an error.
 */
export function retryingKv(kv: KV, o: Omit<RetryOptions, "what"> & { bucket?: string } = {}): KV {
  return new Proxy(kv, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== "function") return v;
      const f = v as (...args: unknown[]) => unknown;
      if (typeof prop !== "string" || !RETRIED.has(prop)) return f.bind(target);
      return (...args: unknown[]) =>
        withJsRetry(() => f.apply(target, args) as Promise<unknown>, {
          ...o,
          what: `${prop} ${o.bucket ?? ""}${typeof args[0] === "string" ? `/${args[0]}` : ""}`,
        });
    },
  });
}

/** Every bucket of a record wrapped with retryingKv. */
export function retryingBuckets<K extends string>(b: Record<K, KV>, o: Omit<RetryOptions, "what"> = {}): Record<K, KV> {
  const out = {} as Record<K, KV>;
  for (const k of Object.keys(b) as K[]) out[k] = retryingKv(b[k], { ...o, bucket: k });
  return out;
}
