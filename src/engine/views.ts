// The leader's in-memory picture of the cluster, fed by watch entries (units, machines, the
// schedule's replay) and by the writer's acknowledged writes. Every value is validated as it
// enters; a garbage one is skipped with a log line and never reaches the reconciler.
import type { BucketEntry } from "../nats/kv-watch.js";
import type { Logger } from "pino";
import { decodeAs } from "../protocol/codec.js";
import { isUnitRecord, MachineRecord, ScheduleEntry, UnitRecord, UnplacedRecord } from "../protocol/messages.js";
import { keys } from "../protocol/names.js";
import { describeError } from "../protocol/errors.js";
import { parseUnitFileCached } from "../unit/index.js";
import type { Liveness } from "./liveness.js";
import type { WriteResult } from "./schedule-writer.js";
import { NO_FLEET_OPTIONS, type EngineMachine, type EngineUnit, type Placement } from "./model.js";

export class ClusterViews {
  units = new Map<string, EngineUnit>();
  /** By schedule key <machineId>.<unit>. */
  placements = new Map<string, Placement>();
  unplaced = new Map<string, string>();
  machines = new Map<string, MachineRecord>();

  constructor(
    private readonly log: Logger,
    private readonly liveness: Liveness,
  ) {}

  clear(): void {
    this.units = new Map();
    this.clearSchedule();
    this.machines = new Map();
  }

  clearSchedule(): void {
    this.placements = new Map();
    this.unplaced = new Map();
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


  onUnit(e: BucketEntry): boolean {
    const name = keys.unitFromKey(e.key);
    if (e.operation !== "PUT") return this.units.delete(name);
    let rec: UnitRecord;
    try {
      rec = decodeAs(UnitRecord, e.value, `units/${e.key}`, isUnitRecord);
    } catch (err) {
      this.log.warn({ key: e.key, err: describeError(err) }, "skipping a garbage value in units");
      return false;
    }
    const prev = this.units.get(name);
    if (prev && prev.hash === rec.hash && prev.desiredState === rec.desiredState) return false;
    this.units.set(name, toEngineUnit(name, rec));
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
    if (e.operation !== "PUT") return this.placements.delete(e.key);
    let entry: ScheduleEntry;
    try {
      entry = decodeAs(ScheduleEntry, e.value, `schedule/${e.key}`);
    } catch (err) {
      this.log.warn({ key: e.key, err: describeError(err) }, "skipping a garbage value in schedule");
      return false;
    }
    this.placements.set(e.key, { unit: k.unit, machineId: k.machineId, hash: entry.hash, desiredState: entry.desiredState });
    return true;
  }

  onMachine(e: BucketEntry): boolean {
    const id = e.key;
    if (e.operation !== "PUT") {
      this.liveness.forget(id);
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
    return (
      !prev ||
      !wasAlive ||
      prev.availability !== rec.availability ||
      JSON.stringify(prev.metadata) !== JSON.stringify(rec.metadata) ||
      prev.capacity.cpu !== rec.capacity.cpu ||
      prev.capacity.memory !== rec.capacity.memory
    );
  }

  /** Learns a batch's acknowledged writes; true when something was placed or removed. */
  apply(res: WriteResult): boolean {
    for (const d of res.deleted) this.placements.delete(d.key);
    for (const p of res.put) this.placements.set(p.key, p.placement);
    for (const u of res.unplacedSet) this.unplaced.set(u.unit, u.reason);
    for (const u of res.unplacedCleared) this.unplaced.delete(u.unit);
    return res.failures === 0 && !res.aborted && (res.put.length > 0 || res.deleted.length > 0);
  }
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
