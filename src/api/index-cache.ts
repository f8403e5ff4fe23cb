// The in-memory indexes that listings page through: one per KV bucket, fed by a watch
// (watchBucket: the latest value of every key, then every change), keeping per key only the few
// fields a row needs, never a unit file. A page is a binary search for the cursor plus the rows
// it returns, so a listing reads what it answers, not the whole bucket.
//
//   SortedIndex<V>   key -> V, plus the keys in code-unit order (cmp), for paging:
//     entries  Map<key, {v, sorted}>   v undefined: deleted, still in `sorted` (a tombstone)
//     sorted   string[]                may hold tombstones; never holds a key twice
//     pending  string[]                keys set since the last flush, not yet in `sorted`
//   flush() merges pending into sorted (one pass; big batches sorted in chunks, yielding to the
//   event loop between chunks, so the replay of 100,000 keys never holds it for long).
//
//   BucketIndex      a watch on one bucket feeding a callback, with `rev` (the last stream
//                    sequence seen) so a request can wait until the index has seen what was
//                    written before it (read your writes), and TTL expiry done here: nats-server
//                    2.9 tells watchers nothing when a key expires (see DESIGN.md). Entries are
//                    queued as they arrive and handed to the callback ENTRY_SLICE at a time, one
//                    slice per turn of the event loop: the NATS client parses all that one read
//                    brought (megabytes during a replay) in one go, and decoding each entry there
//                    too held the loop for 100 ms and more at 100,000 keys.
import { streamLastSeq } from "../nats/kv-keys.js";
import type { NatsConnection } from "@nats-io/nats-core";
import type { KV } from "@nats-io/kv";
import type { Logger } from "pino";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { watchBucket, type BucketEntry, type BucketWatch } from "../nats/kv-watch.js";
import { describeError } from "../protocol/errors.js";
import { lowerBound, mergeSorted, upperBound } from "../util/sorted.js";

/** Keys merged into the sorted array in one synchronous step; more are sorted in chunks. */
const SYNC_MERGE_MAX = 4096;
/** Chunk size of a big sort (about 3 ms each for unit names on the 2-core CI machine). */
const SORT_CHUNK = 8192;

export function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const yieldLoop = () => new Promise<void>((r) => setImmediate(r));
/** Keys of the merge's passes (the batch, old + new) dealt with between two yields. */
export const MERGE_SLICE = 16_384;

interface Slot<V> {
  v: V | undefined;
  sorted: boolean;
}

export class SortedIndex<V> {
  private entries = new Map<string, Slot<V>>();
  private sorted: string[] = [];
  private pending: string[] = [];
  private dead = 0;
  private live = 0;
  private flushing: Promise<void> | undefined;

  get size(): number {
    return this.live;
  }

  get(key: string): V | undefined {
    return this.entries.get(key)?.v;
  }

  set(key: string, v: V): void {
    const s = this.entries.get(key);
    if (s) {
      if (s.v === undefined) {
        this.live++;
        if (s.sorted) this.dead--;
        else this.pending.push(key);
      }
      s.v = v;
      return;
    }
    this.entries.set(key, { v, sorted: false });
    this.live++;
    this.pending.push(key);
  }

  delete(key: string): boolean {
    const s = this.entries.get(key);
    if (!s || s.v === undefined) return false;
    s.v = undefined;
    this.live--;
    if (s.sorted) this.dead++;
    else this.entries.delete(key); // still in pending: the flush skips keys without a live slot
    return true;
  }

  values(): IterableIterator<Slot<V>> {
    return this.entries.values();
  }

