// Follows a KV bucket as kv.watch() does (the latest value of every key, then every change, on
// nats.js's ordered push consumer, which re-creates itself after a gap or missed heartbeats),
// but hands each entry to a callback as it is parsed. kv.watch() wraps every message in an
// entry object and queues it for an async iterator; for the engine, which takes in 10,000s of
// units at once, that wrapping was about a sixth of the cost of taking a unit in.
import { DeliverPolicy, jetstream } from "@nats-io/jetstream";
import type { KV, KvStatus } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";

/** What a KV watch entry says, and all the engine reads of one (KvWatchEntry has these too). */
export interface BucketEntry {
  key: string;
  operation: "PUT" | "DEL" | "PURGE";
  value: Uint8Array;
  revision: number;
}

export interface BucketWatch {
  stop(): void;
  /** Resolves when the watch has stopped (stop(), or the connection closed). */
  closed: Promise<void>;
}

export interface WatchHandlers {
  entry(e: BucketEntry): void;
  /**
   * Once, after the last entry of the replay (at once when the bucket was empty). A key that
   * expires (TTL) between the count and its delivery is never delivered: then this never comes,
   * and the caller must not wait for it forever.
   */
  caughtUp(): void;
}

export async function watchBucket(nc: NatsConnection, kv: KV, h: WatchHandlers, status?: KvStatus): Promise<BucketWatch> {
  const st = status ?? (await kv.status());
  const prefix = `$KV.${st.bucket}.`;
  // filter_subject, as kv.watch() passes it: filter_subjects (the only one the types list) needs
  // nats-server 2.10.
  const opts = { deliver_policy: DeliverPolicy.LastPerSubject, filter_subject: `${prefix}>` };
  const oc = await jetstream(nc).consumers.getPushConsumer(st.streamInfo.config.name, opts);
  // How many messages the replay holds: the entry after the last of them is news.
  const count = (await oc.info(true)).num_pending;
  let seen = 0;
  let replaying = count > 0;
  if (!replaying) h.caughtUp();
  const iter = await oc.consume({
    callback: (m) => {
      const op = m.headers?.get("KV-Operation");
      h.entry({
        key: m.subject.substring(prefix.length),
        operation: op === "DEL" || op === "PURGE" ? op : "PUT",
        value: m.data,
        revision: m.seq,
      });
      if (replaying && ++seen >= count) {
        replaying = false;
        h.caughtUp();
      }
    },
  });
  return {
    stop: () => void iter.stop(),
    closed: iter.closed().then(() => undefined),
  };
}
