// Executes the reconciler's actions against the `schedule` bucket, pipelined: many puts in
// flight at once and awaited together (a put awaited one at a time costs a round trip each;
// DESIGN.md §3 measured ~7,000/s sequential, ~20,000/s pipelined).
//
// Order and guards, so that a non-global unit is never on two machines and a deposed leader's
// late writes do not win:
//   1. check the lease: the statechart must still be `leader`, and our last accepted
//      compare-and-set write of the lease (create or renewal by revision) was sent less than a
//      TTL ago (minus a margin), so nobody else can hold it yet; checked again before every
//      window of writes;
//   2. every delete (unschedule), all acknowledged; a failed delete stops the batch, so no
//      placement is written while an old one may remain;
//   3. check the lease again; then the puts (schedule, update) in windows of WINDOW, checking
//      between windows that we still lead; a step-down stops the batch at once;
//   4. unplaced reasons (puts and deletes of keys.unplaced(unit)).
// Writes go out as core publishes whose JetStream acknowledgements come back on one inbox
// (ack-publisher.ts), so each write's revision is known: the engine uses them to tell its own
// writes from anyone else's (engine.ts, accountWrites).
// Entries carry the term's epoch. Agents do not drop entries of older epochs: a new leader
// adopts the schedule as it stands instead of rewriting every entry. The guard above is what
// stops a deposed leader: it re-checks the lease before each window, and a leader steps down
// (stops writing) when a renewal fails, which is always before its lease can expire, so the
// window for a late write is at most one in-flight window of puts.
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { AckPublisher } from "./ack-publisher.js";
import type { Logger } from "pino";
import { encode } from "../protocol/codec.js";
import { keys } from "../protocol/names.js";
import { describeError } from "../protocol/errors.js";
import type { ScheduleEntry, UnplacedRecord } from "../protocol/messages.js";
import type { Action, EngineUnit, Placement } from "./model.js";

/** Deletes in flight at once (all acknowledged before any put); the guard is checked between windows. */
export const WINDOW = 2048;
/**
 * Puts in flight at once, as a sliding window (no barrier waiting for a window's slowest ack).
 * On 2 busy cores (bench:schedule) 512-1,024 did best for 10,000 units; 8,192 was clearly
 * worse (acks of a big window queue behind each other and behind the units watch).
 */
export const IN_FLIGHT = 1024;

export interface WriteContext {
  epoch: number;
  units: ReadonlyMap<string, EngineUnit>;
  /** Still leader right now (the lease statechart's view, no I/O). */
  leading: () => boolean;
  /**
   * The lease is surely still ours: our last accepted compare-and-set write of it was sent less
   * than a TTL ago (minus a margin). No I/O: a KV read before each window would queue behind
   * our own writes and prove no more than the CAS already did.
   */
  leaseHeld: () => boolean;
}

/** What the engine's in-memory view must learn from a batch (acknowledged writes only). */
export interface WriteResult {
  /** revision 0: unknown (kv.delete() does not say). */
  deleted: { key: string; revision: number }[];
  put: { key: string; revision: number; placement: Placement }[];
  unplacedSet: { unit: string; reason: string; key: string; revision: number }[];
  unplacedCleared: { unit: string; key: string; revision: number }[];
  aborted?: string;
  failures: number;
}

export class ScheduleWriter {
  private readonly fast?: { pub: AckPublisher; subject: (key: string) => string };

  /** With a connection, puts go out as acknowledged core publishes (ack-publisher.ts). */
  constructor(
    private readonly kv: KV,
    private readonly log: Logger,
    nc?: NatsConnection,
  ) {
    const subjectForKey = (kv as unknown as { subjectForKey?: (k: string, edit?: boolean) => string }).subjectForKey;
    if (nc && typeof subjectForKey === "function") {
      // The bucket's subject prefix, once: our keys are valid by construction (names.ts).
      const prefix = subjectForKey.call(kv, "x", true).slice(0, -1);
      this.fast = { pub: new AckPublisher(nc), subject: (k) => prefix + k };
    }
  }

  private put(key: string, value: Uint8Array): Promise<number> {
    return this.fast ? this.fast.pub.publish(this.fast.subject(key), value) : this.kv.put(key, value);
  }

  /** Resolves with the delete marker's revision when known (fast path), else 0. */
  private del(key: string): Promise<number> {
    return this.fast ? this.fast.pub.publishDelete(this.fast.subject(key)) : this.kv.delete(key).then(() => 0);
  }

