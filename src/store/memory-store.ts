// The engine's store port (engine-store.ts) in memory: buckets with one revision sequence each,
// compare-and-set create/update as JetStream does them (10071 "wrong last sequence"), watches
// that replay the latest value of every key in revision order, say when the replay is over, and
// then follow; and a schedule publisher with ack-publisher.ts's proof: a sequence lands at
// base + 1 + i or stops and says why. No TTL: as on nats-server 2.9, a key that would expire
// tells nobody, and the engine keeps its own liveness. For tests of the engine's logic.
import { kvNames } from "../protocol/names.js";
import type { BucketEntry, BucketWatch, EngineStore, LeaseKv, SeqMessage, SequenceOptions, SequenceResult, SequencePublisher, WatchedBucket, WatchHandlers } from "./engine-store.js";

interface Stored {
  value: Uint8Array;
  revision: number;
  operation: "PUT" | "DEL" | "PURGE";
}

function wrongLastSequence(have: number): Error {
  return new Error(`wrong last sequence: ${have}`);
}

export class MemoryBucket implements WatchedBucket, LeaseKv {
  private seq = 0;
  private readonly keys = new Map<string, Stored>();
  private readonly watchers = new Set<(e: BucketEntry) => void>();

  constructor(readonly name: string) {}

  async lastRevision(): Promise<number> {
    return this.seq;
  }

  /** Writes a value (or a delete marker) at the next revision and tells the watchers. */
  write(key: string, value: Uint8Array, operation: Stored["operation"] = "PUT"): number {
    const revision = ++this.seq;
    this.keys.set(key, { value, revision, operation });
    const e: BucketEntry = { key, value, revision, operation };
    for (const w of this.watchers) queueMicrotask(() => w(e));
    return revision;
  }

  async put(key: string, value: Uint8Array): Promise<number> {
    return this.write(key, value);
  }

  async create(key: string, value: Uint8Array): Promise<number> {
    const cur = this.keys.get(key);
    if (cur && cur.operation === "PUT") throw wrongLastSequence(cur.revision);
    return this.write(key, value);
  }

  async update(key: string, value: Uint8Array, revision: number): Promise<number> {
    const cur = this.keys.get(key);
    if (!cur || cur.revision !== revision) throw wrongLastSequence(cur?.revision ?? 0);
    return this.write(key, value);
  }

  async get(key: string): Promise<{ key: string; value: Uint8Array; revision: number; operation: string } | null> {
    const cur = this.keys.get(key);
    return cur ? { key, ...cur } : null;
  }

  async delete(key: string, opts: { previousSeq?: number } = {}): Promise<void> {
    const cur = this.keys.get(key);
    if (opts.previousSeq !== undefined && (cur?.revision ?? 0) !== opts.previousSeq) throw wrongLastSequence(cur?.revision ?? 0);
    this.write(key, new Uint8Array(0), "DEL");
  }

  /** The live keys (last operation a put), for assertions. */
  live(): Map<string, Uint8Array> {
    const out = new Map<string, Uint8Array>();
    for (const [k, v] of this.keys) if (v.operation === "PUT") out.set(k, v.value);
    return out;
  }

  async watch(h: WatchHandlers): Promise<BucketWatch> {
    let stopped = false;
    let close!: () => void;
    const closed = new Promise<void>((r) => (close = r));
    const replay = [...this.keys.entries()].sort((a, b) => a[1].revision - b[1].revision);
    const upTo = this.seq;
    const queued: BucketEntry[] = [];
    let replaying = true;
    const deliver = (e: BucketEntry): void => {
      if (stopped) return;
      if (replaying) queued.push(e);
      else h.entry(e);
    };
    this.watchers.add(deliver);
    // Delivered asynchronously, as a consumer's messages are.
    queueMicrotask(() => {
      for (const [key, s] of replay) if (!stopped) h.entry({ key, value: s.value, revision: s.revision, operation: s.operation });
      replaying = false;
      if (!stopped) h.caughtUp();
      for (const e of queued) if (!stopped && e.revision > upTo) h.entry(e);
    });
    return {
      stop: () => {
        stopped = true;
        this.watchers.delete(deliver);
        close();
      },
      closed,
    };
  }
}

export class MemoryEngineStore implements EngineStore {
  readonly units = new MemoryBucket("units");
  readonly schedule = new MemoryBucket("schedule");
  readonly machines = new MemoryBucket("machines");
  readonly leases = new MemoryBucket("leases");
  private readonly prefix = kvNames.subjectPrefix("schedule");

  scheduleSubject(key: string): string {
    return this.prefix + key;
  }
  scheduleKey(subject: string): string {
    return subject.slice(this.prefix.length);
  }

  schedulePublisher(): SequencePublisher {
    const bucket = this.schedule;
    const key = (s: string) => this.scheduleKey(s);
    return {
      async publishSequence(msgs: readonly SeqMessage[], o: SequenceOptions): Promise<SequenceResult> {
        const every = o.every ?? 128;
        let proven = 0;
        const foreign = (await bucket.lastRevision()) !== o.base;
        for (let i = 0; i < msgs.length; i++) {
          if (i % every === 0) {
            const why = o.guard?.();
            if (why) return { proven, stopped: why, unproven: foreign ? i : 0 };
          }
          const m = msgs[i]!;
          bucket.write(key(m.subject), m.data, m.del ? "DEL" : "PUT");
          if (!foreign) proven++;
        }
        // Someone else wrote after base: what we wrote landed, but nothing is proven ours.
        if (foreign) return { proven: 0, stopped: `stream sequence ${o.base + 1} is not ours`, unproven: msgs.length };
        return { proven, unproven: 0 };
      },
      close: () => undefined,
    };
  }

  async openLease(): Promise<LeaseKv> {
    return this.leases;
  }

  async closeLease(): Promise<void> {}
}
