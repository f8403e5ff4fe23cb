// Schemas for every value that crosses NATS (bucket values and internal messages). Values are
// validated where they enter a process: a bad one is answered with an error or logged and
// dropped, never handed to a state machine.
import { z } from "zod";

// ---- desired and task states (DESIGN.md §2) ----

export const DESIRED_STATES = ["inactive", "loaded", "launched"] as const;
export const DesiredState = z.enum(DESIRED_STATES);
export type DesiredState = z.infer<typeof DesiredState>;

/** SwarmKit's task states, in the only order they may move. */
export const TASK_STATES = [
  "new",
  "pending",
  "assigned",
  "accepted",
  "preparing",
  "ready",
  "starting",
  "running",
  "complete",
  "shutdown",
  "failed",
  "rejected",
  "remove",
  "orphaned",
] as const;
export const TaskState = z.enum(TASK_STATES);
export type TaskState = z.infer<typeof TaskState>;

export function taskStateRank(s: TaskState): number {
  return TASK_STATES.indexOf(s);
}

export const Availability = z.enum(["active", "pause", "drain"]);
export type Availability = z.infer<typeof Availability>;

const millis = z.number().int().nonnegative();

// ---- machines bucket: <machineId> ----

export const MachineRecord = z.object({
  id: z.string().min(1),
  hostname: z.string().default(""),
  publicIp: z.string().default(""),
  metadata: z.record(z.string(), z.string()).default({}),
  capacity: z.object({
    cpu: z.number().nonnegative(), // cores
    memory: z.number().nonnegative(), // bytes
  }),
  availability: Availability.default("active"),
  version: z.string().default(""),
  /** Wall-clock ms when this daemon started (tells two daemons with one ID apart). */
  startedAt: millis,
  /** Random per daemon process: the duplicate machine-ID check compares it. */
  session: z.string().default(""),
  heartbeatAt: millis,
});
export type MachineRecord = z.infer<typeof MachineRecord>;

// ---- units bucket: <unit> ----

export const UnitRecord = z.object({
  name: z.string().min(1),
  contents: z.string(),
  /** sha1 of contents, hex; listings show the first 7. */
  hash: z.string().min(7),
  desiredState: DesiredState,
  /** Bumped on every write; the KV revision is the CAS guard, this is for humans. */
  version: z.number().int().nonnegative(),
  createdAt: millis,
  updatedAt: millis,
  /**
   * When the unit arrived (first come, first served between conflicting globals): the units
   * bucket revision of the write that made it wanted (desired loaded or launched after being
   * absent or inactive). Absent on that write itself (its revision is not known before it is
   * made), and on records older than the field: then the revision of the entry carrying the
   * record is the arrival. The store pins it on the next write and keeps it while the unit
   * stays wanted; unload or destroy ends it, so a unit wanted again is a newcomer.
   */
  activatedRevision: z.number().int().positive().optional(),
});
export type UnitRecord = z.infer<typeof UnitRecord>;

const isMillis = (x: unknown): boolean => typeof x === "number" && Number.isSafeInteger(x) && x >= 0;
/**
 * A quick check of a decoded unit record, for the engine that takes in 10,000s at once: true
 * only for values that UnitRecord accepts (they may carry extra fields, which the schema would
 * drop). Anything else goes through the schema, which says what is wrong. The two are compared
 * in test/unit/protocol.test.ts.
 */
export function isUnitRecord(v: unknown): v is UnitRecord {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const r = v as Record<string, unknown>;
  return (
    typeof r.name === "string" &&
    r.name.length >= 1 &&
    typeof r.contents === "string" &&
    typeof r.hash === "string" &&
    r.hash.length >= 7 &&
    (r.desiredState === "launched" || r.desiredState === "loaded" || r.desiredState === "inactive") &&
    isMillis(r.version) &&
    isMillis(r.createdAt) &&
    isMillis(r.updatedAt) &&
    (r.activatedRevision === undefined || (isMillis(r.activatedRevision) && r.activatedRevision !== 0))
  );
}

// ---- schedule bucket: <machineId>.<unit> (leader engine only) ----

export const ScheduleEntry = z.object({
  unit: z.string().min(1),
  machineId: z.string().min(1),
  hash: z.string(),
  desiredState: DesiredState,
  /** The unit file itself, so an agent needs nothing else to run the task. */
  contents: z.string(),
  /** The leader's term that wrote this entry; late writes of a deposed leader carry an old one. */
  epoch: z.number().int().nonnegative(),
  scheduledAt: millis,
});
export type ScheduleEntry = z.infer<typeof ScheduleEntry>;

/** schedule bucket, key keys.unplaced(unit): why the leader could not place a unit. */
export const UnplacedRecord = z.object({
  unit: z.string().min(1),
  /** The combined explanation of every filter, e.g. "3 machines lack region=eu; 1 conflicts with web@1.service". */
  reason: z.string(),
  /** The same, per filter: which machines it refused (at most 64 listed per filter; count is all). */
  refusals: z.array(z.object({ why: z.string(), count: z.number().int().nonnegative(), machines: z.array(z.string()) })).optional(),
  epoch: z.number().int().nonnegative(),
  at: millis,
});
export type UnplacedRecord = z.infer<typeof UnplacedRecord>;

// ---- states bucket: <unit>.<machineId> (agent) ----

export const UnitStateRecord = z.object({
  unit: z.string().min(1),
  machineId: z.string().min(1),
  hash: z.string(),
  taskState: TaskState,
  /** systemd's triple, derived from taskState (see unitTriple). */
  load: z.string(),
  active: z.string(),
  sub: z.string(),
  pid: z.number().int().optional(),
  exitCode: z.number().int().optional(),
  signal: z.string().optional(),
  restarts: z.number().int().nonnegative().default(0),
  /** ms since epoch when taskState was entered. */
  since: millis,
  error: z.string().optional(),
  updatedAt: millis,
});
export type UnitStateRecord = z.infer<typeof UnitStateRecord>;

// ---- leases bucket: engine-leader ----

export const LeaseRecord = z.object({
  holder: z.string().min(1),
  epoch: z.number().int().nonnegative(),
  expiresAt: millis,
});
export type LeaseRecord = z.infer<typeof LeaseRecord>;

/** systemd's LOAD / ACTIVE / SUB as fleetctl list-units shows them, from a task state. */
export function unitTriple(s: TaskState): { load: string; active: string; sub: string } {
  switch (s) {
    case "new":
    case "pending":
    case "assigned":
    case "accepted":
    case "preparing":
      return { load: "loaded", active: "inactive", sub: "dead" };
    case "ready":
      return { load: "loaded", active: "inactive", sub: "dead" };
    case "starting":
      return { load: "loaded", active: "activating", sub: "start" };
    case "running":
      return { load: "loaded", active: "active", sub: "running" };
    case "complete":
      return { load: "loaded", active: "inactive", sub: "exited" };
    case "shutdown":
      return { load: "loaded", active: "inactive", sub: "dead" };
    case "failed":
      return { load: "loaded", active: "failed", sub: "failed" };
    case "rejected":
      return { load: "error", active: "failed", sub: "failed" };
    case "remove":
    case "orphaned":
      return { load: "not-found", active: "inactive", sub: "dead" };
  }
}