  close(): void {
    this.fast?.pub.close();
  }

  async execute(actions: Action[], ctx: WriteContext): Promise<WriteResult> {
    const res: WriteResult = { deleted: [], put: [], unplacedSet: [], unplacedCleared: [], failures: 0 };
    const dels = actions.filter((a) => a.type === "unschedule");
    const puts = actions.filter((a) => a.type === "schedule" || a.type === "update");
    const reasons = actions.filter((a) => a.type === "unplaced" || a.type === "clear-unplaced");

    if (!this.guard(ctx, res)) return res;

    // 2. deletes, all acknowledged before any placement
    for (let i = 0; i < dels.length; i += WINDOW) {
      if (!this.guard(ctx, res)) return res;
      const window = dels.slice(i, i + WINDOW);
      const out = await Promise.allSettled(window.map((a) => this.del(keys.schedule(a.machineId, a.unit))));
      out.forEach((r, j) => {
        const a = window[j]!;
        if (r.status === "fulfilled") {
          res.deleted.push({ key: keys.schedule(a.machineId, a.unit), revision: r.value });
          this.log.info({ unit: a.unit, machine: a.machineId, reason: a.reason }, "unscheduled");
        } else {
          res.failures++;
          this.log.warn({ unit: a.unit, machine: a.machineId, err: describeError(r.reason) }, "unschedule failed");
        }
      });
      if (res.failures) return abort(res, "a delete failed: no placement is written this round");
    }

    // 3. puts: a sliding window of IN_FLIGHT writes, the guard checked before each one is sent
    const now = Date.now();
    let next = 0;
    let stopped = false;
    const one = async (a: Action & { machineId: string }): Promise<void> => {
      const u = ctx.units.get(a.unit);
      if (!u) return;
      const entry: ScheduleEntry = {
        unit: u.name,
        machineId: a.machineId,
        hash: u.hash,
        desiredState: u.desiredState,
        contents: u.contents,
        epoch: ctx.epoch,
        scheduledAt: now,
      };
      const key = keys.schedule(a.machineId, a.unit);
      const placement: Placement = { unit: u.name, machineId: a.machineId, hash: u.hash, desiredState: u.desiredState };
      try {
        const revision = await this.put(key, encode(entry));
        res.put.push({ key, revision, placement });
        if (puts.length <= 64 || this.log.isLevelEnabled("debug")) {
          this.log.info({ unit: u.name, machine: a.machineId, reason: a.reason }, a.type === "update" ? "rewrote" : "scheduled");
        }
      } catch (e) {
        res.failures++;
        this.log.warn({ unit: u.name, machine: a.machineId, err: describeError(e) }, "schedule write failed");
      }
    };
    const lane = async (): Promise<void> => {
      while (!stopped && next < puts.length) {
        if (!this.guard(ctx, res)) {
          stopped = true;
          return;
        }
        await one(puts[next++] as Action & { machineId: string });
      }
    };
    await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, puts.length) }, lane));
    if (stopped) return res;
    if (puts.length > 64) this.log.info({ count: res.put.length, failures: res.failures }, "scheduled a batch");

    // 4. unplaced reasons
    if (!this.guard(ctx, res)) return res;
    const rs = await Promise.allSettled(
      reasons.map(async (a) => {
        const key = keys.unplaced(a.unit);
        if (a.type === "clear-unplaced") {
          const revision = await this.del(key);
          res.unplacedCleared.push({ unit: a.unit, key, revision });
        } else {
          const rec: UnplacedRecord = { unit: a.unit, reason: a.reason, epoch: ctx.epoch, at: now };
          const revision = await this.put(key, encode(rec));
          res.unplacedSet.push({ unit: a.unit, reason: a.reason, key, revision });
          this.log.info({ unit: a.unit, reason: a.reason }, "cannot place unit");
        }
      }),
    );
    for (const r of rs) if (r.status === "rejected") res.failures++;
    return res;
  }

  private guard(ctx: WriteContext, res: WriteResult): boolean {
    if (!ctx.leading()) {
      abort(res, "not leader");
      return false;
    }
    if (!ctx.leaseHeld()) {
      abort(res, "the lease may no longer be ours");
      return false;
    }
    return true;
  }
}

function abort(res: WriteResult, why: string): WriteResult {
  res.aborted = why;
  return res;
}
