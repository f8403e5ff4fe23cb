// fleetctl's read-only unit verbs: list-unit-files (UNIT HASH DSTATE STATE TARGET), list-units
// (UNIT MACHINE ACTIVE SUB), cat UNIT (exactly the submitted file), status UNIT.
import type { CommandRegistrar } from "./main.js";
import { withClient, type ApiClient } from "./client.js";
import { addListingOptions, type Column, type ListFlags } from "./table.js";
import { RowPrinter, followWatch, listPages, out, printListing } from "./listing-stream.js";
import type { UnitRecord, UnitStateRecord } from "../protocol/messages.js";
import type { UnitFileRow, UnitRow } from "../api/unit-views.js";

function legend(id: string, ip: string | null | undefined, full: boolean): string {
  const shown = full || id.length <= 8 ? id : `${id.slice(0, 8)}...`;
  return ip ? `${shown}/${ip}` : shown;
}

export const unitFileColumns: Column<UnitFileRow>[] = [
  { header: "UNIT", value: (r) => r.unit },
  { header: "HASH", value: (r, full) => (full ? r.hash : r.hash.slice(0, 7)) },
  { header: "DSTATE", value: (r) => r.desiredState },
  { header: "STATE", value: (r) => (r.global ? "-" : r.currentState) },
  {
    header: "TARGET",
    value: (r, full) => {
      if (r.global) return r.unplaced ? `global (waiting: ${r.unplaced})` : "global";
      if (r.target) return legend(r.target, r.targetIp, full);
      return r.unplaced ? `- (unplaced: ${r.unplaced})` : "-";
    },
  },
  { header: "GLOBAL", value: (r) => String(r.global) },
  { header: "DESC", value: (r) => r.description || "-" },
  { header: "VERSION", value: (r) => String(r.version) },
];

export const unitColumns: Column<UnitRow>[] = [
  { header: "UNIT", value: (r) => r.unit },
  { header: "MACHINE", value: (r, full) => legend(r.machine, r.machineIp, full) },
  { header: "ACTIVE", value: (r) => r.active },
  { header: "SUB", value: (r) => r.sub },
  { header: "LOAD", value: (r) => r.load },
  { header: "TASK", value: (r) => r.taskState },
  { header: "HASH", value: (r, full) => (full ? r.hash : r.hash.slice(0, 7)) },
  { header: "PID", value: (r) => (r.pid === null ? "-" : String(r.pid)) },
  { header: "RESTARTS", value: (r) => String(r.restarts) },
  { header: "SINCE", value: (r) => new Date(r.since).toISOString() },
];



interface StatusReply {
  unit: UnitRecord;
  description: string;
  global: boolean;
  currentState: string;
  target: string | null;
  machines: { id: string; publicIp: string | null }[];
  machineIps: Record<string, string | null>;
  unplaced: string | null;
  states: UnitStateRecord[];
  lastError: string | null;
}

export function formatStatus(s: StatusReply, full: boolean): string {
  const ip = new Map(Object.entries(s.machineIps));
  const lines = [`● ${s.unit.name}${s.description ? ` - ${s.description}` : ""}`];
  lines.push(`   Desired: ${s.unit.desiredState} (version ${s.unit.version}, hash ${full ? s.unit.hash : s.unit.hash.slice(0, 7)}, updated ${new Date(s.unit.updatedAt).toISOString()})`);
  lines.push(`     State: ${s.global ? "-" : s.currentState}`);
  let target: string;
  if (s.global) {
    if (s.machines.length) target = `global (${s.machines.map((m) => legend(m.id, m.publicIp, full)).join(", ")})`;
    else target = s.unplaced ? `global, not placed: ${s.unplaced}` : "global (no machine yet)";
  }
  else if (s.target) target = legend(s.target, ip.get(s.target), full);
  else if (s.unplaced) target = `not placed: ${s.unplaced}`;
  else target = s.unit.desiredState === "inactive" ? "- (inactive units are not placed)" : "- (not placed yet)";
  lines.push(`    Target: ${target}`);
  if (s.states.length === 0) lines.push(`  Machines: no machine reports this unit`);
  for (const st of s.states) {
    let t = `  ${legend(st.machineId, ip.get(st.machineId), full)}: ${st.load} ${st.active} ${st.sub} (task ${st.taskState}) since ${new Date(st.since).toISOString()}`;
    if (st.pid !== undefined) t += ` pid ${st.pid}`;
    if (st.restarts) t += ` restarts ${st.restarts}`;
    if (st.exitCode !== undefined) t += ` exit code ${st.exitCode}`;
    lines.push(t);
  }
  if (s.lastError) lines.push(`Last error: ${s.lastError}`);
  return lines.join("\n") + "\n";
}

/** The daemon-side filters (docs/api.md) from the command line. */
interface FilterFlags {
  machine?: string;
  state?: string;
  desired?: string;
  unplaced?: boolean;
}

function filters(glob: string | undefined, o: FilterFlags): Record<string, unknown> {
  const f: Record<string, unknown> = {};
  if (glob !== undefined) f.glob = glob;
  if (o.machine !== undefined) f.machine = o.machine;
  if (o.state !== undefined) f.state = o.state;
  if (o.desired !== undefined) f.desired = o.desired;
  if (o.unplaced) f.unplaced = true;
  return f;
}

