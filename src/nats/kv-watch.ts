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
   * Once, after the last entry of the replay (at once when the bucket was empty), also when keys
   * expire (TTL) between the start and their delivery.
   */
  caughtUp(): void;
}

/** While a replay has not ended by a delivered message, the consumer is asked this often whether anything is left. */
const REPLAY_POLL_MS = 250;

export async function watchBucket(nc: NatsConnection, kv: KV, h: WatchHandlers, status?: KvStatus): Promise<BucketWatch> {
  const st = status ?? (await kv.status());
  const prefix = `$KV.${st.bucket}.`;
  // filter_subject, as kv.watch() passes it: filter_subjects (the only one the types list) needs
  // nats-server 2.10.
  const opts = { deliver_policy: DeliverPolicy.LastPerSubject, filter_subject: `${prefix}>` };
  const oc = await jetstream(nc).consumers.getPushConsumer(st.streamInfo.config.name, opts);
  // The replay is over once the consumer has nothing left for us. Counting the messages it held
  // at the start is not enough: a key that expires (bucket TTL) before its delivery is never
  // delivered, and the count is never reached. So the replay ends at the first of: a message the
  // server sent with nothing pending after it; a message at or past the stream's last sequence
  // when the watch began (deliveries come in stream order); the consumer, asked, having nothing
  // pending and nothing sent that we have not seen (the last keys expired undelivered). Never by a
  // timer: a slow replay (a busy link, thousands of machines) must not end early.
  const snapshotSeq = st.streamInfo.state.last_seq;
  const count = (await oc.info(true)).num_pending;
  let lastDelivery = 0;
  let replaying = true;
  let poll: NodeJS.Timeout | undefined;
  const end = (): void => {
    if (!replaying) return;
    replaying = false;
    if (poll) clearTimeout(poll);
    h.caughtUp();
  };
  if (count === 0) end();
  const iter = await oc.consume({
    callback: (m) => {
      const op = m.headers?.get("KV-Operation");
      lastDelivery = m.info.deliverySequence;
      h.entry({
        key: m.subject.substring(prefix.length),
        operation: op === "DEL" || op === "PURGE" ? op : "PUT",
        value: m.data,
        revision: m.seq,
      });
      if (replaying && (m.info.pending === 0 || m.seq >= snapshotSeq)) end();
    },
  });
  const ask = (): void => {
    poll = setTimeout(() => {
      oc.info()
        .then((ci) => {
          if (replaying && ci.num_pending === 0 && ci.delivered.consumer_seq <= lastDelivery) end();
        })
        .catch(() => undefined)
        .finally(() => {
          if (replaying) ask();
        });
    }, REPLAY_POLL_MS);
    poll.unref?.();
  };
  if (replaying) ask();
  return {
    stop: () => {
      replaying = false;
      if (poll) clearTimeout(poll);
      void iter.stop();
    },
    closed: iter.closed().then(() => undefined),
  };
}
