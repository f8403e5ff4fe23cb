// The leader's in-memory picture of the cluster, fed by watch entries (units, machines, the
// schedule's replay) and by the writer's acknowledged writes. Every value is validated as it
// enters; a garbage one is skipped with a log line and never reaches the reconciler.
import type { BucketEntry } from "../nats/kv-watch.js";
import type { Logger } from "pino";
import type { z } from "zod";
import { decodeAs } from "../protocol/codec.js";
import { isUnitRecord, MachineRecord, ScheduleEntry, UnitRecord, UnplacedRecord } from "../protocol/messages.js";
import { keys } from "../protocol/names.js";
import { describeError } from "../protocol/errors.js";
import { fleetOptionsCached, sharedContents } from "../unit/index.js";
import { arrivalOf } from "../unit/match.js";
import type { Liveness } from "./liveness.js";
import { Slicer } from "./slicer.js";
import type { WriteResult } from "./schedule-writer.js";
import { NO_FLEET_OPTIONS, type EngineMachine, type EngineUnit, type Placement } from "./model.js";
import type { FleetOptions } from "../unit/types.js";
import { Oldest } from "../util/oldest.js";

export class ClusterViews {
  units = new Map<string, EngineUnit>();
  /** By schedule key <machineId>.<unit>. */
  placements = new Map<string, Placement>();
  unplaced = new Map<string, string>();
  machines = new Map<string, MachineRecord>();

  // What changed since the last round, for the fast path (fast-path.ts) and the incremental
  // rounds (incremental.ts): the units first seen or made active (any kind; both check what they
  // can take), and whether anything else changed.
  fresh: string[] = [];
  otherChange = true;
  /** Units known that are not plain (constrained, global, invalid): while any, no fast path. */
  notPlain = new Set<string>();
  /** Placements per machine (the schedule as this view holds it). */
  loads = new Map<string, number>();

  constructor(
    private readonly log: Logger,
    private readonly liveness: Liveness,
  ) {}

  clear(): void {
    this.units = new Map();
    this.notPlain = new Set();
    this.clearSchedule();
    this.machines = new Map();
  }

  clearSchedule(): void {
    this.placements = new Map();
    this.unplaced = new Map();
    this.loads = new Map();
    this.otherChange = true;
  }

  /** The changes since the last round, handed to it (and forgotten here). */
  takeChanges(): { fresh: string[]; other: boolean } {
    const c = { fresh: this.fresh, other: this.otherChange };
    this.fresh = [];
    this.otherChange = false;
    return c;
  }

  private setPlacement(key: string, p: Placement, placements = this.placements, loads = this.loads): void {
    if (!placements.has(key)) loads.set(p.machineId, (loads.get(p.machineId) ?? 0) + 1);
    placements.set(key, p);
  }

  private deletePlacement(key: string, placements = this.placements, loads = this.loads): boolean {
    const p = placements.get(key);
    if (!p) return false;
    placements.delete(key);
    loads.set(p.machineId, (loads.get(p.machineId) ?? 1) - 1);
    return true;
  }

  /**
   * Machines alive now, as the scheduler sees them. A machine found dead is forgotten here and in
   * liveness (its record expired without a watch event, 2.9 has none): over a long term machines
   * come and go, and the dead would otherwise stay in every round. A later heartbeat makes it
   * new again.
   */
  liveMachines(now: number): Map<string, EngineMachine> {
    const live = new Map<string, EngineMachine>();
    for (const [id, r] of this.machines) {
      if (this.liveness.isAlive(id, now)) live.set(id, { id, metadata: r.metadata, capacity: r.capacity, availability: r.availability });
      else {
        this.machines.delete(id);
        this.liveness.forget(id);
      }
    }
    return live;
  }

  // ---- watch entries: each returns true when the change calls for a round ----

  /** A watch entry's value, validated; undefined (and a log line saying what was skipped) when garbage. */
  private decode<S extends z.ZodType>(schema: S, e: BucketEntry, bucket: string, what: string, quick?: (v: unknown) => v is z.infer<S>): z.infer<S> | undefined {
    try {
      return decodeAs(schema, e.value, `${bucket}/${e.key}`, quick);
    } catch (err) {
      this.log.warn({ key: e.key, err: describeError(err) }, `skipping ${what}`);
      return undefined;
    }
  }


  onUnit(e: BucketEntry): boolean {
    const name = keys.unitFromKey(e.key);
    if (e.operation !== "PUT") {
      this.notPlain.delete(name);
      const had = this.units.delete(name);
      if (had) this.otherChange = true;
      return had;
    }
    const rec = this.decode(UnitRecord, e, "units", "a garbage value in units", isUnitRecord);
    if (!rec) return false;
    const prev = this.units.get(name);
    const arrival = arrivalOf(rec, e.revision);
    if (prev && prev.hash === rec.hash && prev.desiredState === rec.desiredState && prev.arrival === arrival) return false;
    const u = toEngineUnit(name, rec, arrival);
    this.units.set(name, u);
    // Plain: no [X-Fleet] section (a file with one is never plain, even one that does not
    // parse); known without parsing it.
    const plain = u.plain;
    if (plain) this.notPlain.delete(name);
    else this.notPlain.add(name);
    // New units, and units made active with the same file, are placed nowhere: the fast path
    // and the incremental rounds take them (fast-path.ts, incremental.ts); anything else that
    // changed calls for a full pass.
    if (!prev || (prev.desiredState === "inactive" && u.desiredState !== "inactive" && prev.hash === u.hash)) this.fresh.push(name);
    else this.otherChange = true;
    return true;
  }