  /** Merges the pending keys into the sorted array (and drops tombstones when they pile up). */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.pending.length === 0 && this.dead <= this.sorted.length / 8) return;
    const run = this.merge().finally(() => (this.flushing = undefined));
    this.flushing = run;
    await run;
  }

  private async merge(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    const fresh: string[] = [];
    for (let b = 0; b < batch.length; b++) {
      if (b > 0 && b % MERGE_SLICE === 0) await yieldLoop();
      const k = batch[b]!;
      const s = this.entries.get(k);
      if (s && s.v !== undefined && !s.sorted) {
        s.sorted = true; // claims it: a second copy of k in the batch is skipped
        fresh.push(k);
      }
    }
    const big = fresh.length > SYNC_MERGE_MAX;
    let add: string[];
    if (!big) add = fresh.sort(cmp);
    else {
      const runs: string[][] = [];
      for (let i = 0; i < fresh.length; i += SORT_CHUNK) {
        runs.push(fresh.slice(i, i + SORT_CHUNK).sort(cmp));
        await yieldLoop();
      }
      while (runs.length > 1) {
        const next: string[][] = [];
        for (let i = 0; i < runs.length; i += 2) {
          next.push(i + 1 < runs.length ? mergeSorted(runs[i]!, runs[i + 1]!) : runs[i]!);
          await yieldLoop();
        }
        runs.splice(0, runs.length, ...next);
      }
      add = runs[0] ?? [];
    }
    // One pass over old and new, dropping tombstones (and keys deleted while we yielded), in
    // slices too. Every key of the pass is sorted (old, or claimed above), so each tombstone it
    // drops was counted in `dead`; one made behind the pass while it yields stays, and counted.
    const old = this.sorted;
    const out: string[] = new Array(old.length + add.length);
    let i = 0;
    let j = 0;
    let n = 0;
    const alive = (k: string) => {
      const s = this.entries.get(k);
      if (s && s.v !== undefined) return true;
      if (s && s.v === undefined) {
        this.entries.delete(k);
        this.dead--;
      }
      return false;
    };
    for (let step = 0; i < old.length || j < add.length; step++) {
      if (step > 0 && step % MERGE_SLICE === 0) await yieldLoop();
      let k: string;
      if (j >= add.length || (i < old.length && old[i]! < add[j]!)) k = old[i++]!;
      else k = add[j++]!;
      if (alive(k)) out[n++] = k;
    }
    out.length = n;
    this.sorted = out;
    this.dead = Math.max(0, this.dead);
  }

  /**
   * Live entries in key order from the first key > after (or >= from), calling visit for each
   * until it returns false or scanLimit keys were looked at. Returns the last key looked at and
   * whether keys follow it. Call flush() first to see the latest keys.
   */
  scan(
    o: { after?: string; from?: string; to?: string; scanLimit: number },
    visit: (key: string, v: V) => boolean,
  ): { last: string | undefined; more: boolean } {
    const a = this.sorted;
    let i = 0;
    if (o.after !== undefined) i = upperBound(a, o.after);
    if (o.from !== undefined) i = Math.max(i, lowerBound(a, o.from));
    let looked = 0;
    let last: string | undefined;
    for (; i < a.length; i++) {
      const k = a[i]!;
      if (o.to !== undefined && k > o.to) return { last, more: false };
      if (looked >= o.scanLimit) return { last, more: true };
      looked++;
      last = k;
      const v = this.entries.get(k)?.v;
      if (v === undefined) continue;
      if (!visit(k, v)) return { last, more: this.hasLiveAfter(i + 1, o.to) };
    }
    return { last, more: false };
  }

  private hasLiveAfter(i: number, to: string | undefined): boolean {
    const a = this.sorted;
    for (let n = 0; i < a.length && n < 1000; i++, n++) {
      if (to !== undefined && a[i]! > to) return false;
      if (this.entries.get(a[i]!)?.v !== undefined) return true;
    }
    return i < a.length;
  }
}

export interface BucketIndexOptions {
  nc: NatsConnection;
  kv: KV;
  /** The bucket's name (its stream is KV_<name>). */
  bucket: string;
  log: Logger;
  /** Each entry of the watch, in stream order (a PUT with an empty value counts as a delete). */
  entry(e: BucketEntry): void;
  /** The bucket's TTL in ms (0: none): keys not written for this long are expired here. */
  ttlMs: number;
  /** A key expired by TTL (see ttlMs). */
  expired?(key: string): void;
}

/** How long a request waits for the index to see what was written before it. */
export const SYNC_WAIT_MS = 3000;
/** Entries handed to the callback in one turn of the event loop (a few ms of decoding). */
export const ENTRY_SLICE = 512;

export class BucketIndex {
  /** Stream sequence of the last entry seen. */
  rev = 0;
  private watch: BucketWatch | undefined;
  private jsm: JetStreamManager | undefined;
  private seen = new Map<string, number>();
  private sweeper: NodeJS.Timeout | undefined;
  private waiters: { rev: number; resolve: () => void }[] = [];
  private caught = false;
  /** Entries received, not yet handed over: queue[head..]. */
  private queue: BucketEntry[] = [];
  private head = 0;
  private draining = false;
  private stopped = false;
  /** Entries received and handed over since the start; who waits for `handed` to reach a count. */
  private received = 0;
  private handed = 0;
  private handedWaiters: { count: number; resolve: () => void }[] = [];
  dead = false;

  constructor(private readonly o: BucketIndexOptions) {}

