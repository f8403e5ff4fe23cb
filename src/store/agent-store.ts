// The agent's port to the cluster state (fleet's registry.Registry, the agent's half of it):
// everything the agent reads and writes, and nothing of how. The NATS implementation is
// src/nats/agent-store.ts; an in-memory one (src/store/memory-store.ts, MemoryAgentStore, on the
// same MemoryCluster as the engine's) gives the agent's logic fast tests without a server. The
// watch loops, the reconcile, the task managers and the state publisher are the same code on both.
//
// Not here: the statechart inspector (best-effort observability on ctx.nc, silent on a closed
// connection) and the worker store (local LMDB, not cluster state).
import type { Logger } from "pino";
import type { WorkerStore } from "../agent/worker-store.js";
import type { BucketEntry, BucketWatch, WatchedBucket, WatchHandlers } from "./engine-store.js";

export type { BucketEntry, BucketWatch, WatchedBucket, WatchHandlers };

/** The writes the unit state publisher makes (key: keys.state(unit, machineId)); nats.js's KV has them. */
export interface StateWriter {
  put(key: string, value: Uint8Array): Promise<unknown>;
  delete(key: string): Promise<void>;
}

/** The link to the cluster state going away and coming back: on `back` the agent resyncs. */
export interface ConnectionHandlers {
  lost(): void;
  back(): void;
}

/** Where task output goes (on NATS the journal stream, agent/journal.ts's JournalTailer). */
export interface TaskJournal {
  start(): void;
  stop(): Promise<void>;
  /** Follows a task's log file from `offset` (undefined: from its current end). */
  follow(unit: string, file: string, offset?: number): Promise<void>;
  /** Sends a stopped task's last lines and forgets it. */
  unfollow(unit: string): Promise<void>;
}

export interface AgentStore {
  /** This machine's slice of the schedule (keys <machineId>.<unit>): the replay is the full set, the rest increments. */
  schedule: WatchedBucket;
  /** Every unit record (the agent runs the Global ones that fit here). */
  units: WatchedBucket;
  /** This machine's unit states. */
  states: StateWriter;
  /** Follows the connection until the returned stop(). */
  followConnection(h: ConnectionHandlers): { stop(): void };
  /** The task journal, ready to start (creating what it writes to; a failure is logged, not thrown). */
  openJournal(o: { store: WorkerStore; log: Logger; maxFileBytes: number }): Promise<TaskJournal>;
}
