// What the chaos test sees: the real workload processes in /proc (each unit's ExecStart is
// `/bin/sleep 900.<tag><nn>`, a unique argv) attributed to the machine whose state dir holds
// their supervisor's run directory, and the states bucket read with listKeys + get. Plus the
// duplicate tracker: since when a unit has had more than one process, and how much of that
// time every machine holding a copy had a live daemon (a SIGKILLed daemon cannot stop what its
// agent started, so a copy left on a dead machine is fleet's design, not a bug).
import { readdirSync, readFileSync } from "node:fs";
import type { NatsConnection } from "@nats-io/nats-core";
import type { KV } from "@nats-io/kv";
import { listKeys } from "../../src/nats/kv-keys.js";
import { keys } from "../../src/protocol/names.js";
import { decodeAs } from "../../src/protocol/codec.js";
import { UnitStateRecord } from "../../src/protocol/messages.js";

export type UnitKind = "plain" | "conflict" | "lead" | "follow" | "global";

export interface ChaosUnit {
  name: string;
  /** argv[1] of its process: unique to this unit and this run. */
  marker: string;
  kind: UnitKind;
  /** Conflicts group (glob prefix) for kind "conflict". */
  group?: string;
  /** The unit a "follow" unit is MachineOf. */
  lead?: string;
  contents: string;
}

export interface Copy {
  pid: number;
  /** Machine ID, or "?" if the supervisor could not be matched to a state dir. */
  machine: string;
}

function readArgv(pid: string): string[] | undefined {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    return raw.length === 0 ? undefined : raw.split("\0");
  } catch {
    return undefined;
  }
}

function ppidOf(pid: string): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1];
  } catch {
    return undefined;
  }
}

/**
 * The workload processes of the given units, by unit. A zombie has an empty cmdline and does not
 * count; the supervisor (`sh -c ... flotilla-supervise <runDir> ... /bin/sleep <marker>`) and a
 * transient `env --default-signal` before its exec do not either: only argv[0] = /bin/sleep.
 */
export function scanWorkloads(byMarker: Map<string, string>, stateDirs: Map<string, string>): Map<string, Copy[]> {
  const out = new Map<string, Copy[]>();
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((p) => /^\d+$/.test(p));
  } catch {
    return out;
  }
  for (const pid of pids) {
    const argv = readArgv(pid);
    if (!argv || argv[0] !== "/bin/sleep" || argv[1] === undefined) continue;
    const unit = byMarker.get(argv[1]);
    if (!unit) continue;
    let machine = "?";
    const ppid = ppidOf(pid);
    const parent = ppid ? readArgv(ppid) : undefined;
    const i = parent?.indexOf("flotilla-supervise") ?? -1;
    const runDir = i >= 0 ? parent![i + 1] : undefined;
    if (runDir) for (const [id, dir] of stateDirs) if (runDir.startsWith(dir + "/")) machine = id;
    const list = out.get(unit) ?? [];
    list.push({ pid: Number(pid), machine });
    out.set(unit, list);
  }
  return out;
}

export interface StateRow {
  machine: string;
  taskState: string;
}

/** Every state record of the bucket, by unit (listKeys, never kv.keys() on this TTL bucket). */
export async function readStates(nc: NatsConnection, kv: KV, bucket: string): Promise<Map<string, StateRow[]>> {
  const ks = await listKeys(nc, bucket, ">", { budgetMs: 1000 });
  const entries = await Promise.all(ks.map((k) => kv.get(k).then((e) => [k, e] as const)));
  const out = new Map<string, StateRow[]>();
  for (const [k, e] of entries) {
    if (!e || e.operation !== "PUT" || e.value.length === 0) continue;
    const p = keys.parseState(k);
    if (!p) continue;
    const rec = decodeAs(UnitStateRecord, e.value, k);
    const list = out.get(p.unit) ?? [];
    list.push({ machine: p.machineId, taskState: rec.taskState });
    out.set(p.unit, list);
  }
  return out;
}

export interface Episode {
  /** ms from the start of the chaos window. */
  from: number;
  ms: number;
  copies: Copy[];
}

interface UnitTrack {
  /** The copies seen last, as "m1:123,m3:456" (a change adds a line to the timeline). */
  last?: string;
  rawSince?: number;
  liveSince?: number;
  liveCopies?: Copy[];
  maxRawMs: number;
  maxLiveMs: number;
  worstLive?: Episode;
  episodes: number;
}