  /** Only the schedule's replay comes here: after it, the view follows our own writes. */
  onSchedule(e: BucketEntry): boolean {
    const un = keys.parseUnplaced(e.key);
    if (un !== undefined) {
      if (e.operation !== "PUT") {
        this.unplaced.delete(un);
        return false;
      }
      const rec = this.decode(UnplacedRecord, e, "schedule", "a garbage unplaced reason");
      if (rec) this.unplaced.set(un, rec.reason);
      return false;
    }
    const k = keys.parseSchedule(e.key);
    if (!k) {
      this.log.warn({ key: e.key }, "skipping a schedule key that names no machine and unit");
      return false;
    }
    this.otherChange = true;
    if (e.operation !== "PUT") return this.deletePlacement(e.key);
    const entry = this.decode(ScheduleEntry, e, "schedule", "a garbage value in schedule");
    if (!entry) return false;
    this.setPlacement(e.key, { unit: k.unit, machineId: k.machineId, hash: entry.hash, desiredState: entry.desiredState });
    return true;
  }

  onMachine(e: BucketEntry): boolean {
    const id = e.key;
    if (e.operation !== "PUT") {
      this.liveness.forget(id);
      this.otherChange = true;
      return this.machines.delete(id);
    }
    const rec = this.decode(MachineRecord, e, "machines", "a garbage value in machines");
    if (!rec) return false;
    const prev = this.machines.get(id);
    this.machines.set(id, rec);
    const wasAlive = this.liveness.isAlive(id, Date.now());
    this.liveness.seen(id, Date.now());
    // Plain heartbeats change nothing the scheduler reads: no round for them.
    const changed =
      !prev ||
      !wasAlive ||
      prev.availability !== rec.availability ||
      JSON.stringify(prev.metadata) !== JSON.stringify(rec.metadata) ||
      prev.capacity.cpu !== rec.capacity.cpu ||
      prev.capacity.memory !== rec.capacity.memory;
    if (changed) this.otherChange = true;
    return changed;
  }

  /**
   * Learns a batch's acknowledged writes, in slices (30,000 placements took 55 ms in one go);
   * true when something was placed or removed. Only our writes change these maps (the schedule
   * watch is closed after its replay), so the slices see no other change between them; maps
   * cleared meanwhile (a step-down, a reload of the schedule) are not written into.
   */
  async apply(res: WriteResult, slicer = new Slicer()): Promise<boolean> {
    const { placements, loads, unplaced } = this;
    await slicer.each(res.deleted, (d) => this.deletePlacement(d.key, placements, loads));
    await slicer.each(res.put, (p) => this.setPlacement(p.key, p.placement, placements, loads));
    await slicer.each(res.unplacedSet, (u) => unplaced.set(u.unit, u.reason));
    await slicer.each(res.unplacedCleared, (u) => unplaced.delete(u.unit));
    return res.failures === 0 && !res.aborted && (res.put.length > 0 || res.deleted.length > 0);
  }
}

/**
 * A units-bucket record as the engine sees it: only [X-Fleet] matters here. The options are
 * parsed on first use (ViewUnit), not here: the watch callback takes a flood in whole (Node
 * reads a busy socket up to 32 times, 2 MB, before a timer runs), and at 30-50 µs a file the
 * parses of 5,000 distinct files held the event loop for 200 ms and more. The round's pass,
 * which reads every unit's options in slices that yield (slicer.ts), parses them there.
 */
export function toEngineUnit(name: string, rec: UnitRecord, arrival?: number): EngineUnit & { readonly plain: boolean } {
  // Most units have no [X-Fleet] section; no parse at all for them (the API validated the file).
  if (!rec.contents.includes("[X-Fleet]") || !/^\s*\[X-Fleet\]/m.test(rec.contents)) {
    return new ViewUnit(name, rec.hash, rec.desiredState, plainContents(rec.hash, rec.contents), arrival, NO_FLEET_OPTIONS);
  }
  return new ViewUnit(name, rec.hash, rec.desiredState, sharedContents(rec.hash, rec.contents) ?? rec.contents, arrival);
}

/** A unit of the views: `fleet` and `invalid` from the unit file, parsed once, when first read. */
class ViewUnit implements EngineUnit {
  private f: FleetOptions | undefined;
  private why: string | undefined;
  /** No [X-Fleet] section: fleet is NO_FLEET_OPTIONS, nothing to parse. */
  readonly plain: boolean;

  constructor(
    readonly name: string,
    readonly hash: string,
    readonly desiredState: EngineUnit["desiredState"],
    readonly contents: string,
    readonly arrival: number | undefined,
    fleet?: FleetOptions,
  ) {
    this.f = fleet;
    this.plain = fleet === NO_FLEET_OPTIONS;
  }

  get fleet(): FleetOptions {
    return this.f ?? this.parse();
  }

  get invalid(): string | undefined {
    if (this.f === undefined) this.parse();
    return this.why;
  }

  private parse(): FleetOptions {
    try {
      this.f = fleetOptionsCached(this.name, this.contents, this.hash);
    } catch (e) {
      this.f = NO_FLEET_OPTIONS;
      this.why = describeError(e);
    }
    return this.f;
  }
}

// One string per file for the units of a file: 100,000 units of a few files kept 100,000 copies
// of their contents, each one more for the garbage collector to move and mark.
const PLAIN_MAX = 10_000;
const plain = new Map<string, string>();
const plainOldest = new Oldest(plain);
function plainContents(hash: string, contents: string): string {
  const hit = plain.get(hash);
  if (hit === contents) return hit;
  if (hit === undefined) {
    plainOldest.trim(PLAIN_MAX - 1);
    plain.set(hash, contents);
  }
  return contents;
}
