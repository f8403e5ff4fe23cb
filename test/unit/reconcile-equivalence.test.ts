// Issue 10: the indexed filters (scheduler.ts, glob-index.ts) and the sliced pass
// (reconcileSliced) must decide exactly what the reconciler decided before them
// (reconcile-oracle.ts, a frozen copy): the same actions, in the same order, with the same
// reasons and refusals, on seeded random clusters that mix every constraint and relation:
// MachineID (full and short), MachineMetadata (plain, ">=", "!="), MachineOf, Conflicts and
// Replaces (exact, prefix and other globs, malformed ones), Global units with arrivals,
// CPU/memory, paused and draining machines, lost machines, duplicate and stale placements,
// invalid and inactive units. Several rounds each, fed back as the engine would.
import { describe, expect, it } from "vitest";
import { reconcile, reconcileSliced, type ReconcileInput } from "../../src/engine/reconciler.js";
import { reconcile as oracle } from "./reconcile-oracle.js";
import { cluster, next } from "./random-clusters.js";
import { NO_FLEET_OPTIONS, type EngineMachine, type EngineUnit, type Placement } from "../../src/engine/model.js";
import type { FleetOptions } from "../../src/unit/types.js";
import { prng } from "../helpers/prng.js";

const rng = prng;

describe("the indexed reconciler against the frozen one", () => {
  it("decides exactly the same on 600 seeded random clusters, over 3 rounds each", () => {
    let actions = 0;
    for (let seed = 1; seed <= 600; seed++) {
      let input = cluster(seed);
      for (let round = 0; round < 3; round++) {
        const want = oracle(input);
        const got = reconcile(input);
        expect(got, `seed ${seed} round ${round}`).toEqual(want);
        actions += want.length;
        input = next(input, want);
      }
    }
    // The clusters are not trivial: they make the reconciler act.
    expect(actions).toBeGreaterThan(5000);
  });

  it("the sliced pass decides the same, also when every slice is cut short", async () => {
    for (let seed = 1; seed <= 150; seed++) {
      const input = cluster(seed);
      const want = oracle(input);
      expect(await reconcileSliced(input, { sliceMs: 0 }), `seed ${seed}`).toEqual(want);
      expect(await reconcileSliced(input, { sliceMs: 20 }), `seed ${seed}`).toEqual(want);
    }
  });

  it("decides the same at scale: 3,000 units in Conflicts groups, MachineOf followers and metadata onto 60 machines", () => {
    const r = rng(42);
    const machines = new Map<string, EngineMachine>();
    for (let i = 0; i < 60; i++) {
      const id = `m${String(i).padStart(3, "0")}`;
      machines.set(id, { id, metadata: { region: ["a", "b", "c"][i % 3]!, disk: i % 2 ? "ssd" : "hdd" }, capacity: { cpu: 8, memory: 2 ** 34 }, availability: i === 7 ? "pause" : "active" });
    }
    const units = new Map<string, EngineUnit>();
    for (let i = 0; i < 3000; i++) {
      const g = `g${Math.floor(i / 10)}`;
      const f: FleetOptions = { machineOf: [], machineMetadata: {}, conflicts: [], global: false, replaces: [] };
      if (r() < 0.4) f.conflicts.push(`${g}-*`);
      if (i % 10 >= 5 && r() < 0.3) f.machineOf.push(`${g}-${i % 10 - 5}.service`);
      if (r() < 0.4) f.machineMetadata.region = [["a", "b", "c"][Math.floor(r() * 3)]!];
      if (r() < 0.1) f.machineMetadata.disk = ["ssd"];
      if (r() < 0.05) f.cpu = 0.5;
      units.set(`${g}-${i % 10}.service`, { name: `${g}-${i % 10}.service`, hash: "h", desiredState: "launched", contents: "", fleet: f });
    }
    let input: ReconcileInput = { units, placements: [], machines, unplaced: new Map() };
    for (let round = 0; round < 2; round++) {
      const want = oracle(input);
      expect(reconcile(input)).toEqual(want);
      input = next(input, want);
    }
  });
});
