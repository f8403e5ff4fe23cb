// What list-unit-files, list-units and status answer, built from snapshots of the units,
// schedule, states and machines buckets. The row builders are pure (tested with tables); the
// reads skip a garbage value with a log line and go on.
import { listKeys, type BucketRef } from "../nats/kv-keys.js";
import type { Logger } from "pino";
import type { z } from "zod";
import { decodeAs } from "../protocol/codec.js";
import { describeError } from "../protocol/errors.js";
import {
  MachineRecord,
  ScheduleEntry,
  UnitStateRecord,
  UnplacedRecord,
  type TaskState,
  type UnitRecord,
} from "../protocol/messages.js";
import { keys } from "../protocol/names.js";
import { globMatch, parseUnitFileCached } from "../unit/index.js";
import { byArrival } from "../unit/match.js";
import type { FleetOptions } from "../unit/types.js";
import { getMany } from "../unit/store.js";

/** Every decodable value of a bucket (optionally under a key filter); garbage is logged and skipped. */
export async function readAll<S extends z.ZodType>(
  b: BucketRef,
  schema: S,
  log: Logger,
  filter = ">",
): Promise<{ key: string; value: z.infer<S> }[]> {
  const entries = await getMany(b.kv, await listKeys(b.nc, b.name, filter));
  const out: { key: string; value: z.infer<S> }[] = [];
  for (const e of entries) {
    if (!e || e.operation !== "PUT") continue;
    try {
      out.push({ key: e.key, value: decodeAs(schema, e.value, `${b.name}/${e.key}`) });
    } catch (err) {
      log.warn({ key: e.key, err: describeError(err) }, "skipping a bucket value that does not decode");
    }
  }
  return out;
}

export interface ClusterSnapshot {
  units: UnitRecord[];
  /** unit -> machines it is scheduled on */
  schedule: Map<string, string[]>;
  /** unit -> why the leader could not place it */
  unplaced: Map<string, string>;
  /** unit -> which filter refused which machines (the same, structured; at most 64 machines listed per filter) */
  refusals?: Map<string, NonNullable<UnplacedRecord["refusals"]>>;
  /** unit -> every machine's state */
  states: Map<string, UnitStateRecord[]>;
  machines: Map<string, MachineRecord>;
  /** Global unit -> why it waits (globalsWaiting), shown while no machine reports it. */
  waiting?: Map<string, string>;
}

export async function readSchedule(b: BucketRef, log: Logger, filter = ">"): Promise<Pick<ClusterSnapshot, "schedule" | "unplaced" | "refusals">> {
  const schedule = new Map<string, string[]>();
  const unplaced = new Map<string, string>();
  const refusals = new Map<string, NonNullable<UnplacedRecord["refusals"]>>();
  const entries = await getMany(b.kv, await listKeys(b.nc, b.name, filter));
  for (const e of entries) {
    if (!e || e.operation !== "PUT") continue;
    try {
      const u = keys.parseUnplaced(e.key);
      if (u !== undefined) {
        const rec = decodeAs(UnplacedRecord, e.value, `schedule/${e.key}`);
        unplaced.set(u, rec.reason);
        if (rec.refusals) refusals.set(u, rec.refusals);
        continue;
      }
      const s = keys.parseSchedule(e.key);
      if (!s) continue;
      decodeAs(ScheduleEntry, e.value, `schedule/${e.key}`);
      schedule.set(s.unit, [...(schedule.get(s.unit) ?? []), s.machineId].sort());
    } catch (err) {
      log.warn({ key: e.key, err: describeError(err) }, "skipping a schedule value that does not decode");
    }
  }
  return { schedule, unplaced, refusals };
}

export async function readStates(b: BucketRef, log: Logger, filter = ">"): Promise<Map<string, UnitStateRecord[]>> {
  const out = new Map<string, UnitStateRecord[]>();
  for (const { key, value } of await readAll(b, UnitStateRecord, log, filter)) {
    const k = keys.parseState(key);
    if (!k) continue;
    out.set(k.unit, [...(out.get(k.unit) ?? []), value].sort((a, b) => a.machineId.localeCompare(b.machineId)));
  }
  return out;
}

