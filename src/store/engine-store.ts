// The engine's port to the cluster state (fleet's registry.Registry): everything the engine
// reads and writes, and nothing of how. The NATS implementation is src/nats/engine-store.ts; an
// in-memory one (src/store/memory-store.ts) gives the engine's logic fast tests without a
// server. The schedule writer, the lease's effects and the rounds are the same code on both.
import type { BucketEntry, BucketWatch, WatchHandlers } from "../nats/kv-watch.js";
import type { SeqMessage, SequenceOptions, SequenceResult } from "../engine/ack-publisher.js";

export type { BucketEntry, BucketWatch, WatchHandlers, SeqMessage, SequenceOptions, SequenceResult };

/** A bucket the engine follows: its last revision, and a watch (replay, the end of it, then changes). */
export interface WatchedBucket {
  lastRevision(): Promise<number>;
  watch(h: WatchHandlers): Promise<BucketWatch>;
}

/** Writes into the schedule as a proven sequence: message i lands at base + 1 + i, or the sequence stops and says why. */
export interface SequencePublisher {
  publishSequence(msgs: readonly SeqMessage[], o: SequenceOptions): Promise<SequenceResult>;
  close(): void;
}

/** The compare-and-set key operations the lease needs (a subset of nats.js's KV). */
export interface LeaseKv {
  create(key: string, value: Uint8Array): Promise<number>;
  update(key: string, value: Uint8Array, revision: number, timeout?: number): Promise<number>;
  get(key: string): Promise<{ value: Uint8Array; revision: number; operation: string } | null>;
  delete(key: string, opts?: { previousSeq?: number }): Promise<void>;
}

export interface EngineStore {
  units: WatchedBucket;
  schedule: WatchedBucket;
  machines: WatchedBucket;
  /** The subject of a schedule key, as the publisher writes it. */
  scheduleSubject(key: string): string;
  /** The schedule key of such a subject. */
  scheduleKey(subject: string): string;
  schedulePublisher(): SequencePublisher;
  /** The lease's bucket, opened for a term of standing (on a connection of its own where there is one). */
  openLease(): Promise<LeaseKv>;
  /** Lets go of what openLease opened (bounded). */
  closeLease(): Promise<void>;
  /**
   * Follows the lease key (after openLease, on the same connection): a delete is a leader
   * letting go, and followers stand at once instead of at their next retry.
   */
  watchLease(h: WatchHandlers): Promise<BucketWatch>;
}
