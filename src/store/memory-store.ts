// The engine's store port (engine-store.ts) in memory: buckets with one revision sequence each,
// compare-and-set create/update as JetStream does them (10071 "wrong last sequence"), watches
// that replay the latest value of every key in revision order, say when the replay is over, and
// then follow; and a schedule publisher with ack-publisher.ts's proof: a sequence lands at
// base + 1 + i or stops and says why. No TTL: as on nats-server 2.9, a key that would expire
// tells nobody, and the engine keeps its own liveness. For tests of the engine's logic.
//
// The agent's port (agent-store.ts) on the same buckets: a MemoryCluster holds them, the
// engine's store and any number of agents' stores (one a machine) read and write it, so the
// engine's placements reach the agents as on NATS. An agent's store can lose its connection:
// its watches go silent, its state writes fail, and its return is told to the agent (which
// watches anew: the replay is the full set).
import { kvNames, keys, subjectMatches } from "../protocol/names.js";
import type { BucketEntry, BucketWatch, EngineStore, LeaseKv, SeqMessage, SequenceOptions, SequenceResult, SequencePublisher, WatchedBucket, WatchHandlers } from "./engine-store.js";
import type { AgentStore, ConnectionHandlers, StateWriter, TaskJournal } from "./agent-store.js";

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

  /** The keys `filter` names, as a bucket of their own (a watch with a subject filter). */
  slice(filter: string): WatchedBucket {
    return { lastRevision: () => this.lastRevision(), watch: (h) => this.watch(h, filter) };
  }

  async watch(h: WatchHandlers, filter = ">"): Promise<BucketWatch> {
    let stopped = false;
    let close!: () => void;
    const closed = new Promise<void>((r) => (close = r));
    const replay = [...this.keys.entries()].filter(([k]) => subjectMatches(filter, k)).sort((a, b) => a[1].revision - b[1].revision);
    const upTo = this.seq;
    const queued: BucketEntry[] = [];
    let replaying = true;
    const deliver = (e: BucketEntry): void => {
      if (stopped || !subjectMatches(filter, e.key)) return;
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

/** The cluster state: every bucket, once, for the engine's store and the agents' stores alike. */
export class MemoryCluster {
  readonly units = new MemoryBucket("units");
  readonly schedule = new MemoryBucket("schedule");
  readonly machines = new MemoryBucket("machines");
  readonly leases = new MemoryBucket("leases");
  readonly states = new MemoryBucket("states");
}

export class MemoryEngineStore implements EngineStore {
  readonly units: MemoryBucket;
  readonly schedule: MemoryBucket;
  readonly machines: MemoryBucket;
  readonly leases: MemoryBucket;
  private readonly prefix = kvNames.subjectPrefix("schedule");

  constructor(readonly cluster = new MemoryCluster()) {
    ({ units: this.units, schedule: this.schedule, machines: this.machines, leases: this.leases } = cluster);
  }

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

  watchLease(h: WatchHandlers): Promise<BucketWatch> {
    return this.leases.watch(h);
  }
}

/** A journal that keeps nothing: which units it follows, for assertions. */
export class MemoryJournal implements TaskJournal {
  readonly following = new Set<string>();
  start(): void {}
  async stop(): Promise<void> {
    this.following.clear();
  }
  async follow(unit: string): Promise<void> {
    this.following.add(unit);
  }
  async unfollow(unit: string): Promise<void> {
    this.following.delete(unit);
  }
}

/** One machine's agent store on a MemoryCluster. */
export class MemoryAgentStore implements AgentStore {
  readonly schedule: WatchedBucket;
  readonly units: WatchedBucket;
  readonly states: StateWriter;
  readonly journal = new MemoryJournal();
  private connected = true;
  /** Counts losses: a watch made before the last one stays silent. */
  private session = 0;
  private readonly listeners = new Set<ConnectionHandlers>();

  constructor(
    readonly cluster: MemoryCluster,
    readonly machineId: string,
  ) {
    this.schedule = this.online(cluster.schedule.slice(keys.scheduleOfMachine(machineId)));
    this.units = this.online(cluster.units);
    const states = cluster.states;
    this.states = {
      put: async (key, value) => {
        this.check();
        return states.put(key, value);
      },
      delete: async (key) => {
        this.check();
        return states.delete(key);
      },
    };
  }

  /** The connection goes: watches miss what follows, writes fail. */
  disconnect(): void {
    if (!this.connected) return;
    this.connected = false;
    this.session++;
    for (const l of this.listeners) l.lost();
  }

  /** The connection is back (the watches made before stay silent: the agent watches anew). */
  reconnect(): void {
    if (this.connected) return;
    this.connected = true;
    for (const l of this.listeners) l.back();
  }

  followConnection(h: ConnectionHandlers): { stop(): void } {
    this.listeners.add(h);
    return { stop: () => this.listeners.delete(h) };
  }

  async openJournal(): Promise<TaskJournal> {
    return this.journal;
  }

  private check(): void {
    if (!this.connected) throw new Error("not connected (memory store)");
  }

  private online(b: WatchedBucket): WatchedBucket {
    return {
      lastRevision: () => b.lastRevision(),
      watch: async (h) => {
        this.check();
        const session = this.session;
        const live = () => this.connected && session === this.session;
        return b.watch({
          entry: (e) => {
            if (live()) h.entry(e);
          },
          caughtUp: () => {
            if (live()) h.caughtUp();
          },
        });
      },
    };
  }
}