export async function readMachines(b: BucketRef, log: Logger): Promise<Map<string, MachineRecord>> {
  return new Map((await readAll(b, MachineRecord, log)).map(({ value }) => [value.id, value]));
}

// ---- pure views ----

/** fleet's unit state (list-unit-files STATE) of one task state. */
export function fleetStateOf(t: TaskState): string {
  switch (t) {
    case "running":
      return "launched";
    case "ready":
    case "starting":
    case "complete":
    case "shutdown":
      return "loaded";
    case "failed":
    case "rejected":
      return "failed";
    default:
      return "inactive";
  }
}

const STATE_ORDER = ["inactive", "failed", "loaded", "launched"];

export interface UnitFileRow {
  unit: string;
  hash: string;
  desiredState: string;
  /** fleet's STATE: what the machines report (the highest of them for a global unit). */
  currentState: string;
  /** Machine the unit is scheduled on; "global" for a global unit; null when not placed. */
  target: string | null;
  targetIp: string | null;
  /** Every machine the schedule has it on (several for a global unit). */
  machines: string[];
  /** Why the leader engine could not place it (when it is not placed). */
  unplaced: string | null;
  global: boolean;
  description: string;
  version: number;
}

export interface UnitInfo {
  global: boolean;
  description: string;
}

/** Global and Description from a stored unit file (stored files were validated at submit). */
export function unitInfo(r: Pick<UnitRecord, "name" | "contents" | "hash">, log?: Logger): UnitInfo {
  try {
    const p = parseUnitFileCached(r.name, r.contents, r.hash);
    return { global: p.fleet.global, description: p.description ?? "" };
  } catch (e) {
    log?.warn({ unit: r.name, err: describeError(e) }, "stored unit file no longer parses");
    return { global: false, description: "" };
  }
}

/** What a row builder looks things up in: the maps of a ClusterSnapshot, or a listing's index. */
export interface Lookup<V> {
  get(key: string): V | undefined;
}

export interface RowSources {
  schedule: Lookup<string[]>;
  unplaced: Lookup<string>;
  states: Lookup<readonly Pick<UnitStateRecord, "machineId" | "taskState">[]>;
  machines: Lookup<MachineRecord>;
  waiting?: Lookup<string>;
}

/** The fields of a unit record a row shows (a listing's index keeps only these, not the file). */
export type UnitFileFields = Pick<UnitRecord, "name" | "hash" | "desiredState" | "version">;

export function unitFileRow(r: UnitFileFields, snap: RowSources, info: UnitInfo): UnitFileRow {
  const machines = snap.schedule.get(r.name) ?? [];
  const states = snap.states.get(r.name) ?? [];
  let target: string | null = null;
  if (info.global) target = "global";
  else if (machines.length > 0) target = machines[0]!;
  const relevant = info.global || target === null ? states : states.filter((s) => s.machineId === target);
  let current = "inactive";
  for (const s of relevant) {
    const f = fleetStateOf(s.taskState);
    if (STATE_ORDER.indexOf(f) > STATE_ORDER.indexOf(current)) current = f;
  }
  // The agents run globals themselves (no schedule entries): placed once a machine reports it.
  const placed = info.global ? machines.length > 0 || states.length > 0 : target !== null;
  return {
    unit: r.name,
    hash: r.hash,
    desiredState: r.desiredState,
    currentState: current,
    target,
    targetIp: target && target !== "global" ? snap.machines.get(target)?.publicIp || null : null,
    machines,
    unplaced: !placed && r.desiredState !== "inactive" ? (snap.waiting?.get(r.name) ?? snap.unplaced.get(r.name) ?? null) : null,
    global: info.global,
    description: info.description,
    version: r.version,
  };
}

/**
 * Why a Global unit waits, for every wanted global that a conflicting global keeps from
 * running: the agents take globals first come, first served (unit/match.ts chooseGlobals), so
 * this walks them in the same order and names, for each one that loses, the global that came
 * before it and runs in its stead. Metadata and scheduled units are left out (they differ by
 * machine), so this is the cluster-wide picture; callers show it only while no machine reports
 * the unit. A stored file that no longer parses blocks nothing.
 */
