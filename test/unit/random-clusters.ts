// Seeded random clusters that mix every constraint and relation, for the tests that compare
// two ways of deciding (reconcile-equivalence.test.ts, incremental.test.ts): MachineID (full and
// short), MachineMetadata (plain, ">=", "!="), MachineOf, Conflicts and Replaces (exact, prefix
// and other globs, malformed ones), Global units with arrivals, CPU/memory, paused and draining
// machines, lost machines, duplicate and stale placements, invalid and inactive units.
import type { ReconcileInput } from "../../src/engine/reconciler.js";
import { NO_FLEET_OPTIONS, type Action, type EngineMachine, type EngineUnit, type Placement } from "../../src/engine/model.js";
import type { FleetOptions } from "../../src/unit/types.js";
import { prng } from "../helpers/prng.js";

const rng = prng;

export const GROUPS = ["web", "db", "cache", "api"];

export function cluster(seed: number): ReconcileInput {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const machines = new Map<string, EngineMachine>();
  const nm = 1 + Math.floor(r() * 14);
  for (let i = 0; i < nm; i++) {
    const id = `${Math.floor(r() * 0xffff).toString(16).padStart(4, "0")}${i}abcdef`;
    const availability = r() < 0.8 ? "active" : r() < 0.5 ? "pause" : "drain";
    const metadata: Record<string, string> = {};
    if (r() < 0.9) metadata.region = pick(["eu", "us", "ap"]);
    if (r() < 0.7) metadata.disk = pick(["ssd", "hdd"]);
    if (r() < 0.3) metadata.ram = String(Math.floor(r() * 4096));
    machines.set(id, { id, metadata, capacity: { cpu: 1 + Math.floor(r() * 4), memory: (1 + Math.floor(r() * 4)) * 2 ** 30 }, availability });
  }
  const ids = [...machines.keys()];
  const units = new Map<string, EngineUnit>();
  const n = Math.floor(r() * 45);
  const names: string[] = [];
  for (let i = 0; i < n; i++) {
    const g = pick(GROUPS);
    names.push(r() < 0.5 ? `${g}-${i}.service` : `${g}@${i % 5}.service`);
  }
  for (const name of names) {
    if (units.has(name)) continue;
    const f: FleetOptions = { machineOf: [], machineMetadata: {}, conflicts: [], global: false, replaces: [] };
    let plain = true;
    const roll = () => {
      const x = r() < 0.25;
      if (x) plain = false;
      return x;
    };
    if (roll()) f.conflicts.push(pick([`${pick(GROUPS)}-*`, `${pick(GROUPS)}@*.service`, pick(names), `${pick(GROUPS)}@[0-2].service`, "*", "bad[", `${pick(GROUPS)}-?.service`]));
    if (r() < 0.1) f.conflicts.push(`${pick(GROUPS)}*`);
    // One cluster in three is full of Replaces (evictions, and units evicted twice).
    if (r() < (seed % 3 === 0 ? 0.35 : 0.12)) { plain = false; f.replaces.push(pick([pick(names), `${pick(GROUPS)}-*`, `${pick(GROUPS)}@?.service`, `${pick(GROUPS)}*`])); }
    if (roll()) f.machineMetadata.region = r() < 0.7 ? [pick(["eu", "us", "ap"])] : ["eu", "us"];
    if (r() < 0.15) { plain = false; f.machineMetadata.disk = ["ssd"]; }
    if (r() < 0.05) { plain = false; f.machineMetadata["ram>"] = ["1024"]; }
    if (r() < 0.05) { plain = false; f.machineMetadata["region!"] = ["ap"]; }
    if (r() < 0.15) { plain = false; f.machineOf.push(pick(names)); }
    if (r() < 0.05) { plain = false; f.machineOf.push(pick(names)); }
    if (r() < 0.06) { plain = false; const id = pick(ids); f.machineId = r() < 0.5 ? id : id.slice(0, 8); }
    if (r() < 0.02) { plain = false; f.machineId = "nowhere-at-all"; }
    if (r() < 0.1) { plain = false; f.cpu = pick([0.25, 0.5, 1, 2]); }
    if (r() < 0.08) { plain = false; f.memoryBytes = pick([256, 512, 1024, 3072]) * 2 ** 20; }
    if (r() < 0.06) { plain = false; f.global = true; }
    const desiredState = r() < 0.1 ? "inactive" : r() < 0.3 ? "loaded" : "launched";
    const u: EngineUnit = {
      name,
      hash: `h${Math.floor(r() * 3)}`,
      desiredState,
      contents: "",
      fleet: plain && r() < 0.7 ? NO_FLEET_OPTIONS : f,
      ...(r() < 0.03 ? { invalid: "line 3: bad" } : {}),
      ...(r() < 0.9 ? { arrival: Math.floor(r() * 1000) } : {}),
    };
    units.set(name, u);
  }
  const placements: Placement[] = [];
  for (const name of [...units.keys(), "ghost.service"]) {
    if (r() < 0.45) continue;
    const m = r() < 0.08 ? "lost-machine" : pick(ids);
    const u = units.get(name);
    placements.push({ unit: name, machineId: m, hash: r() < 0.8 ? (u?.hash ?? "h0") : "old", desiredState: r() < 0.8 ? (u?.desiredState ?? "launched") : "loaded" });
    if (r() < 0.05) placements.push({ unit: name, machineId: pick(ids), hash: u?.hash ?? "h0", desiredState: u?.desiredState ?? "launched" });
  }
  // Stream order, not name order (the reconciler sorts only when it must).
  for (let i = placements.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [placements[i], placements[j]] = [placements[j]!, placements[i]!];
  }
  const unplaced = new Map<string, string>();
  for (const name of units.keys()) if (r() < 0.15) unplaced.set(name, r() < 0.5 ? "no live machines" : "1 machine is paused");
  return { units, placements, machines, unplaced };
}

/** The next round's input after the writer executed `actions`. */
export function next(input: ReconcileInput, actions: Action[]): ReconcileInput {
  const by = new Map([...input.placements].map((p) => [`${p.unit}\u0000${p.machineId}`, p]));
  const unplaced = new Map(input.unplaced);
  for (const a of actions) {
    const u = input.units.get(a.unit);
    if (a.type === "unschedule") by.delete(`${a.unit}\u0000${a.machineId}`);
    else if ((a.type === "schedule" || a.type === "update") && u) by.set(`${a.unit}\u0000${a.machineId}`, { unit: a.unit, machineId: a.machineId, hash: u.hash, desiredState: u.desiredState });
    else if (a.type === "unplaced") unplaced.set(a.unit, a.reason);
    else if (a.type === "clear-unplaced") unplaced.delete(a.unit);
  }
  return { ...input, placements: [...by.values()], unplaced };
}
