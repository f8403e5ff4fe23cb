// The inspect stream: every inspect subject, kept for a while, so that a viewer that arrives
// late reads each actor's current state (the last message per subject) and its history (the
// timeline). Bounded by age and size; the oldest steps go first.
import type { NatsConnection } from "@nats-io/nats-core";
import { DiscardPolicy, jetstreamManager, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import type { Names } from "../protocol/names.js";
import { describeError } from "../protocol/errors.js";

export interface InspectLimits {
  maxAgeMs: number;
  maxBytes: number;
}

export const DEFAULT_INSPECT_LIMITS: InspectLimits = { maxAgeMs: 3600_000, maxBytes: 64 * 2 ** 20 };

/** Creates the stream or brings its limits up to date (idempotent; every daemon calls it at start). */
export async function ensureInspectStream(nc: NatsConnection, names: Names, limits: InspectLimits = DEFAULT_INSPECT_LIMITS, replicas = 1): Promise<void> {
  const jsm = await jetstreamManager(nc);
  const cfg = {
    name: names.inspectStream(),
    subjects: [names.inspectAll()],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_age: limits.maxAgeMs * 1_000_000,
    max_bytes: limits.maxBytes,
    max_msg_size: 256 * 1024,
    allow_direct: true,
    num_replicas: replicas,
    description: "flotilla statechart transitions (inspection v2)",
  };
  try {
    await jsm.streams.add(cfg);
  } catch (e) {
    if (!/already in use|exists/i.test(describeError(e))) throw e;
    const info = await jsm.streams.info(cfg.name);
    const c = info.config;
    if (c.max_age !== cfg.max_age || c.max_bytes !== cfg.max_bytes) await jsm.streams.update(cfg.name, { ...c, max_age: cfg.max_age, max_bytes: cfg.max_bytes });
  }
}
