// Listing the keys of a KV bucket without a consumer. `kv.keys()` (nats.js 3) creates a consumer
// and waits until it has delivered as many messages as it counted at the start; in a TTL bucket
// (states, machines, leases) a value that expires in between is never delivered and keys()
// hangs (measured: 8 s and more against nats-server 2.9.10). STREAM.INFO with a subjects filter
// answers in one request and can only miss a key that expired, which is what we want.
import type { NatsConnection } from "@nats-io/nats-core";
import { jetstreamManager } from "@nats-io/jetstream";

/** Keys under `filter` (a key or a wildcard such as `hello.service.*`) whose last entry still exists (deletes included). */
export async function listKeys(nc: NatsConnection, bucket: string, filter = ">"): Promise<string[]> {
  const jsm = await jetstreamManager(nc);
  const prefix = `$KV.${bucket}.`;
  const info = await jsm.streams.info(`KV_${bucket}`, { subjects_filter: `${prefix}${filter}` });
  return Object.keys(info.state.subjects ?? {}).map((s) => s.slice(prefix.length));
}

/** A bucket with what listing its keys needs. */
export interface BucketRef {
  kv: import("@nats-io/kv").KV;
  nc: NatsConnection;
  /** The bucket's name (Names.bucket(role)). */
  name: string;
}
