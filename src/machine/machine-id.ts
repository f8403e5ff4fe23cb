// This host's identity and the small files the daemon keeps in its state dir, drawn here:
//
//   <state-dir>/machine-id     32 hex chars, generated once (like /etc/machine-id)
//   <state-dir>/availability   active | pause | drain (survives restarts)
//   <state-dir>/daemon.json    {"session","pid"} of the daemon that last registered from here
//
// daemon.json lets a daemon restarted on the same state dir after a SIGKILL take its machine
// record over at once: the record's session is ours and its pid is dead, so nobody else owns it.
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { FlotillaError, describeError } from "../protocol/errors.js";
import { Availability, type MachineRecord } from "../protocol/messages.js";
import { assertMachineId } from "../protocol/names.js";

export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.FLOTILLA_STATE_DIR) return env.FLOTILLA_STATE_DIR;
  const base = env.XDG_STATE_HOME || join(env.HOME || homedir(), ".local", "state");
  return join(base, "flotilla");
}

export function ensureStateDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new FlotillaError("bad_config", `cannot create state dir ${dir}: ${describeError(e)}`, {
      field: "state_dir",
      value: dir,
    });
  }
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    return undefined;
  }
}

/** Writes through a temporary file so a crash never leaves half a file. */
function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

export function newMachineId(): string {
  return randomBytes(16).toString("hex");
}

/** The override if given, else the ID kept in the state dir, generated on first use. */
export function resolveMachineId(stateDir: string, override?: string): string {
  if (override) return assertMachineId(override, "machine_id");
  ensureStateDir(stateDir);
  const path = join(stateDir, "machine-id");
  const kept = readText(path);
  if (kept) {
    try {
      return assertMachineId(kept, "machine_id");
    } catch {
      throw new FlotillaError("bad_config", `${path} holds "${kept.slice(0, 64)}", which is not a machine ID; delete the file to generate a new one`, {
        field: "machine_id",
        value: kept,
      });
    }
  }
  const id = newMachineId();
  writeAtomic(path, id + "\n");
  return id;
}

export function readAvailability(stateDir: string): Availability {
  const parsed = Availability.safeParse(readText(join(stateDir, "availability")));
  return parsed.success ? parsed.data : "active";
}

export function writeAvailability(stateDir: string, a: Availability): void {
  ensureStateDir(stateDir);
  writeAtomic(join(stateDir, "availability"), a + "\n");
}

export interface DaemonStamp {
  session: string;
  pid: number;
}

export function readDaemonStamp(stateDir: string): DaemonStamp | undefined {
  const text = readText(join(stateDir, "daemon.json"));
  if (!text) return undefined;
  try {
    const v = JSON.parse(text) as Partial<DaemonStamp>;
    if (typeof v.session === "string" && typeof v.pid === "number") return { session: v.session, pid: v.pid };
  } catch {
    /* a torn or hand-edited file: as if absent */
  }
  return undefined;
}

export function writeDaemonStamp(stateDir: string, stamp: DaemonStamp): void {
  ensureStateDir(stateDir);
  writeAtomic(join(stateDir, "daemon.json"), JSON.stringify(stamp) + "\n");
}

export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

export type OwnershipDecision =
  | { take: true; reason: "absent" | "stale" | "own-previous" | "same-session" }
  | { take: false; reason: "alive-elsewhere"; ageMs: number };

/**
 * fleet's duplicate machine-ID check, as a pure decision: may this daemon (session `session`)
 * register machine record `existing`? A fresh record of another session belongs to a live
 * daemon, unless it is our own previous incarnation from this state dir whose process is dead.
 */
export function decideOwnership(
  existing: Pick<MachineRecord, "session" | "heartbeatAt"> | undefined,
  opts: { session: string; now: number; ttlMs: number; stamp?: DaemonStamp; alive: (pid: number) => boolean },
): OwnershipDecision {
  if (!existing) return { take: true, reason: "absent" };
  const ageMs = opts.now - existing.heartbeatAt;
  if (ageMs > opts.ttlMs) return { take: true, reason: "stale" };
  if (existing.session === opts.session) return { take: true, reason: "same-session" };
  // Our state dir's previous daemon wrote that record: it is gone when its pid is dead, or when
  // its pid is our own (a restarted container's daemon gets the same small pid again).
  if (opts.stamp && opts.stamp.session === existing.session && (opts.stamp.pid === process.pid || !opts.alive(opts.stamp.pid))) {
    return { take: true, reason: "own-previous" };
  }
  return { take: false, reason: "alive-elsewhere", ageMs };
}
