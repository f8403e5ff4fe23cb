// fleetctl's read-only unit verbs: list-unit-files (UNIT HASH DSTATE STATE TARGET), list-units
// (UNIT MACHINE ACTIVE SUB), cat UNIT (exactly the submitted file), status UNIT.
import type { CommandRegistrar } from "./main.js";
import { withClient } from "./client.js";
import { addListingOptions, renderListing, type Column, type ListFlags } from "./table.js";
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

export const registerUnitListings: CommandRegistrar = (program, globals) => {
  addListingOptions(
    program.command("list-unit-files").description("list the units in the cluster (UNIT HASH DSTATE STATE TARGET), sorted by name"),
    unitFileColumns as Column<never>[],
    "unit,hash,dstate,state,target",
  ).action(async (o: ListFlags) => {
    await withClient(globals, async (client) => {
      const rows = await client.request<UnitFileRow[]>("list-unit-files", {});
      rows.sort((a, b) => (a.unit < b.unit ? -1 : a.unit > b.unit ? 1 : 0));
      process.stdout.write(renderListing(rows, unitFileColumns, o));
    });
  });

  addListingOptions(
    program.command("list-units").description("list what the machines report for each unit (UNIT MACHINE ACTIVE SUB), sorted by name"),
    unitColumns as Column<never>[],
    "unit,machine,active,sub",
  ).action(async (o: ListFlags) => {
    await withClient(globals, async (client) => {
      const rows = await client.request<UnitRow[]>("list-units", {});
      process.stdout.write(renderListing(rows, unitColumns, o));
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