/**
 * A unit "runs twice" when it has two processes (a Global unit: two on one machine). Two
 * measures per unit: raw (any duplicate) and live (a duplicate while every machine holding a
 * copy has a registered daemon; two copies on one machine are never excused).
 */
export class DuplicateTracker {
  readonly units = new Map<string, UnitTrack>();
  /** Every change of a unit's copies, with which machines were up then: the evidence. */
  readonly timeline: { at: number; unit: string; line: string }[] = [];

  constructor(private readonly t0: number) {}

  private track(unit: string): UnitTrack {
    let t = this.units.get(unit);
    if (!t) {
      t = { maxRawMs: 0, maxLiveMs: 0, episodes: 0 };
      this.units.set(unit, t);
    }
    return t;
  }

  observe(now: number, unit: string, global: boolean, copies: Copy[], machineUp: (m: string) => boolean, status = ""): void {
    const t = this.track(unit);
    const shown = copies.map((c) => `${c.machine}:${c.pid}`).sort().join(",");
    if (shown !== t.last) {
      t.last = shown;
      this.timeline.push({ at: now - this.t0, unit, line: `[${shown}] ${status}` });
    }
    const perMachine = new Map<string, number>();
    for (const c of copies) perMachine.set(c.machine, (perMachine.get(c.machine) ?? 0) + 1);
    const sameMachine = [...perMachine.values()].some((n) => n > 1);
    const dup = global ? sameMachine : copies.length > 1;
    // A copy no state dir owns ("?") is never excused: nobody at all will stop it.
    const live = dup && (sameMachine || copies.every((c) => c.machine === "?" || machineUp(c.machine)));
    if (dup) {
      if (t.rawSince === undefined) {
        t.rawSince = now;
        t.episodes += 1;
      }
      t.maxRawMs = Math.max(t.maxRawMs, now - t.rawSince);
    } else t.rawSince = undefined;
    if (live) {
      if (t.liveSince === undefined) t.liveSince = now;
      t.liveCopies = copies;
      const ms = now - t.liveSince;
      if (ms >= t.maxLiveMs) {
        t.maxLiveMs = ms;
        t.worstLive = { from: t.liveSince - this.t0, ms, copies };
      }
    } else t.liveSince = undefined;
  }
}

/**
 * Why the cluster is not where the units' constraints put it (empty: converged), per unit:
 * plain/conflict/lead/follow units exactly one process, reported running in the states bucket
 * on that same machine; no two of a Conflicts group on one machine; a MachineOf unit beside its
 * lead; the Global unit exactly once on every machine.
 */
export function placementProblems(
  units: ChaosUnit[],
  procs: Map<string, Copy[]>,
  states: Map<string, StateRow[]>,
  machines: string[],
): Map<string, string> {
  const out = new Map<string, string>();
  const where = new Map<string, string>();
  for (const u of units) {
    const copies = procs.get(u.name) ?? [];
    const running = (states.get(u.name) ?? []).filter((r) => r.taskState === "running").map((r) => r.machine).sort();
    const desc = `processes on [${copies.map((c) => c.machine).sort().join(",")}], states running on [${running.join(",")}]`;
    if (u.kind === "global") {
      const ok = machines.every((m) => copies.filter((c) => c.machine === m).length === 1) && copies.length === machines.length;
      if (!ok || running.join() !== [...machines].sort().join()) out.set(u.name, `global: ${desc}`);
      continue;
    }
    if (copies.length !== 1 || copies[0]!.machine === "?") {
      out.set(u.name, desc);
      continue;
    }
    const m = copies[0]!.machine;
    if (running.length !== 1 || running[0] !== m) {
      out.set(u.name, desc);
      continue;
    }
    where.set(u.name, m);
  }
  for (const u of units) {
    const m = where.get(u.name);
    if (m === undefined) continue;
    if (u.kind === "follow" && where.get(u.lead!) !== m) out.set(u.name, `MachineOf=${u.lead} but on ${m}, its lead on ${where.get(u.lead!) ?? "?"}`);
    if (u.kind === "conflict") {
      const peers = units.filter((p) => p !== u && p.group === u.group && where.get(p.name) === m).map((p) => p.name);
      if (peers.length > 0) out.set(u.name, `Conflicts=${u.group}* but on ${m} with ${peers.join(",")}`);
    }
  }
  return out;
}
