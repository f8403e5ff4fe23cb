// The engine's store port (src/store/engine-store.ts) on NATS JetStream: watches are our own
// ordered push consumers (kv-watch.ts), sliced (WATCH_SLICE: at most 512 entries, about 4 ms,
// handed over per turn of the event loop, not all that a read brought inside the NATS client's
// parse, which held the loop 100-300 ms during a replay of 100,000 units), schedule writes are
// core publishes proven by acknowledged checkpoints (engine/ack-publisher.ts), and the lease is
// its KV bucket, on a connection of its own when one can be had (a renewal must not queue behind
// a flood of watch deliveries).
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import type { Logger } from "pino";
import { describeError } from "../protocol/errors.js";
import { LEASE_KEY_ENGINE, keys, kvNames } from "../protocol/names.js";
import { AckPublisher } from "../engine/ack-publisher.js";
import type { EngineStore, LeaseKv, SequencePublisher, WatchedBucket } from "../store/engine-store.js";
import { openKv, type Buckets } from "./buckets.js";
import { WATCH_SLICE, watchBucket, watchedKv, type BucketWatch, type WatchHandlers } from "./kv-watch.js";

export interface NatsEngineStoreOptions {
  buckets: Pick<Buckets, "units" | "schedule" | "machines" | "leases">;
  /** Watches and schedule writes go out here. */
  nc: NatsConnection;
  log: Logger;
  /** The lease on a connection of its own (ClusterContext.connect); without it, buckets.leases. */
  leaseConnection?: { connect(name: string): Promise<NatsConnection>; bucket: string };
}

export class NatsEngineStore implements EngineStore {
  readonly units: WatchedBucket;
  readonly schedule: WatchedBucket;
  readonly machines: WatchedBucket;
  private readonly prefix: string;
  private leaseNc?: NatsConnection;
  private leaseKv?: KV;

  constructor(private readonly o: NatsEngineStoreOptions) {
    const watched = (kv: KV): WatchedBucket => watchedKv(o.nc, kv, { log: o.log, slice: WATCH_SLICE });
    this.units = watched(o.buckets.units);
    this.schedule = watched(o.buckets.schedule);
    this.machines = watched(o.buckets.machines);
    this.prefix = kvNames.subjectPrefix((o.buckets.schedule as unknown as { bucket: string }).bucket);
  }

  scheduleSubject(key: string): string {
    return this.prefix + key;
  }
  scheduleKey(subject: string): string {
    return subject.slice(this.prefix.length);
  }

  schedulePublisher(): SequencePublisher {
    return new AckPublisher(this.o.nc);
  }

  async openLease(): Promise<LeaseKv> {
    const lc = this.o.leaseConnection;
    this.leaseKv = this.o.buckets.leases;
    if (!lc) return this.o.buckets.leases;
    // If the lease's own connection cannot be had now (NATS blipped while the daemon starts),
    // renew on the shared connection, which reconnects by itself: an outage must never stop the
    // daemon. The next start (the monitor restarts components after an outage) tries again.
    let nc: NatsConnection | undefined;
    try {
      nc = await lc.connect("lease");
      const kv = await openKv(nc, lc.bucket);
      this.leaseNc = nc;
      this.leaseKv = kv;
      return kv;
    } catch (e) {
      await nc?.close().catch(() => undefined);
      this.o.log.warn(`the lease's own NATS connection is not available (${describeError(e)}); renewing the lease on the shared connection until the next restart`);
      return this.o.buckets.leases;
    }
  }

  watchLease(h: WatchHandlers): Promise<BucketWatch> {
    const kv = this.leaseKv ?? this.o.buckets.leases;
    return watchBucket(this.leaseNc ?? this.o.nc, kv, h, undefined, { filter: keys.lease(LEASE_KEY_ENGINE), log: this.o.log });
  }

  async closeLease(): Promise<void> {
    const nc = this.leaseNc;
    this.leaseNc = undefined;
    this.leaseKv = undefined;
    await closeBounded(nc);
  }
}

/** Closes a connection, giving up on the goodbye after a second (stop must stay bounded). */
export async function closeBounded(nc: NatsConnection | undefined): Promise<void> {
  if (!nc || nc.isClosed()) return;
  let t: NodeJS.Timeout | undefined;
  await Promise.race([nc.close().catch(() => undefined), new Promise<void>((r) => (t = setTimeout(r, 1000)))]);
  clearTimeout(t);
}