  /** Starts the watch; resolves when the replay is over (or has gone quiet for a second). */
  async start(): Promise<void> {
    this.jsm = await jetstreamManager(this.o.nc, { checkAPI: false, timeout: 5000 });
    let caughtUp!: () => void;
    const replayed = new Promise<void>((r) => (caughtUp = r));
    let lastEntryAt = Date.now();
    this.watch = await watchBucket(
      this.o.nc,
      this.o.kv,
      {
        entry: (e) => {
          lastEntryAt = Date.now();
          this.received++;
          this.queue.push(e);
          if (!this.draining) {
            this.draining = true;
            setImmediate(this.drain);
          }
        },
        caughtUp: () => caughtUp(),
      },
      undefined,
      { log: this.o.log },
    );
    void this.watch.closed.then(() => {
      this.dead = true;
      clearInterval(this.sweeper);
      for (const w of this.waiters.splice(0)) w.resolve();
    });
    // A key that expires during the replay is never delivered, so caughtUp may never come: a
    // replay silent for a second is over too.
    await new Promise<void>((resolve) => {
      const t = setInterval(() => {
        if (Date.now() - lastEntryAt > 1000) done();
      }, 200);
      const done = () => {
        clearInterval(t);
        resolve();
      };
      void replayed.then(done);
    });
    // The replay is in the index only once every entry received so far is handed over.
    const count = this.received;
    if (this.handed < count) await new Promise<void>((resolve) => this.handedWaiters.push({ count, resolve }));
    this.caught = true;
    if (this.o.ttlMs > 0) {
      this.sweeper = setInterval(() => this.sweep(), Math.max(250, Math.min(this.o.ttlMs / 4, 5000)));
      this.sweeper.unref?.();
    }
  }

  /** Hands over ENTRY_SLICE entries, then the rest in the next turns. */
  private drain = (): void => {
    const end = Math.min(this.queue.length, this.head + ENTRY_SLICE);
    for (; this.head < end && !this.stopped; this.head++, this.handed++) {
      const e = this.queue[this.head]!;
      this.rev = Math.max(this.rev, e.revision);
      if (this.o.ttlMs > 0) {
        if (e.operation === "PUT" && e.value.length > 0) this.seen.set(e.key, Date.now());
        else this.seen.delete(e.key);
      }
      try {
        this.o.entry(e);
      } catch (err) {
        this.o.log.warn({ bucket: this.o.bucket, key: e.key, err: describeError(err) }, "listing index: an entry failed; skipped");
      }
    }
    // What was handed over is let go (its values hold the client's read buffers).
    if (this.head >= 8 * ENTRY_SLICE) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    if (this.waiters.length) this.wake();
    if (this.handedWaiters.length) {
      const keep: typeof this.handedWaiters = [];
      for (const w of this.handedWaiters) (this.stopped || this.handed >= w.count ? w.resolve() : keep.push(w));
      this.handedWaiters = keep;
    }
    if (this.head < this.queue.length && !this.stopped) return void setImmediate(this.drain);
    this.queue = [];
    this.head = 0;
    this.draining = false;
  };

  get caughtUp(): boolean {
    return this.caught;
  }

  private sweep(): void {
    const cutoff = Date.now() - this.o.ttlMs;
    for (const [k, at] of this.seen) {
      if (at < cutoff) {
        this.seen.delete(k);
        this.o.expired?.(k);
      }
    }
  }

  private wake(): void {
    const keep: typeof this.waiters = [];
    for (const w of this.waiters) (this.rev >= w.rev ? w.resolve() : keep.push(w));
    this.waiters = keep;
  }

  /** Waits (at most SYNC_WAIT_MS) until the index has seen the bucket's last write. */
  async sync(): Promise<void> {
    if (this.dead || !this.jsm) return;
    let last: number | undefined;
    try {
      // Bounded, and at once undefined while the stream has no leader (a NATS node just died):
      // then the index answers as it is instead of making every listing wait.
      last = await streamLastSeq(this.o.nc, this.o.bucket);
    } catch (e) {
      this.o.log.debug({ bucket: this.o.bucket, err: describeError(e) }, "listing: no stream info; answering from the index as it is");
      return;
    }
    if (last === undefined) return;
    if (this.rev >= last) return;
    await new Promise<void>((resolve) => {
      const w = { rev: last, resolve };
      this.waiters.push(w);
      setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        resolve();
      }, SYNC_WAIT_MS).unref?.();
    });
  }

  stop(): void {
    // Entries still queued must not reach an index that has started again without this watch.
    this.stopped = true;
    clearInterval(this.sweeper);
    this.watch?.stop();
  }
}
