// reconcileAdded() is the engine's shortcut for rounds in which only new units appeared: it must
// give exactly reconcile()'s answer whenever it answers at all, and decline otherwise.
import { describe, expect, it } from "vitest";
import { reconcile, reconcileAdded } from "../../src/engine/reconciler.js";
import type { Action, EngineMachine, EngineUnit, Placement } from "../../src/engine/model.js";
import type { FleetOptions } from "../../src/unit/types.js";

function unit(name: string, fleet: Partial<FleetOptions> = {}, desiredState: EngineUnit["desiredState"] = "launched"): EngineUnit {
  return {
    name,
    hash: "h-" + name,
    desiredState,
    contents: "",
    fleet: { machineOf: [], machineMetadata: {}, conflicts: [], global: false, replaces: [], ...fleet },
  };
}
function machine(id: string, o: Partial<EngineMachine> = {}): EngineMachine {
  return { id, metadata: {}, capacity: { cpu: 4, memory: 8 * 2 ** 30 }, availability: "active", ...o };
}

/** A cluster the last round left right: reconcile run to a fixpoint, its reasons recorded. */
function settled(units: EngineUnit[], machines: EngineMachine[]) {
  const byName = new Map(units.map((u) => [u.name, u]));
  const ms = new Map(machines.map((m) => [m.id, m]));
  const placements = new Map<string, Placement>();
  const unplaced = new Map<string, string>();
  for (let i = 0; i < 10; i++) {
    const actions = reconcile({ units: byName, placements: placements.values(), machines: ms, unplaced });
    if (actions.length === 0) break;
    for (const a of actions) {
      const key = `${"machineId" in a ? a.machineId : ""}.${a.unit}`;
      if (a.type === "unschedule") placements.delete(key);
      else if (a.type === "schedule" || a.type === "update") {
        const u = byName.get(a.unit)!;
        placements.set(key, { unit: u.name, machineId: a.machineId, hash: u.hash, desiredState: u.desiredState });
      } else if (a.type === "unplaced") unplaced.set(a.unit, a.reason);
      else unplaced.delete(a.unit);
    }
  }
  return { units: byName, placements, machines: ms, unplaced };
}

function both(before: EngineUnit[], added: EngineUnit[], machines: EngineMachine[]): { full: Action[]; fast: Action[] | undefined } {
  const s = settled(before, machines);
  for (const u of added) s.units.set(u.name, u);
  const loads = new Map<string, number>();
  const placed = new Set<string>();
  for (const p of s.placements.values()) {
    loads.set(p.machineId, (loads.get(p.machineId) ?? 0) + 1);
    placed.add(p.unit);
  }
  let holders = 0;
  for (const u of s.units.values()) if (u.fleet.conflicts.length || u.fleet.replaces.length) holders++;
  const fast = reconcileAdded({
    units: s.units,
    added: added.map((u) => u.name),
    isPlaced: (n) => placed.has(n),
    loads,
    machines: s.machines,
    unplaced: s.unplaced,
    relationHolders: holders,
  });
  const full = reconcile({ units: s.units, placements: s.placements.values(), machines: s.machines, unplaced: s.unplaced });
  return { full, fast };
}

/** A small deterministic generator, so that a failure names its seed. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

describe("reconcileAdded", () => {
  it("gives reconcile()'s answer for added units, over many random clusters", () => {
    let answered = 0;
    for (let seed = 1; seed <= 200; seed++) {
      const r = rng(seed);
      const machines = Array.from({ length: 1 + Math.floor(r() * 12) }, (_, i) =>
        machine(`m${String(Math.floor(r() * 1000)).padStart(4, "0")}-${i}`, {
          availability: r() < 0.15 ? "pause" : r() < 0.05 ? "drain" : "active",
          metadata: r() < 0.5 ? { region: "eu" } : {},
        }),
      );
      const kinds = (n: string): EngineUnit => {
        const k = r();
        if (k < 0.05) return unit(n, { global: true });
        if (k < 0.1) return unit(n, {}, "inactive");
        if (k < 0.13) return unit(n, { machineMetadata: { region: ["us"] } }); // never placeable
        if (k < 0.16) return unit(n, { machineId: machines[0]!.id });
        return unit(n);
      };
      const before = Array.from({ length: Math.floor(r() * 60) }, (_, i) => kinds(`b${Math.floor(r() * 1e6)}-${i}.service`));
      const added = Array.from({ length: 1 + Math.floor(r() * 40) }, (_, i) => {
        const k = r();
        const n = `a${Math.floor(r() * 1e6)}-${i}.service`;
        return k < 0.05 ? unit(n, { global: true }) : k < 0.1 ? unit(n, {}, "inactive") : unit(n);
      });
      const { full, fast } = both(before, added, machines);
      if (fast === undefined) continue;
      answered++;
      expect(fast, `seed ${seed}`).toEqual(full);
    }
    expect(answered).toBeGreaterThan(150);
  });

  it("places 10,000 added units as reconcile() does, evenly", () => {
    const machines = Array.from({ length: 100 }, (_, i) => machine(`m${String(i).padStart(3, "0")}`));
    const before = Array.from({ length: 2345 }, (_, i) => unit(`old${i}.service`));
    const added = Array.from({ length: 10_000 }, (_, i) => unit(`new${i}.service`));
    const { full, fast } = both(before, added, machines);
    expect(fast).toEqual(full);
    expect(fast!.length).toBe(10_000);
  });

  it("declines when the added units or the cluster call for the full reconcile", () => {
    const ms = [machine("m1"), machine("m2")];
    // a Conflicts/Replaces anywhere could name the new unit
    expect(both([unit("c.service", { conflicts: ["x*"] })], [unit("x1.service")], ms).fast).toBeUndefined();
    expect(both([], [unit("x1.service"), unit("r.service", { replaces: ["x1.service"] })], ms).fast).toBeUndefined();
    // a constrained or invalid new unit
    expect(both([], [unit("x1.service", { machineId: "m2" })], ms).fast).toBeUndefined();
    expect(both([], [unit("x1.service", { cpu: 1 })], ms).fast).toBeUndefined();
    expect(both([], [{ ...unit("x1.service"), invalid: "bad" }], ms).fast).toBeUndefined();
    // an unplaced follower waits for the new unit
    expect(both([unit("f.service", { machineOf: ["x1.service"] })], [unit("x1.service")], ms).fast).toBeUndefined();
    // no active machine: the full reconcile explains why
    expect(both([], [unit("x1.service")], [machine("m1", { availability: "pause" })]).fast).toBeUndefined();
    // an added name that is already placed (a schedule entry older than the unit)
    const s = both([unit("x1.service")], [], ms);
    expect(s.fast).toEqual([]);
    const units = new Map([["x1.service", unit("x1.service")]]);
    expect(
      reconcileAdded({ units, added: ["x1.service"], isPlaced: () => true, loads: new Map(), machines: new Map(ms.map((m) => [m.id, m])), unplaced: new Map(), relationHolders: 0 }),
    ).toBeUndefined();
  });
});