/** list-units --watch: the listing, then every change as it happens, until interrupted. */
async function watchUnits(client: ApiClient, f: Record<string, unknown>, o: ListFlags): Promise<void> {
  let stop = false;
  const quit = () => {
    stop = true;
    void client.close().finally(() => process.exit(0));
  };
  process.once("SIGINT", quit);
  process.once("SIGTERM", quit);
  const known = new Map<string, UnitRow>();
  const keyOf = (unit: string, machine: string) => `${unit} ${machine}`;
  // The cursor before the listing: a change made while it pages is shown again, never lost.
  const list = async (): Promise<string> => {
    const { next } = await client.request<{ next: string }>("watch-units", f);
    known.clear();
    const printer = new RowPrinter(unitColumns, o.json ? { ...o, json: false, ndjson: true } : o);
    for await (const rows of listPages<UnitRow>(client, "list-units", f)) {
      for (const r of rows) known.set(keyOf(r.unit, r.machine), r);
      await printer.rows(rows);
    }
    await printer.end();
    return next;
  };
  let cursor = await list();
  // On stderr: stdout stays the rows alone (a pipe, --ndjson).
  process.stderr.write("-- watching for changes (Ctrl-C to stop)\n");
  const changes = new RowPrinter<{ change: string; row: UnitRow }>(
    [{ header: "CHANGE", value: (r) => r.change }, ...unitColumns.map((c) => ({ header: c.header, value: (r: { row: UnitRow }, full: boolean) => c.value(r.row, full) }))],
    { ...o, legend: false, fields: o.fields ? `change,${o.fields}` : o.fields },
  );
  await followWatch<UnitRow>(
    client,
    f,
    cursor,
    async (events) => {
      if (o.json || o.ndjson) return out(events.map((e) => JSON.stringify(e) + "\n").join(""));
      const rows: { change: string; row: UnitRow }[] = [];
      for (const e of events) {
        const k = keyOf(e.unit, e.machine);
        const had = known.get(k);
        if (e.op === "del") {
          if (!had) continue;
          known.delete(k);
          rows.push({ change: "removed", row: had });
        } else if (e.row) {
          known.set(k, e.row);
          rows.push({ change: had ? "changed" : "added", row: e.row });
        }
      }
      await changes.rows(rows);
    },
    async () => {
      process.stderr.write("watch: this daemon no longer has the changes since the last one seen; listing again\n");
      cursor = await list();
      return cursor;
    },
    () => stop,
  );
}

export const registerUnitListings: CommandRegistrar = (program, globals) => {
  addListingOptions(
    program
      .command("list-unit-files [glob]")
      .description("list the units in the cluster (UNIT HASH DSTATE STATE TARGET), sorted by name; GLOB such as 'web@*' keeps the units it matches")
      .option("--machine <id>", "only units scheduled on (or, global, reported by) this machine")
      .option("--state <state>", "only units in this STATE (inactive, loaded, launched, failed)")
      .option("--desired <state>", "only units with this desired state (inactive, loaded, launched)")
      .option("--unplaced", "only wanted units no machine has"),
    unitFileColumns as Column<never>[],
    "unit,hash,dstate,state,target",
  ).action(async (glob: string | undefined, o: ListFlags & FilterFlags) => {
    const printer = new RowPrinter(unitFileColumns, o);
    await withClient(globals, (client) => printListing(client, "list-unit-files", filters(glob, o), printer));
  });

  addListingOptions(
    program
      .command("list-units [glob]")
      .description("list what the machines report for each unit (UNIT MACHINE ACTIVE SUB), sorted by name; GLOB such as 'web@*' keeps the units it matches")
      .option("--machine <id>", "only what this machine reports")
      .option("--state <state>", "only rows whose ACTIVE, SUB, LOAD or task state is this (failed, running, ...)")
      .option("--watch", "after the listing, print every change as it happens (added, changed, removed) until interrupted"),
    unitColumns as Column<never>[],
    "unit,machine,active,sub",
  ).action(async (glob: string | undefined, o: ListFlags & FilterFlags & { watch?: boolean }) => {
    const printer = new RowPrinter(unitColumns, o);
    await withClient(globals, async (client) => {
      if (o.watch) return watchUnits(client, filters(glob, o), o);
      await printListing(client, "list-units", filters(glob, o), printer);
    });
  });

  program
    .command("cat <unit>")
    .description("print a unit's file exactly as submitted")
    .action(async (unit: string) => {
      await withClient(globals, async (client) => {
        const r = await client.request<{ contents: string }>("cat", { name: unit });
        process.stdout.write(r.contents);
      });
    });

  program
    .command("status <unit>")
    .description("show a unit's desired state, placement and every machine's state of it")
    .option("--json", "print the status as JSON")
    .option("-l, --full", "do not shorten hashes and machine IDs")
    .action(async (unit: string, o: { json?: boolean; full?: boolean }) => {
      await withClient(globals, async (client) => {
        const s = await client.request<StatusReply>("status", { name: unit });
        process.stdout.write(o.json ? JSON.stringify(s, null, 2) + "\n" : formatStatus(s, Boolean(o.full)));
      });
    });
};
