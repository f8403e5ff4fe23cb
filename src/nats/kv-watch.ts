// Follows a KV bucket as kv.watch() does (the latest value of every key, then every change), on
// our own ordered push consumer, handing each entry to a callback as it is parsed. Why not
// kv.watch() / nats.js's ordered push consumer:
// - kv.watch() wraps every message in an entry object and queues it for an async iterator; for
//   the engine, which takes in 10,000s of units at once, that wrapping was about a sixth of the
//   cost of taking a unit in.
// - nats.js's ordered push consumer sets idle_heartbeat to 30 s whatever we ask, and re-creates
//   itself after two missed heartbeats: when the cluster node that holds the (R1) consumer dies,
//   the watch is silent for 60 s and more (measured on nats-server 2.9.10, 3 nodes, R3 bucket).
//   Ours asks for a heartbeat every HEARTBEAT_MS and re-creates the consumer from the next stream
//   sequence after LOST_AFTER_BEATS silent beats, after a gap in the consumer sequence, or when
//   a heartbeat says we missed messages; a create that fails (it times out when placed on the
//   dead node, a third of the time) is retried with backoff for as long as the watch lives.
// - With `slice`, nothing is done inside the client's parse: the NATS client parses all that one
//   turn of the event loop read (Node reads a busy socket up to 32 times, 2 MB, about 5,000
//   entries during a replay) and calls back for each message in that same turn, so a caller that
//   decodes its entries there held the loop 100-300 ms. A sliced watch only queues the message;
//   a drain, one turn of the loop at a time (setImmediate), takes at most slice.max of them or
//   slice.ms of work, whichever comes first, and does everything else there: sequence checks,
//   flow control, the entry, the end of the replay. Order, gaps and the end of the replay come
//   out as without it (caughtUp after the entries before it; `closed`, when the connection
//   closed, after what was queued), and flow control answered at the drain holds the server back
//   while a queue is long.
import { kvNames } from "../protocol/names.js";
import { createInbox, type NatsConnection, type Msg, type Subscription } from "@nats-io/nats-core";
import { AckPolicy, DeliverPolicy, jetstreamManager, type ConsumerConfig } from "@nats-io/jetstream";
import type { KV, KvStatus, KvWatchEntry } from "@nats-io/kv";
import type { Logger } from "pino";
import { describeError } from "../protocol/errors.js";
import { withJsRetry } from "./js-retry.js";
import { flatString } from "../util/flat-string.js";

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
  /** Resolves once every message received so far is handled (sliced watches; at once otherwise or when stopped). */
  idle?(): Promise<void>;
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

export interface WatchOptions {
  /** Keys to follow (one wildcard filter: several need nats-server 2.10); default all. */
  filter?: string;
  /** Heartbeat the server sends while idle (default HEARTBEAT_MS). */
  heartbeatMs?: number;
  /** Where the watch says that it lost its consumer and re-creates it. */
  log?: Logger;
  /**
   * Hand entries over in slices, one per turn of the event loop: at most `max` messages or
   * about `ms` of work per turn (see the top of this file). Without it, each entry is handed
   * over inside the NATS client's parse of the read that brought it.
   */
  slice?: { max: number; ms: number };
}

/** The slices the engine's watches hand over (engine-store.ts): 512 entries or 4 ms of work per turn. The listing index keeps its own queue (index-cache.ts). */
export const WATCH_SLICE = { max: 512, ms: 4 } as const;
/** Messages of a slice between two looks at the clock. */
const CLOCK_EVERY = 32;

export const HEARTBEAT_MS = 2000;
/** Silent heartbeats after which the consumer counts as lost. */
export const LOST_AFTER_BEATS = 3;
const NANOS_PER_MS = 1_000_000;

/** Stream and consumer sequence of a JetStream delivery, from its $JS.ACK reply subject. */
function sequences(reply: string | undefined): { stream: number; consumer: number; pending: number } | undefined {
  if (!reply?.startsWith("$JS.ACK.")) return undefined;
  const t = reply.split(".");
  // $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending> (2.9), or with
  // <domain>.<account hash> after ACK and a random token at the end (2.10+).
  const [s, c, p] = t.length === 9 ? [t[5], t[6], t[8]] : [t[7], t[8], t[10]];
  const stream = Number(s);
  const consumer = Number(c);
  const pending = Number(p);
  return Number.isFinite(stream) && Number.isFinite(consumer) ? { stream, consumer, pending: Number.isFinite(pending) ? pending : -1 } : undefined;
}

