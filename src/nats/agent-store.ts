// The agent's store port (src/store/agent-store.ts) on NATS JetStream: the schedule slice and the
// units are followed by watchBucket (kv-watch.ts: it comes back within seconds when a cluster
// node dies, where kv.watch() stays silent a minute), states are puts into the states bucket,
// the connection's ups and downs are nc.status(), and task output goes to the journal stream.
import type { NatsConnection, Status } from "@nats-io/nats-core";
import type { Logger } from "pino";
import { keys, type Names } from "../protocol/names.js";
import { describeError } from "../protocol/errors.js";
import type { AgentStore, ConnectionHandlers, StateWriter, TaskJournal, WatchedBucket } from "../store/agent-store.js";
import type { WorkerStore } from "../agent/worker-store.js";
import { JournalTailer, ensureJournalStream } from "../agent/journal.js";
import type { Buckets } from "./buckets.js";
import { watchedKv } from "./kv-watch.js";

export interface NatsAgentStoreOptions {
  nc: NatsConnection;
  names: Names;
  buckets: Pick<Buckets, "schedule" | "units" | "states">;
  machineId: string;
  /** Where a watch says that it lost its consumer and re-creates it. */
  log: Logger;
}

export class NatsAgentStore implements AgentStore {
  readonly schedule: WatchedBucket;
  readonly units: WatchedBucket;
  readonly states: StateWriter;

  constructor(private readonly o: NatsAgentStoreOptions) {
    this.schedule = watchedKv(o.nc, o.buckets.schedule, { filter: keys.scheduleOfMachine(o.machineId), log: o.log });
    this.units = watchedKv(o.nc, o.buckets.units, { log: o.log });
    this.states = o.buckets.states;
  }

  followConnection(h: ConnectionHandlers): { stop(): void } {
    const it = this.o.nc.status() as AsyncIterable<Status> & { stop(): void };
    void (async () => {
      try {
        for await (const s of it) {
          if (s.type === "disconnect") h.lost();
          else if (s.type === "reconnect") h.back();
        }
      } catch {
        /* connection closed */
      }
    })();
    return { stop: () => it.stop() };
  }

  async openJournal(o: { store: WorkerStore; log: Logger; maxFileBytes: number }): Promise<TaskJournal> {
    const { nc, names, machineId } = this.o;
    const journal = new JournalTailer({ nc, names, machineId, store: o.store, log: o.log, maxFileBytes: o.maxFileBytes });
    await ensureJournalStream(nc, names).catch((e) =>
      o.log.warn(`cannot create the journal stream (task output is kept in the log files and sent once it exists): ${describeError(e)}`),
    );
    return journal;
  }
}
