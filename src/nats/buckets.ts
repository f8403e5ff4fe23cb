// The five KV buckets of DESIGN.md §3, created idempotently at start. TTL buckets are sized
// from the configured agent TTL / lease TTL; when a bucket exists with another TTL we update
// its stream so a changed --agent-ttl takes effect without losing data.
import type { NatsConnection } from "@nats-io/nats-core";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { Names, type BucketRole, kvNames } from "../protocol/names.js";
import { describeError } from "../protocol/errors.js";

export interface BucketOptions {
  agentTtlMs: number;
  leaseTtlMs: number;
  replicas?: number;
}

export type Buckets = Record<BucketRole, KV>;

/**
 * Opens an existing KV bucket the way create() would have: with direct get when its stream
 * allows it. nats.js's Kvm.open() binds without reading the stream, so its get() falls back to
 * $JS.API.STREAM.MSG.GET — the request that panics nats-server 2.9.10 (nil pointer in
 * jsMsgGetRequest), killing the whole server. Every bucket we open goes through here.
 */
export async function openKv(nc: NatsConnection, bucket: string): Promise<KV> {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(kvNames.stream(bucket));
  return new Kvm(nc).open(bucket, { allow_direct: info.config.allow_direct === true });
}

function bucketSpec(role: BucketRole, o: BucketOptions): { ttl: number; history: number } {
  switch (role) {
    case "units":
      return { ttl: 0, history: 1 };
    case "schedule":
      return { ttl: 0, history: 1 };
    case "states":
      return { ttl: o.agentTtlMs, history: 1 };
    case "machines":
      return { ttl: o.agentTtlMs, history: 1 };
    case "leases":
      return { ttl: o.leaseTtlMs, history: 1 };
  }
}

const NANOS_PER_MS = 1_000_000;

export async function ensureBuckets(nc: NatsConnection, names: Names, o: BucketOptions): Promise<Buckets> {
  const kvm = new Kvm(nc);
  const jsm = await jetstreamManager(nc);
  const out = {} as Buckets;
  for (const role of ["units", "schedule", "states", "machines", "leases"] as const) {
    const spec = bucketSpec(role, o);
    const name = names.bucket(role);
    const opts = { ttl: spec.ttl, history: spec.history, replicas: o.replicas ?? 1, description: `flotilla ${role}` };
    const stream = kvNames.stream(name);
    const existing = await jsm.streams.info(stream).catch((e: unknown) => {
      if (/not found/i.test(describeError(e))) return undefined;
      throw e;
    });
    if (!existing) {
      out[role] = await kvm.create(name, opts);
      continue;
    }
    // Exists (maybe with another TTL after a changed --agent-ttl): adjust max_age in place.
    const wantAge = spec.ttl * NANOS_PER_MS;
    if (existing.config.max_age !== wantAge) {
      const dupe = existing.config.duplicate_window;
      await jsm.streams.update(stream, {
        ...existing.config,
        max_age: wantAge,
        // JetStream wants duplicate_window <= max_age (KV sets it to min(ttl, 2 min)).
        duplicate_window: wantAge > 0 && dupe > wantAge ? wantAge : dupe,
      });
    }
    out[role] = await openKv(nc, name);
  }
  return out;
}

/** Opens existing buckets without creating them (for the CLI and tools). */
export async function openBuckets(nc: NatsConnection, names: Names): Promise<Buckets> {
  const out = {} as Buckets;
  for (const role of ["units", "schedule", "states", "machines", "leases"] as const) {
    out[role] = await openKv(nc, names.bucket(role));
  }
  return out;
}