export function globalsWaiting(units: { record: UnitRecord; arrival: number }[], log?: Logger): Map<string, string> {
  const candidates: GlobalCandidate[] = [];
  for (const { record: r, arrival } of units) {
    if (r.desiredState === "inactive") continue;
    try {
      const fleet = parseUnitFileCached(r.name, r.contents, r.hash).fleet;
      if (fleet.global) candidates.push({ name: r.name, arrival, fleet });
    } catch (e) {
      log?.warn({ unit: r.name, err: describeError(e) }, "stored unit file no longer parses");
    }
  }
  return globalsWaitingOf(candidates);
}

/** A wanted global unit as globalsWaiting weighs it: its arrival and its Conflicts=. */
export interface GlobalCandidate {
  name: string;
  arrival: number;
  fleet: Pick<FleetOptions, "conflicts">;
}

/** globalsWaiting of wanted globals already parsed (a listing's index keeps these). */
export function globalsWaitingOf(candidates: GlobalCandidate[]): Map<string, string> {
  candidates = [...candidates].sort(byArrival);
  const out = new Map<string, string>();
  const running: typeof candidates = [];
  for (const g of candidates) {
    let why: string | undefined;
    for (const o of running) if ((why = waitingReason(g, o))) break;
    if (why) out.set(g.name, why);
    else running.push(g);
  }
  return out;
}

/**
 * "conflicts with zeta.service (Conflicts=zeta.service in alpha.service); zeta.service came
 * first ...", whichever of the two declared the conflict; undefined when they do not conflict.
 */
function waitingReason(unit: GlobalCandidate, first: GlobalCandidate): string | undefined {
  const mine = unit.fleet.conflicts.find((p) => globMatch(p, first.name));
  const theirs = mine === undefined ? first.fleet.conflicts.find((p) => globMatch(p, unit.name)) : undefined;
  if (mine === undefined && theirs === undefined) return undefined;
  const declared = mine !== undefined ? `Conflicts=${mine} in ${unit.name}` : `Conflicts=${theirs} in ${first.name}`;
  return (
    `conflicts with ${first.name} (${declared}); ${first.name} came first and keeps running ` +
    `(first come, first served): ${unit.name} waits until ${first.name} is unloaded or destroyed`
  );
}

export interface UnitRow {
  unit: string;
  machine: string;
  machineIp: string | null;
  load: string;
  active: string;
  sub: string;
  taskState: TaskState;
  hash: string;
  pid: number | null;
  exitCode: number | null;
  restarts: number;
  since: number;
  error: string | null;
}

/** One list-units row: what one machine reports for one unit. */
/** The fields of a state record a list-units row shows (a listing's index keeps only these). */
export type UnitRowFields = Pick<
  UnitStateRecord,
  "unit" | "machineId" | "load" | "active" | "sub" | "taskState" | "hash" | "pid" | "exitCode" | "restarts" | "since" | "error"
>;

export function unitRow(s: UnitRowFields, machines: Lookup<MachineRecord>): UnitRow {
  return {
    unit: s.unit,
    machine: s.machineId,
    machineIp: machines.get(s.machineId)?.publicIp || null,
    load: s.load,
    active: s.active,
    sub: s.sub,
    taskState: s.taskState,
    hash: s.hash,
    pid: s.pid ?? null,
    exitCode: s.exitCode ?? null,
    restarts: s.restarts,
    since: s.since,
    error: s.error ?? null,
  };
}

export function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The most recent error any machine reports for a unit. */
export function lastError(states: UnitStateRecord[]): string | null {
  let best: UnitStateRecord | undefined;
  for (const s of states) {
    const failed = s.error !== undefined || s.taskState === "failed" || s.taskState === "rejected";
    if (failed && (!best || s.updatedAt > best.updatedAt)) best = s;
  }
  if (!best) return null;
  const parts = [`${best.machineId}: ${best.taskState}`];
  if (best.exitCode !== undefined) parts.push(`exit code ${best.exitCode}`);
  if (best.signal) parts.push(`signal ${best.signal}`);
  if (best.error) parts.push(best.error);
  return parts.join(", ");
}
