// The leader's in-memory picture of the cluster, fed by watch entries (units, machines, the
// schedule's replay) and by the writer's acknowledged writes. Every value is validated as it
// enters; a garbage one is skipped with a log line and never reaches the reconciler.
import type { KvWatchEntry } from "@nats-io/kv";
import type { Logger } from "pino";
import { decodeAs } from "../protocol/codec.js";
import { MachineRecord, ScheduleEntry, UnitRecord, UnplacedRecord } from "../protocol/messages.js";
import { keys } from "../protocol/names.js";
import { describeError } from "../protocol/errors.js";
import { parseUnitFileCached } from "../unit/index.js";
import type { Liveness } from "./liveness.js";
import type { WriteResult } from "./schedule-writer.js";
import { NO_FLEET_OPTIONS, type Action, type EngineMachine, type EngineUnit, type Placement } from "./model.js";

export class ClusterViews {
  units = new Map<string, EngineUnit>();
  /** By schedule key <machineId>.<unit>; change it only through setPlacement/deletePlacement. */
  readonly placements = new Map<string, Placement>();
  /** Kept with placements, for rounds that only place new units (reconcileAdded). */
  readonly loads = new Map<string, number>();
  private readonly placedUnits = new Map<string, number>();
  unplaced = new Map<string, string>();
  machines = new Map<string, MachineRecord>();
  /** Keys we wrote: watch echoes older than our write are ignored ("del": until the delete's echo). */
  floor = new Map<string, number | "del">();
  /** Units (any state) declaring Conflicts= or Replaces=. */
  relationHolders = 0;
  /** Since the last takeChanges(): units that appeared, and whether anything else changed. */
  private added: string[] = [];
  private changed = true;

  constructor(
    private readonly log: Logger,
    private readonly liveness: Liveness,
    /** No schedule watch follows our writes (engine.ts trackSeq): no echoes to hold back. */
    private readonly noEchoes: boolean,
  ) {}

  clear(): void {
    this.units = new Map();
    this.relationHolders = 0;
    this.clearSchedule();
    this.machines = new Map();
  }

  clearSchedule(): void {
    this.placements.clear();
    this.loads.clear();
    this.placedUnits.clear();
    this.unplaced = new Map();
    this.floor = new Map();
    this.changed = true;
  }

  /**
   * What changed since the last call: `added` units (new names), or `other` for anything else
   * a round reads (a unit changed or removed, a machine record, the schedule from outside).
   * Our own acknowledged writes (apply) are not changes: the round that made them decided them.
   */
  takeChanges(): { added: string[]; other: boolean } {
    const out = { added: this.added, other: this.changed };
    this.added = [];
    this.changed = false;
    return out;
  }

  /** Whether anything but added units changed since the last takeChanges(). */
  changedBeyondAdditions(): boolean {
    return this.changed;
  }

  /** Counts placements being written (loads, isPlaced) until release(): rounds may overlap. */
  reserve(actions: Action[]): void {
    for (const a of actions) if (a.type === "schedule") this.count(a.unit, a.machineId);
  }

  release(actions: Action[]): void {
    for (const a of actions) if (a.type === "schedule") this.uncount(a);
  }

  isPlaced(unit: string): boolean {
    return this.placedUnits.has(unit);
  }

  private setPlacement(key: string, p: Placement): void {
    const prev = this.placements.get(key);
    this.placements.set(key, p);
    if (prev) {
      if (prev.unit === p.unit && prev.machineId === p.machineId) return;
      this.uncount(prev);
    }
    this.count(p.unit, p.machineId);
  }

  private count(unit: string, machineId: string): void {
    this.loads.set(machineId, (this.loads.get(machineId) ?? 0) + 1);
    this.placedUnits.set(unit, (this.placedUnits.get(unit) ?? 0) + 1);
  }

  private deletePlacement(key: string): boolean {
    const prev = this.placements.get(key);
    if (!prev) return false;
    this.placements.delete(key);
    this.uncount(prev);
    return true;
  }

  private uncount(p: { unit: string; machineId: string }): void {
    const l = (this.loads.get(p.machineId) ?? 0) - 1;
    if (l > 0) this.loads.set(p.machineId, l);
    else this.loads.delete(p.machineId);
    const n = (this.placedUnits.get(p.unit) ?? 0) - 1;
    if (n > 0) this.placedUnits.set(p.unit, n);
    else this.placedUnits.delete(p.unit);
  }

  private setUnit(name: string, u: EngineUnit | undefined): boolean {
    const prev = this.units.get(name);
    if (prev) {
      if (holdsRelations(prev)) this.relationHolders--;
      this.changed = true;
    } else if (u) this.added.push(name);
    if (u) {
      this.units.set(name, u);
      if (holdsRelations(u)) this.relationHolders++;
      return true;
    }
    return this.units.delete(name);
  }

  /** Machines alive now, as the scheduler sees them. */
  liveMachines(now: number): Map<string, EngineMachine> {
    const live = new Map<string, EngineMachine>();
    for (const [id, r] of this.machines) {
      if (this.liveness.isAlive(id, now)) live.set(id, { id, metadata: r.metadata, capacity: r.capacity, availability: r.availability });
    }
    return live;
  }

