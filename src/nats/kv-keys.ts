// Listing the keys of a KV bucket without a consumer. `kv.keys()` (nats.js 3) creates a consumer
// and waits until it has delivered as many messages as it counted at the start; in a TTL bucket
// (states, machines, leases) a value that expires in between is never delivered and keys()
// hangs (measured: 8 s and more against nats-server 2.9.10). STREAM.INFO with a subjects filter
// answers in one request and can only miss a key that expired, which is what we want.
//
// In a JetStream cluster that lost a node, consumers are no way out either: creating one kept
// failing for as long as the node was away (an ephemeral consumer is placed on a random peer of
// the stream, the dead one included: 9 of 20 creates timed out 10 s after the loss, on 2.9.10).
// STREAM.INFO needs the stream's leader: when the dead node led the stream, it timed out for
// 7.5-10 s after the kill (longer than the writes, which came back after about 6 s). What keeps
// answering throughout is DIRECT.GET (any replica answers it). So when STREAM.INFO does not
// answer within ATTEMPT_TIMEOUT_MS, the listing scans the stream with DIRECT.GET next-by-subject
// instead (one request per message, sequential: about 0.2 s for 1,000 keys), and keeps to the
// scan for that bucket for a few seconds (SCAN_STICKY_MS) before trying STREAM.INFO again.
import { kvNames } from "../protocol/names.js";
import { Empty, type NatsConnection } from "@nats-io/nats-core";
import { jetstreamManager } from "@nats-io/jetstream";
import { isTemporaryJsError, withJsRetry, type RetryOptions } from "./js-retry.js";

/** One STREAM.INFO attempt: it answers in milliseconds when the stream has a leader. */
export const ATTEMPT_TIMEOUT_MS = 1500;
/** One DIRECT.GET attempt (a replica answers in well under a millisecond when it is up). */
export const GET_TIMEOUT_MS = 1500;
/** After STREAM.INFO failed on a bucket, list it by scanning for this long. */
export const SCAN_STICKY_MS = 5000;

/** What a message of a KV stream holds, as a listing needs it. */
export interface CurrentValue {
  key: string;
  value: Uint8Array;
  revision: number;
}

const scanUntil = new Map<string, number>();

/** Keys under `filter` (a key or a wildcard such as `hello.service.*`) whose last entry still exists (deletes included). */
export async function listKeys(nc: NatsConnection, bucket: string, filter = ">", retry: RetryOptions = {}): Promise<string[]> {
  const info = await keysByInfo(nc, bucket, filter);
  if (info) return info;
  return [...(await scanBucket(nc, bucket, filter, retry)).keys()];
}

/**
 * The keys from STREAM.INFO, or undefined when the stream's leader does not answer (then the
 * caller scans). Non-temporary errors (no such bucket) are thrown.
 */
export async function keysByInfo(nc: NatsConnection, bucket: string, filter = ">"): Promise<string[] | undefined> {
  if ((scanUntil.get(bucket) ?? 0) > Date.now()) return undefined;
  const prefix = kvNames.subjectPrefix(bucket);
  try {
    // checkAPI: false: no $JS.API.INFO round trip before every listing.
    const jsm = await jetstreamManager(nc, { timeout: ATTEMPT_TIMEOUT_MS, checkAPI: false });
    const info = await jsm.streams.info(kvNames.stream(bucket), { subjects_filter: `${prefix}${filter}` });
    scanUntil.delete(bucket);
    return Object.keys(info.state.subjects ?? {}).map((s) => s.slice(prefix.length));
  } catch (e) {
    if (!isTemporaryJsError(e)) throw e;
    scanUntil.set(bucket, Date.now() + SCAN_STICKY_MS);
    return undefined;
  }
}

/**
 * The bucket's last stream sequence from STREAM.INFO, bounded by ATTEMPT_TIMEOUT_MS; undefined
 * while the stream has no leader (then, for SCAN_STICKY_MS, at once, without asking again). For
 * a reader that only wants to know whether it has seen the latest write and can answer without
 * (a listing index): a plain STREAM.INFO waits 5 s, and times out for 7.5-10 s after the node
 * that led the stream died.
 */
export async function streamLastSeq(nc: NatsConnection, bucket: string): Promise<number | undefined> {
  if ((scanUntil.get(bucket) ?? 0) > Date.now()) return undefined;
  try {
    const jsm = await jetstreamManager(nc, { timeout: ATTEMPT_TIMEOUT_MS, checkAPI: false });
    const seq = (await jsm.streams.info(kvNames.stream(bucket))).state.last_seq;
    scanUntil.delete(bucket);
    return seq;
  } catch (e) {
    if (!isTemporaryJsError(e)) throw e;
    scanUntil.set(bucket, Date.now() + SCAN_STICKY_MS);
    return undefined;
  }
}

/**
 * Every key under `filter` with its last entry (null: a delete or purge marker), read message by
 * message with DIRECT.GET next-by-subject from the start of the stream: the view a consumer
 * replay would give, without a consumer and without the stream's leader. A key written during
 * the scan shows its newer value (its message moves to the end of the stream).
 */
export async function scanBucket(
  nc: NatsConnection,
  bucket: string,
  filter = ">",
  retry: RetryOptions = {},
): Promise<Map<string, CurrentValue | null>> {
  const prefix = kvNames.subjectPrefix(bucket);
  const subj = kvNames.directGet(bucket);
  const out = new Map<string, CurrentValue | null>();
  let seq = 0;
  for (;;) {
    const body = JSON.stringify({ seq, next_by_subj: `${prefix}${filter}` });
    const m = await withJsRetry(() => directRequest(nc, subj, body, `${bucket} from sequence ${seq}`), {
      what: `scanning ${bucket}`,
      ...retry,
    });
    if (!m) return out;
    const key = m.subject.slice(prefix.length);
    out.set(key, m.deleted ? null : { key, value: m.data, revision: m.seq });
    seq = m.seq + 1;
  }
}

export interface DirectMsg {
  subject: string;
  seq: number;
  data: Uint8Array;
  deleted: boolean;
}

/** One DIRECT.GET; undefined for 404 (no such message). 408/5xx are thrown as temporary. */
export async function directRequest(nc: NatsConnection, subj: string, body: string | Uint8Array, what: string): Promise<DirectMsg | undefined> {
  const m = await nc.request(subj, body === "" ? Empty : body, { timeout: GET_TIMEOUT_MS });
  const code = m.headers?.code ?? 0;
  if (code === 404) return undefined;
  if (code !== 0) {
    const err = new Error(`direct get ${what}: ${code} ${m.headers?.description ?? ""}`.trim());
    // 408/503 and the like: the replica is not ready yet; worth another try.
    if (code >= 500 || code === 408) err.name = "TimeoutError";
    throw err;
  }
  const op = m.headers?.get("KV-Operation");
  return {
    subject: m.headers?.get("Nats-Subject") ?? "",
    seq: Number(m.headers?.get("Nats-Sequence") ?? 0),
    data: m.data,
    deleted: op === "DEL" || op === "PURGE",
  };
}

/** A bucket with what listing its keys needs. */
export interface BucketRef {
  kv: import("@nats-io/kv").KV;
  nc: NatsConnection;
  /** The bucket's name (Names.bucket(role)). */
  name: string;
}
