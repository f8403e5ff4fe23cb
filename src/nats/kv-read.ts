// Reading the current values of a KV bucket (or of the keys under a filter) without a consumer:
// the keys from STREAM.INFO with a subjects filter, then one DIRECT.GET last-by-subject per key,
// many in flight at once; when the stream has no leader (STREAM.INFO does not answer), one scan
// of the stream by DIRECT.GET next-by-subject (kv-keys.ts). Why not an ordered consumer (one
// stream read): in a JetStream cluster that lost a node, creating one failed 9 of 20 times 10 s
// after the loss (nats-server 2.9.10, R3), for as long as the node stayed away; DIRECT.GET
// answered 20 of 20 (any replica answers a direct get). Each request is retried on temporary
// errors (js-retry.ts).
//
// A key listed by STREAM.INFO whose value is gone by the time of its get (TTL expiry, purge) is
// left out; so are delete markers.
import type { NatsConnection } from "@nats-io/nats-core";
import { directRequest, keysByInfo, scanBucket, type CurrentValue } from "./kv-keys.js";
import { withJsRetry, type RetryOptions } from "./js-retry.js";

export type { CurrentValue } from "./kv-keys.js";

/** Direct gets in flight at once: sequential ones cost a round trip each; unbounded ones flood. */
export const GETS_IN_FLIGHT = 256;

/**
 * The last value of one key by DIRECT.GET (any replica answers); undefined when the key has
 * none, or its last entry is a delete or purge marker.
 */
export async function directGetLast(nc: NatsConnection, bucket: string, key: string, retry: RetryOptions = {}): Promise<CurrentValue | undefined> {
  const subj = `$JS.API.DIRECT.GET.KV_${bucket}.$KV.${bucket}.${key}`;
  const m = await withJsRetry(() => directRequest(nc, subj, "", `${bucket}/${key}`), { what: `get ${bucket}/${key}`, ...retry });
  if (!m || m.deleted) return undefined;
  return { key, value: m.data, revision: m.seq };
}

/** Current values of the given keys, in the given order (undefined where there is none). */
export async function directGetMany(
  nc: NatsConnection,
  bucket: string,
  keys: string[],
  retry: RetryOptions = {},
): Promise<(CurrentValue | undefined)[]> {
  const out: (CurrentValue | undefined)[] = new Array(keys.length);
  let next = 0;
  const worker = async () => {
    while (next < keys.length) {
      const i = next++;
      out[i] = await directGetLast(nc, bucket, keys[i]!, retry);
    }
  };
  await Promise.all(Array.from({ length: Math.min(GETS_IN_FLIGHT, keys.length) }, worker));
  return out;
}

/** Every current value under `filter` (default: the whole bucket), in key order. */
export async function readBucket(nc: NatsConnection, bucket: string, filter = ">", retry: RetryOptions = {}): Promise<CurrentValue[]> {
  const keys = await keysByInfo(nc, bucket, filter);
  if (keys) {
    const values = await directGetMany(nc, bucket, keys.sort(), retry);
    return values.filter((v): v is CurrentValue => v !== undefined);
  }
  const scanned = await scanBucket(nc, bucket, filter, retry);
  return [...scanned.values()].filter((v): v is CurrentValue => v !== null).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}