/** While a replay has not ended by a delivery, the consumer is asked this often what it has left. */
const REPLAY_POLL_MS = 250;

export async function watchBucket(
  nc: NatsConnection,
  kv: KV,
  h: WatchHandlers,
  status?: KvStatus,
  o: WatchOptions = {},
): Promise<BucketWatch> {
  const st = status ?? (await kv.status());
  const stream = st.streamInfo.config.name;
  const prefix = kvNames.subjectPrefix(st.bucket);
  const hbMs = o.heartbeatMs ?? HEARTBEAT_MS;
  // A create placed on a node that just died times out: a short timeout, then another try.
  const jsm = await jetstreamManager(nc, { checkAPI: false, timeout: 2000 });
  const inboxPrefix = (nc as unknown as { options?: { inboxPrefix?: string } }).options?.inboxPrefix;
  const deliverPrefix = createInbox(inboxPrefix);
  const namePrefix = `fw_${deliverPrefix.slice(deliverPrefix.lastIndexOf(".") + 1)}`;

  let serial = 0;
  let name = "";
  let sub: Subscription | undefined;
  /** Stream sequence of the last entry handed over; the next consumer starts after it. */
  let lastSeq = 0;
  /** Consumer sequence of the last delivery of the current consumer. */
  let cseq = 0;
  let lastActivity = Date.now();
  let done = false;
  let resetting = false;
  let monitor: NodeJS.Timeout | undefined;
  // The replay ends at the first of: `target` deliveries of the current consumer handed over; a
  // delivery the server sent with nothing pending after it, or at or past the stream's last
  // sequence when the watch began (deliveries come in stream order); the consumer, asked, having
  // nothing pending and nothing sent that we have not seen. A count alone is not enough: a key
  // that expires (bucket TTL) before its delivery is never delivered, and 2.9 tells nobody.
  // Never by a timer: a slow replay (a busy link, thousands of machines) must not end early.
  const snapshotSeq = st.streamInfo.state.last_seq;
  let replaying = true;
  let delivered = 0;
  let target: number | undefined;
  let finish: () => void = () => undefined;
  const closed = new Promise<void>((resolve) => (finish = resolve));

  const endReplay = () => {
    if (!replaying) return;
    replaying = false;
    h.caughtUp();
  };
  const checkCaughtUp = () => {
    if (replaying && target !== undefined && delivered >= target) endReplay();
  };

  const onMsg = (mySerial: number, m: Msg) => {
    if (done || mySerial !== serial) return;
    const code = m.headers?.code ?? 0;
    if (code === 100) {
      // Flow control asks for a reply; a heartbeat says how far the consumer got.
      if (m.reply) m.respond();
      const stalled = m.headers?.get("Nats-Consumer-Stalled");
      if (stalled) nc.publish(stalled);
      const last = Number(m.headers?.get("Nats-Last-Consumer") ?? "0");
      if (last > cseq) void reset(`a heartbeat says ${last - cseq} message(s) went missing`);
      return;
    }
    const seq = sequences(m.reply);
    if (!seq) return;
    if (seq.consumer !== cseq + 1) {
      void reset(`consumer sequence ${seq.consumer} after ${cseq}`);
      return;
    }
    cseq = seq.consumer;
    lastSeq = seq.stream;
    delivered++;
    const op = m.headers?.get("KV-Operation");
    h.entry({
      key: flatString(m.subject.substring(prefix.length)),
      operation: op === "DEL" || op === "PURGE" ? op : "PUT",
      value: m.data,
      revision: seq.stream,
    });
    if (replaying && (seq.pending === 0 || seq.stream >= snapshotSeq)) endReplay();
    else checkCaughtUp();
  };

  /** Subscribes and creates the next consumer, starting after lastSeq (the first: last per subject). */
  const create = async () => {
    serial += 1;
    const mySerial = serial;
    const deliver = `${deliverPrefix}.${mySerial}`;
    sub?.unsubscribe();
    sub = nc.subscribe(deliver, { callback: (err, m) => void (err ? undefined : receive(mySerial, m)) });
    cseq = 0;
    delivered = 0;
    target = undefined;
    name = `${namePrefix}_${mySerial}`;
    const config: Partial<ConsumerConfig> = {
      name,
      deliver_subject: deliver,
      // filter_subject, as kv.watch() passes it: filter_subjects needs nats-server 2.10.
      filter_subject: `${prefix}${o.filter ?? ">"}`,
      ack_policy: AckPolicy.None,
      max_deliver: 1,
      flow_control: true,
      idle_heartbeat: hbMs * NANOS_PER_MS,
      // An abandoned one (a create that timed out but landed, a crashed process) goes away.
      inactive_threshold: 30_000 * NANOS_PER_MS,
      num_replicas: 1,
      mem_storage: true,
      ...(lastSeq === 0
        ? { deliver_policy: DeliverPolicy.LastPerSubject }
        : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: lastSeq + 1 }),
    };
    const ci = await jsm.consumers.add(stream, config);
    if (mySerial !== serial) return;
    lastActivity = Date.now();
    // What is left of the replay (all of it for the first consumer): num_pending is counted at
    // creation, before any delivery, whether or not deliveries beat this reply here.
    if (replaying) {
      target = ci.num_pending;
      checkCaughtUp();
    }
  };

  const reset = async (why: string) => {
    if (done || resetting) return;
    resetting = true;
    const old = name;
    o.log?.warn({ bucket: st.bucket, why }, `watch of ${st.bucket} lost its consumer; re-creating it from revision ${lastSeq + 1}`);
    if (old) void jsm.consumers.delete(stream, old).catch(() => undefined);
    let delay = 250;
    try {
      while (!done && !nc.isClosed()) {
        try {
          await create();
          o.log?.info({ bucket: st.bucket }, `watch of ${st.bucket} follows again`);
          return;
        } catch (e) {
          o.log?.warn({ bucket: st.bucket }, `watch of ${st.bucket}: cannot re-create its consumer: ${describeError(e)} (retrying in ${delay} ms)`);
          await new Promise((r) => setTimeout(r, delay));
          delay = Math.min(delay * 2, 5000);
        }
      }
    } finally {
      resetting = false;
    }
  };

  // Sliced: messages received, not yet handled (queue[head..], each with its consumer's serial).
  const slice = o.slice;
  let queue: { serial: number; m: Msg }[] = [];
  let head = 0;
  let draining = false;
  /** The connection closed: stop once what was queued is handled. */
  let closing = false;
  const receive = (mySerial: number, m: Msg) => {
    if (done || closing) return;
    lastActivity = Date.now();
    if (!slice) return onMsg(mySerial, m);
    queue.push({ serial: mySerial, m });
    if (!draining) {
      draining = true;
      setImmediate(drain);
    }
  };
  const drain = () => {
    const max = slice!.max;
    const ms = slice!.ms;
    const t0 = performance.now();
    const end = Math.min(queue.length, head + max);
    for (let n = 1; head < end && !done; head++, n++) {
      const q = queue[head]!;
      queue[head] = undefined!; // its message holds the client's read buffer
      try {
        onMsg(q.serial, q.m);
      } catch (e) {
        o.log?.warn({ bucket: st.bucket, err: describeError(e) }, `watch of ${st.bucket}: an entry failed; skipped`);
      }
      if (n % CLOCK_EVERY === 0 && performance.now() - t0 >= ms) {
        head++;
        break;
      }
    }
    if (head >= 4 * max) {
      queue = queue.slice(head);
      head = 0;
    }
    if (head < queue.length && !done) return void setImmediate(drain);
    queue = [];
    head = 0;
    draining = false;
    if (closing) stop();
    for (const w of idlers.splice(0)) w();
  };
  const idlers: (() => void)[] = [];
  const idle = () => (draining && !done ? new Promise<void>((r) => idlers.push(r)) : Promise.resolve());

  const stop = () => {
    if (done) return;
    done = true;
    clearInterval(monitor);
    sub?.unsubscribe();
    // What is still queued is dropped: the caller asked for no more.
    queue = [];
    head = 0;
    if (name && !nc.isClosed()) void jsm.consumers.delete(stream, name).catch(() => undefined);
    finish();
    for (const w of idlers.splice(0)) w();
  };
  /** The connection closed: a sliced watch hands over what it had received first. */
  const closedUnder = () => {
    if (done) return;
    if (!draining) return stop();
    closing = true;
  };

  // The first consumer: a create placed on a node that just died times out; try again.
  try {
    await withJsRetry(() => create(), { what: `watching ${st.bucket}`, log: o.log });
  } catch (e) {
    sub?.unsubscribe();
    throw e;
  }
  // While the replay has not ended by a delivery, ask the consumer what it has left.
  const askReplay = () => {
    const t = setTimeout(() => {
      if (done || !replaying) return;
      const asked = name;
      jsm.consumers
        .info(stream, asked)
        .then((ci) => {
          if (asked === name && ci.num_pending === 0 && ci.delivered.consumer_seq <= cseq) endReplay();
        })
        .catch(() => undefined)
        .finally(() => {
          if (!done && replaying) askReplay();
        });
    }, REPLAY_POLL_MS);
    t.unref?.();
  };
  if (replaying) askReplay();
  monitor = setInterval(() => {
    if (done || closing) return;
    if (nc.isClosed()) return closedUnder();
    if (!resetting && Date.now() - lastActivity > LOST_AFTER_BEATS * hbMs) void reset(`no heartbeat for ${Date.now() - lastActivity} ms`);
  }, hbMs);
  monitor.unref?.();
  void nc.closed().then(closedUnder);
  return { stop, closed, idle };
}

