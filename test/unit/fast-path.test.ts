// The engine's fast path (src/engine/fast-path.ts) must decide exactly what the full reconciler
// decides whenever its conditions hold: every known unit plain and placed, the only news new
// plain units. Compared on random clusters.
import { describe, expect, it } from "vitest";
import { reconcile } from "../../src/engine/reconciler.js";
import { machinesSignature, placeFresh } from "../../src/engine/fast-path.js";
import { NO_FLEET_OPTIONS, type EngineMachine, type EngineUnit, type Placement } from "../../src/engine/model.js";
import { prng } from "../helpers/prng.js";

const rng = prng;

const plain = (name: string): EngineUnit => ({ name, hash: `h-${name}`, desiredState: "launched", contents: "", fleet: NO_FLEET_OPTIONS });

describe("the fast path", () => {
  it("decides exactly what reconcile() decides, on 500 random clusters", () => {
    for (let seed = 1; seed <= 500; seed++) {
      const r = rng(seed);
      const machines = new Map<string, EngineMachine>();
      const nm = 1 + Math.floor(r() * 12);
      for (let i = 0; i < nm; i++) {
        const id = `m${Math.floor(r() * 1000).toString(36)}-${i}`;
        const availability = r() < 0.75 ? "active" : "pause";
        machines.set(id, { id, metadata: {}, capacity: { cpu: 4, memory: 2 ** 30 }, availability });
      }
      const ids = [...machines.keys()];
      const units = new Map<string, EngineUnit>();
      const placements: Placement[] = [];
      const loads = new Map<string, number>();
      const placed = Math.floor(r() * 60);
      for (let i = 0; i < placed; i++) {
        const u = plain(`old${Math.floor(r() * 1e6).toString(36)}-${i}.service`);
        units.set(u.name, u);
        const m = ids[Math.floor(r() * ids.length)]!;
        placements.push({ unit: u.name, machineId: m, hash: u.hash, desiredState: u.desiredState });
        loads.set(m, (loads.get(m) ?? 0) + 1);
      }
      const fresh: string[] = [];
      const n = Math.floor(r() * 40);
      for (let i = 0; i < n; i++) {
        const u = plain(`new${Math.floor(r() * 1e4).toString(36)}@${i % 7}.service`);
        units.set(u.name, u);
        fresh.push(u.name);
        if (r() < 0.1) fresh.push(u.name); // seen twice before the round
      }
      const fast = placeFresh({ fresh, units, loads, machines });
      const full = reconcile({ units, placements, machines, unplaced: new Map() });
      if (fast === undefined) {
        // only when no machine takes new units; the full pass then explains, unit by unit
        expect([...machines.values()].some((m) => m.availability === "active"), `seed ${seed}`).toBe(false);
        expect(full.every((a) => a.type === "unplaced"), `seed ${seed}`).toBe(true);
      } else {
        expect(fast, `seed ${seed}`).toEqual(full);
      }
    }
  });

  it("places nothing when nothing is new, and tells machine sets apart", () => {
    const m = (id: string, availability: EngineMachine["availability"] = "active"): EngineMachine => ({ id, metadata: {}, capacity: { cpu: 1, memory: 1 }, availability });
    expect(placeFresh({ fresh: [], units: new Map(), loads: new Map(), machines: new Map([["a", m("a")]]) })).toEqual([]);
    const one = machinesSignature(new Map([["a", m("a")], ["b", m("b")]]));
    expect(machinesSignature(new Map([["a", m("a")], ["b", m("b", "drain")]]))).not.toBe(one);
    expect(machinesSignature(new Map([["a", m("a")]]))).not.toBe(one);
    expect(machinesSignature(new Map([["a", m("a")], ["b", m("b")]]))).toBe(one);
  });
});
