// fleetctl's unit verbs: submit|load|start [--replace] [--no-block] [--block-attempts N]
// FILE|UNIT..., stop|unload|destroy|restart [--no-block] UNIT.... A FILE argument is read from
// disk and sent with its name (the file's base name); a UNIT argument names a unit already in
// the cluster (or an instance of a template there, or of a template file next to the path).
// Blocking verbs then watch the states bucket until the cluster reports the requested state.
import { readFile, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { Command } from "commander";
import type { CommandRegistrar } from "./main.js";
import { ApiClient, withClient } from "./client.js";
import { FlotillaError, describeError } from "../protocol/errors.js";
import type { MachineRecord } from "../protocol/messages.js";
import type { UnitVerb } from "../unit/transitions.js";
// The unit parser, JetStream and the state watch are imported where they are used, not at the
// CLI's start.
import type { UnitStates, WaitGoal } from "../unit/wait.js";
import type { UnitVerbReply } from "../api/units.js";
import { registerUnitListings } from "./unit-listings.js";

/** fleetctl polls every 500 ms per attempt; we watch, and turn attempts into the same deadline. */
export const BLOCK_ATTEMPT_MS = 500;
export const DEFAULT_BLOCK_ATTEMPTS = 120;

export interface UnitArg {
  name: string;
  contents?: string;
  /** Where the contents came from, for messages. */
  file?: string;
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

async function readUnitFile(path: string): Promise<string> {
  const { MAX_UNIT_FILE_BYTES } = await import("../unit/index.js");
  const st = await stat(path);
  if (st.size > MAX_UNIT_FILE_BYTES) {
    throw new FlotillaError(
      "payload_too_large",
      `${path} is ${st.size} bytes; a unit file may hold at most ${MAX_UNIT_FILE_BYTES} bytes (256 KiB)`,
      { field: "file", value: path },
    );
  }
  // Bytes that are not UTF-8 become U+FFFD, which the daemon's parser refuses naming the line.
  return (await readFile(path)).toString("utf8");
}

/** A FILE (a path that exists) or a UNIT name; an instance may take its contents from a template file beside it. */
export async function resolveUnitArg(arg: string, allowFiles: boolean): Promise<UnitArg> {
  const { instanceOf, normalizeUnitName, UNIT_TYPES } = await import("../unit/index.js");
  if (allowFiles && (await isFile(arg))) {
    return { name: normalizeUnitName(basename(arg)), contents: await readUnitFile(arg), file: arg };
  }
  if (arg.includes("/")) {
    if (allowFiles) {
      const inst = instanceOf(normalizeUnitName(basename(arg)));
      const tmpl = inst ? join(dirname(arg), inst.template) : undefined;
      if (tmpl && (await isFile(tmpl))) {
        return { name: normalizeUnitName(basename(arg)), contents: await readUnitFile(tmpl), file: tmpl };
      }
      throw new FlotillaError("bad_request", `no such unit file: ${arg}`, { field: "file", value: arg });
    }
    throw new FlotillaError("invalid_unit_name", `${arg} is a path; give the unit's name (for example ${basename(arg)})`, {
      field: "unit",
      value: arg,
    });
  }
  const name = normalizeUnitName(arg);
  if (allowFiles && new RegExp(`\\.(${UNIT_TYPES.join("|")})$`).test(arg)) {
    const inst = instanceOf(name);
    if (inst && (await isFile(inst.template))) return { name, contents: await readUnitFile(inst.template), file: inst.template };
  }
  return { name };
}

function parseAttempts(v: string): number {
  if (!/^\d+$/.test(v)) {
    throw new FlotillaError("bad_flag", `--block-attempts wants a whole number (0 waits forever), not "${v}"`, {
      field: "block-attempts",
      value: v,
    });
  }
  return Number(v);
}

interface VerbFlags {
  replace?: boolean;
  block: boolean;
  blockAttempts: string;
}

const GOAL: Partial<Record<UnitVerb, WaitGoal>> = {
  load: "loaded",
  start: "launched",
  stop: "stopped",
  unload: "gone",
  destroy: "gone",
};

const GOAL_WORDS: Record<WaitGoal, string> = {
  loaded: "loaded",
  launched: "launched",
  stopped: "stopped",
  gone: "unloaded",
};

export function machineLegend(id: string, ip: string | null | undefined, full = false): string {
  const shown = full || id.length <= 8 ? id : `${id.slice(0, 8)}...`;
  return ip ? `${shown}/${ip}` : shown;
}

/** At most this many units, and about this many bytes of unit files, in one API request. */
export const UNITS_PER_REQUEST = 200;
export const BYTES_PER_REQUEST = 512 * 1024;
/** Requests of one verb in flight at once. */
const REQUESTS_IN_FLIGHT = 4;

/** Cuts a verb's units into requests: UNITS_PER_REQUEST units or BYTES_PER_REQUEST of files each. */
export function requestsOf<T extends { name: string; contents?: string }>(units: T[]): T[][] {
  const out: T[][] = [];
  let cur: T[] = [];
  let bytes = 0;
  for (const u of units) {
    const size = u.name.length + (u.contents === undefined ? 0 : Buffer.byteLength(u.contents, "utf8")) + 32;
    if (cur.length && (cur.length >= UNITS_PER_REQUEST || bytes + size > BYTES_PER_REQUEST)) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(u);
    bytes += size;
  }
  if (cur.length) out.push(cur);
  return out;
}

/**
 * Runs one verb against the API and prints fleetctl's lines; returns the reply. Many units go
 * as several requests (requestsOf), a few in flight at once: each request is checked whole by
 * the daemon before it writes anything, but a bad unit in a later request leaves the earlier
 * ones written (fleetctl, too, writes unit by unit).
 */
async function callVerb(client: ApiClient, verb: UnitVerb, args: UnitArg[], replace: boolean): Promise<UnitVerbReply> {
  const units = args.map((a) => (a.contents !== undefined ? { name: a.name, contents: a.contents } : { name: a.name }));
  const parts = requestsOf(units);
  const replies: UnitVerbReply[] = new Array(parts.length);
  let next = 0;
  const worker = async () => {
    while (next < parts.length) {
      const i = next++;
      const body = replace ? { units: parts[i]!, replace: true } : { units: parts[i]! };
      replies[i] = await client.request<UnitVerbReply>(verb, body);
    }
  };
  await Promise.all(Array.from({ length: Math.min(REQUESTS_IN_FLIGHT, parts.length) }, worker));
  const reply: UnitVerbReply = { units: replies.flatMap((r) => r.units), warnings: replies.flatMap((r) => r.warnings) };
  for (const w of reply.warnings) process.stderr.write(`WARNING: ${w}\n`);
  return reply;
}

interface Waiter {
  client: ApiClient;
  machines?: Map<string, MachineRecord>;
}

async function machinesOf(w: Waiter): Promise<Map<string, MachineRecord>> {
  if (!w.machines) {
    const list = await w.client.request<MachineRecord[]>("list-machines", {}).catch(() => [] as MachineRecord[]);
    w.machines = new Map(list.map((m) => [m.id, m]));
  }
  return w.machines;
}

/** Where each unit is headed, for the "Waiting for ..." lines: one status per unit, or one listing for many. */
async function whereTo(client: ApiClient, units: string[]): Promise<string[]> {
  type Where = { target: string | null; targetIp: string | null; unplaced: string | null };
  const phrase = (w: Where | undefined): string => {
    if (!w) return "";
    if (w.target === "global") return " on every matching machine (global)";
    if (w.target) return ` on ${machineLegend(w.target, w.targetIp)}`;
    if (w.unplaced) return ` (not placed yet: ${w.unplaced})`;
    return " (waiting for the engine to place it)";
  };
  try {
    if (units.length > 3) {
      const rows = await client.request<(Where & { unit: string })[]>("list-unit-files", {});
      const by = new Map(rows.map((r) => [r.unit, r]));
      return units.map((u) => phrase(by.get(u)));
    }
    return await Promise.all(
      units.map(async (u) => {
        const st = await client.request<Where & { machineIps: Record<string, string | null> }>("status", { name: u });
        return phrase({ ...st, targetIp: st.target ? (st.machineIps[st.target] ?? null) : null });
      }),
    );
  } catch {
    return units.map(() => "");
  }
}

/** Blocks until every unit reaches the goal; prints one line per unit; throws on timeout. */
async function waitAll(client: ApiClient, units: string[], goal: WaitGoal, attempts: number, word = GOAL_WORDS[goal]): Promise<void> {
  const [{ openKv }, { goalReached, waitForUnits }] = await Promise.all([import("../nats/buckets.js"), import("../unit/wait.js")]);
  const name = client.names.bucket("states");
  const states = { kv: await openKv(client.nc, name), nc: client.nc, name };
  const timeoutMs = attempts === 0 ? 0 : attempts * BLOCK_ATTEMPT_MS;
  const w: Waiter = { client };
  const where = goal === "loaded" || goal === "launched" ? await whereTo(client, units) : units.map(() => "");
  units.forEach((u, i) => process.stdout.write(`Waiting for ${u} to be ${word}${where[i]}...\n`));
  // One watch and one snapshot for all of them (the snapshot looks each unit up on the listed machines).
  const done = await waitForUnits(states, units, (_, s) => goalReached(goal, s), {
    timeoutMs,
    machineIds: async () => [...(await machinesOf(w)).keys()],
  });
  const results = units.map((u) => ({ unit: u, ...done.get(u)! }));
  const machines = await machinesOf(w);
  const failed: string[] = [];
  for (const r of results) {
    if (r.ok) {
      process.stdout.write(`Unit ${r.unit} ${word}${reachedOn(goal, r.states, machines)}\n`);
      continue;
    }
    const why = await timeoutReason(client, r.unit, r.states);
    const line = `timed out after ${(timeoutMs / 1000).toFixed(1)} s waiting for ${r.unit} to be ${word}: ${why}`;
    failed.push(line);
  }
  if (failed.length === 1) throw new FlotillaError("timeout", failed[0]!);
  for (const line of failed) process.stderr.write(`${line}\n`);
  if (failed.length > 1) throw new FlotillaError("timeout", `${failed.length} of ${units.length} units did not become ${word} in time`);
}

function reachedOn(goal: WaitGoal, states: UnitStates, machines: Map<string, MachineRecord>): string {
  if (goal === "gone" || goal === "stopped") return "";
  const on = [...states.values()]
    .filter((s) => (goal === "launched" ? s.taskState === "running" : true))
    .map((s) => machineLegend(s.machineId, machines.get(s.machineId)?.publicIp));
  return on.length ? ` on ${on.join(", ")}` : "";
}

async function timeoutReason(client: ApiClient, unit: string, states: UnitStates): Promise<string> {
  const { describeStates } = await import("../unit/wait.js");
  let why = describeStates(states);
  try {
    const st = await client.request<{ unplaced: string | null; target: string | null; unit: { desiredState: string } }>("status", { name: unit });
    if (st.unplaced) why += `; not placed: ${st.unplaced}`;
    else if (!st.target && st.unit.desiredState !== "inactive") why += "; no engine has placed it (is a daemon with the engine running?)";
  } catch (e) {
    if (!(e instanceof FlotillaError && e.code === "unknown_unit")) why += ` (status failed: ${describeError(e)})`;
  }
  return why;
}


function report(verb: UnitVerb, reply: UnitVerbReply, block: boolean): void {
  for (const u of reply.units) {
    if (verb === "destroy") {
      process.stdout.write(u.changed ? `Destroyed ${u.name}\n` : `Unit ${u.name} was already gone\n`);
    } else if (verb === "submit") {
      process.stdout.write(`Unit ${u.name} ${u.changed ? "" : "already "}${u.record?.desiredState === "inactive" ? "inactive" : `submitted (${u.record?.desiredState})`}\n`);
    } else if (!block) {
      process.stdout.write(u.changed ? `Triggered unit ${u.name} ${verb}\n` : `Unit ${u.name} already ${u.record?.desiredState}\n`);
    }
  }
}

function addBlockFlags(cmd: Command): Command {
  return cmd
    .option("--no-block", "do not wait until the cluster reports the requested state")
    .option(
      "--block-attempts <n>",
      `wait at most N x ${BLOCK_ATTEMPT_MS} ms for the requested state (0: forever)`,
      String(DEFAULT_BLOCK_ATTEMPTS),
    );
}

export const registerUnits: CommandRegistrar = (program, globals) => {
  const creating: [UnitVerb, string][] = [
    ["submit", "upload unit files into the cluster (desired state inactive); does not load or start them"],
    ["load", "submit (when given files) and schedule units onto machines, ready to start (desired state loaded)"],
    ["start", "submit and load (when needed) and start units (desired state launched)"],
  ];
  for (const [verb, description] of creating) {
    let cmd = program
      .command(`${verb} <unit-or-file...>`)
      .description(description)
      .option("--replace", "replace a unit in the cluster whose file differs from the given one");
    if (verb !== "submit") cmd = addBlockFlags(cmd);
    cmd.action(async (argv: string[], o: VerbFlags) => {
      const attempts = verb === "submit" ? 0 : parseAttempts(o.blockAttempts);
      const args = await Promise.all(argv.map((a) => resolveUnitArg(a, true)));
      await withClient(globals, async (client) => {
        const reply = await callVerb(client, verb, args, Boolean(o.replace));
        const block = verb !== "submit" && o.block;
        report(verb, reply, block);
        if (block) await waitAll(client, reply.units.map((u) => u.name), GOAL[verb]!, attempts);
      });
    });
  }

  const byName: [UnitVerb, string][] = [
    ["stop", "stop units; they stay loaded on their machines (desired state loaded)"],
    ["unload", "unload units from their machines; they stay in the cluster (desired state inactive)"],
    ["destroy", "stop, unload and remove units from the cluster"],
    ["restart", "stop, then start units again"],
  ];
  for (const [verb, description] of byName) {
    addBlockFlags(program.command(`${verb} <unit...>`).description(description)).action(async (argv: string[], o: VerbFlags) => {
      const attempts = parseAttempts(o.blockAttempts);
      const args = await Promise.all(argv.map((a) => resolveUnitArg(a, false)));
      await withClient(globals, async (client) => {
        if (verb === "restart" && o.block) {
          // fleetctl's restart: stop, wait until stopped, start, wait until running.
          const stopped = await callVerb(client, "stop", args, false);
          await waitAll(client, stopped.units.map((u) => u.name), "stopped", attempts);
          const started = await callVerb(client, "start", args, false);
          await waitAll(client, started.units.map((u) => u.name), "launched", attempts);
          return;
        }
        const reply = await callVerb(client, verb, args, false);
        report(verb, reply, o.block);
        if (o.block && verb !== "restart") {
          const word = verb === "destroy" ? "removed from every machine" : undefined;
          await waitAll(client, reply.units.map((u) => u.name), GOAL[verb]!, attempts, word);
        }
      });
    });
  }

  registerUnitListings(program, globals);
};