/** A bucket (or the keys of it that `o.filter` names) as the store ports follow it: its last revision, and watchBucket. */
export function watchedKv(nc: NatsConnection, kv: KV, o: WatchOptions = {}): { lastRevision(): Promise<number>; watch(h: WatchHandlers): Promise<BucketWatch> } {
  return {
    lastRevision: async () => (await kv.status()).streamInfo.state.last_seq,
    watch: (h) => watchBucket(nc, kv, h, undefined, o),
  };
}

/** What watchKv returns: kv.watch()'s iterator. */
export interface KvWatch extends AsyncIterable<KvWatchEntry> {
  stop(): void;
  /** As on kv.watch()'s iterator: num_pending is the length of the replay (while known). */
  _data: { info(cached?: boolean): Promise<{ num_pending: number }> };
}

/**
 * kv.watch({ key }) with watchBucket's recovery: the same entries (delta counts down to 0 at the
 * end of the replay, isUpdate after it) on a consumer that comes back within seconds after a
 * cluster node loss instead of a minute. For code written against kv.watch() (the agent uses
 * watchBucket itself, through its store port: nats/agent-store.ts).
 */
export async function watchKv(nc: NatsConnection, kv: KV, o: { key?: string; log?: Logger } = {}): Promise<KvWatch> {
  const st = await kv.status();
  const queue: KvWatchEntry[] = [];
  const numbers: number[] = [];
  let n = 0;
  let replayEnd: number | undefined;
  let replayed: () => void = () => undefined;
  const replayOver = new Promise<void>((r) => (replayed = r));
  let wake: (() => void) | undefined;
  let ended = false;
  const td = new TextDecoder();
  const w = await watchBucket(
    nc,
    kv,
    {
      entry: (e) => {
        n += 1;
        const value = e.value;
        queue.push({
          bucket: st.bucket,
          key: e.key,
          rawKey: e.key,
          value,
          revision: e.revision,
          operation: e.operation,
          created: new Date(),
          length: value.length,
          delta: 0,
          isUpdate: false,
          json: <T>() => JSON.parse(td.decode(value)) as T,
          string: () => td.decode(value),
        });
        numbers.push(n);
        wake?.();
      },
      caughtUp: () => {
        replayEnd = n;
        replayed();
      },
    },
    st,
    { filter: o.key, log: o.log },
  );
  void w.closed.then(() => {
    ended = true;
    wake?.();
  });
  const iterator = async function* (): AsyncGenerator<KvWatchEntry> {
    for (;;) {
      while (queue.length > 0) {
        const e = queue.shift()!;
        const i = numbers.shift()!;
        // Entry i of the replay: delta is how many of the replay follow it.
        if (replayEnd !== undefined && i > replayEnd) e.isUpdate = true;
        else e.delta = replayEnd !== undefined ? replayEnd - i : 1;
        yield e;
      }
      if (ended) return;
      await new Promise<void>((r) => (wake = r));
      wake = undefined;
    }
  };
  return {
    [Symbol.asyncIterator]: iterator,
    stop: () => w.stop(),
    // The replay's length once it is known (it ends by itself: watchBucket), not a guess from
    // what has arrived so far; bounded, as kv.watch()'s info request would be.
    _data: {
      info: async () => {
        let t: NodeJS.Timeout | undefined;
        await Promise.race([replayOver, new Promise<void>((r) => (t = setTimeout(r, 5000)))]);
        clearTimeout(t);
        return { num_pending: replayEnd ?? Math.max(1, n) };
      },
    },
  };
}