  // ---- watch entries: each returns true when the change calls for a round ----


  onUnit(e: KvWatchEntry): boolean {
    const name = keys.unitFromKey(e.key);
    if (e.operation !== "PUT") return this.setUnit(name, undefined);
    let rec: UnitRecord;
    try {
      rec = decodeAs(UnitRecord, e.value, `units/${e.key}`);
    } catch (err) {
      this.log.warn({ key: e.key, err: describeError(err) }, "skipping a garbage value in units");
      return false;
    }
    const prev = this.units.get(name);
    if (prev && prev.hash === rec.hash && prev.desiredState === rec.desiredState) return false;
    return this.setUnit(name, toEngineUnit(name, rec));
  }

  onSchedule(e: KvWatchEntry): boolean {
    const f = this.floor.get(e.key);
    if (f !== undefined) {
      if (f === "del") {
        if (e.operation !== "PUT") this.floor.delete(e.key);
        return false;
      }
      if (e.revision <= f) {
        if (e.revision === f) this.floor.delete(e.key);
        return false;
      }
      this.floor.delete(e.key);
    }
    this.changed = true;
    const un = keys.parseUnplaced(e.key);
    if (un !== undefined) {
      if (e.operation !== "PUT") {
        this.unplaced.delete(un);
        return false;
      }
      try {
        this.unplaced.set(un, decodeAs(UnplacedRecord, e.value, `schedule/${e.key}`).reason);
      } catch (err) {
        this.log.warn({ key: e.key, err: describeError(err) }, "skipping a garbage unplaced reason");
      }
      return false;
    }
    const k = keys.parseSchedule(e.key);
    if (!k) {
      this.log.warn({ key: e.key }, "skipping a schedule key that names no machine and unit");
      return false;
    }
    if (e.operation !== "PUT") return this.deletePlacement(e.key);
    let entry: ScheduleEntry;
    try {
      entry = decodeAs(ScheduleEntry, e.value, `schedule/${e.key}`);
    } catch (err) {
      this.log.warn({ key: e.key, err: describeError(err) }, "skipping a garbage value in schedule");
      return false;
    }
    this.setPlacement(e.key, { unit: k.unit, machineId: k.machineId, hash: entry.hash, desiredState: entry.desiredState });
    return true;
  }

  onMachine(e: KvWatchEntry): boolean {
    const id = e.key;
    if (e.operation !== "PUT") {
      this.liveness.forget(id);
      this.changed = true;
      return this.machines.delete(id);
    }
    let rec: MachineRecord;
    try {
      rec = decodeAs(MachineRecord, e.value, `machines/${e.key}`);
    } catch (err) {
      this.log.warn({ key: e.key, err: describeError(err) }, "skipping a garbage value in machines");
      return false;
    }
    const prev = this.machines.get(id);
    this.machines.set(id, rec);
    const wasAlive = this.liveness.isAlive(id, Date.now());
    this.liveness.seen(id, Date.now());
    // Plain heartbeats change nothing the scheduler reads: no round for them.
    const kick =
      !prev ||
      !wasAlive ||
      prev.availability !== rec.availability ||
      JSON.stringify(prev.metadata) !== JSON.stringify(rec.metadata) ||
      prev.capacity.cpu !== rec.capacity.cpu ||
      prev.capacity.memory !== rec.capacity.memory;
    if (kick) this.changed = true;
    return kick;
  }

  /** Learns a batch's acknowledged writes; true when something was placed or removed. */
  apply(res: WriteResult): boolean {
    const floor = this.noEchoes ? undefined : this.floor;
    for (const d of res.deleted) {
      this.deletePlacement(d.key);
      floor?.set(d.key, "del");
    }
    for (const p of res.put) {
      this.setPlacement(p.key, p.placement);
      floor?.set(p.key, p.revision);
    }
    for (const u of res.unplacedSet) {
      this.unplaced.set(u.unit, u.reason);
      floor?.set(u.key, u.revision);
    }
    for (const u of res.unplacedCleared) {
      this.unplaced.delete(u.unit);
      floor?.set(u.key, "del");
    }
    return res.failures === 0 && !res.aborted && (res.put.length > 0 || res.deleted.length > 0);
  }
}

function holdsRelations(u: EngineUnit): boolean {
  return u.fleet.conflicts.length > 0 || u.fleet.replaces.length > 0;
}

/** A units-bucket record as the engine sees it: only [X-Fleet] matters here. */
export function toEngineUnit(name: string, rec: UnitRecord): EngineUnit {
  const base = { name, hash: rec.hash, desiredState: rec.desiredState, contents: rec.contents };
  // Most units have no [X-Fleet] section; skip the parse for them (the API validated the file).
  if (!rec.contents.includes("[X-Fleet]") || !/^\s*\[X-Fleet\]/m.test(rec.contents)) return { ...base, fleet: NO_FLEET_OPTIONS };
  try {
    return { ...base, fleet: parseUnitFileCached(name, rec.contents, rec.hash).fleet };
  } catch (e) {
    return { ...base, fleet: NO_FLEET_OPTIONS, invalid: describeError(e) };
  }
}
