// Kills StrykerJS survivors in src/engine/scheduler.ts (docs/mutation.md): reservations add up
// over several units, and a unit moved off a machine frees its place for the next choice.
import { describe, expect, it } from "vitest";
import { reconcile } from "../../src/engine/reconciler.js";
import type { Action, EngineMachine, EngineUnit, Placement } from "../../src/engine/model.js";
import type { FleetOptions } from "../../src/unit/types.js";

const GiB = 2 ** 30;
function unit(name: string, fleet: Partial<FleetOptions> = {}): EngineUnit {
  return {
    name,
    hash: "h-" + name,
    desiredState: "launched",
    contents: "",
    fleet: { machineOf: [], machineMetadata: {}, conflicts: [], global: false, replaces: [], ...fleet },
  };
}
const machine = (id: string, memory = 8 * GiB, cpu = 4): EngineMachine => ({ id, metadata: {}, capacity: { cpu, memory }, availability: "active" });
const at = (u: EngineUnit, machineId: string): Placement => ({ unit: u.name, machineId, hash: u.hash, desiredState: u.desiredState });
function run(units: EngineUnit[], machines: EngineMachine[], placements: Placement[] = []): Action[] {
  return reconcile({
    units: new Map(units.map((u) => [u.name, u])),
    machines: new Map(machines.map((m) => [m.id, m])),
    placements,
    unplaced: new Map(),
  });
}
const moves = (actions: Action[]) => actions.map((a) => `${a.type} ${a.unit}${"machineId" in a ? " " + a.machineId : ""}`);

describe("scheduler: reservations and loads over a round", () => {
  it("memory reservations add up: a third 3 GiB unit does not fit in what two left of 8 GiB", () => {
    const us = ["a", "b", "c"].map((n) => unit(`${n}.service`, { memoryBytes: 3 * GiB }));
    const actions = run(us, [machine("m1")]);
    expect(moves(actions)).toEqual(["schedule a.service m1", "schedule b.service m1", "unplaced c.service"]);
    expect(actions[2]!.reason).toMatch(/^1 machine lacks 3G free memory$/);
  });

  it("memory already placed counts too", () => {
    const placed = unit("p.service", { memoryBytes: 6 * GiB });
    const next = unit("q.service", { memoryBytes: 3 * GiB });
    expect(moves(run([placed, next], [machine("m1"), machine("m2")], [at(placed, "m1")]))).toEqual(["schedule q.service m2"]);
  });

  it("CPU reservations add up the same way", () => {
    const us = ["a", "b", "c"].map((n) => unit(`${n}.service`, { cpu: 1.5 }));
    expect(moves(run(us, [machine("m1")]))).toEqual(["schedule a.service m1", "schedule b.service m1", "unplaced c.service"]);
  });

  it("a unit moved off a machine lowers that machine's load for the units placed after it", () => {
    // a sits on m1 but now wants m2: it leaves m1 (load 0 again) and goes to m2 (load 1);
    // the plain unit b then takes m1.
    const a = unit("a.service", { machineId: "m2" });
    const b = unit("b.service");
    const actions = run([a, b], [machine("m1"), machine("m2")], [at(a, "m1")]);
    expect(actions.filter((x) => x.type === "schedule")).toEqual([
      { type: "schedule", unit: "a.service", machineId: "m2", reason: "MachineID=m2" },
      { type: "schedule", unit: "b.service", machineId: "m1", reason: "least loaded (0 units before)" },
    ]);
  });

  it("a unit moved off a machine frees its memory there", () => {
    const a = unit("a.service", { machineId: "m2", memoryBytes: 6 * GiB });
    const b = unit("b.service", { memoryBytes: 6 * GiB, cpu: 1 });
    const actions = run([a, b], [machine("m1"), machine("m2")], [at(a, "m1")]);
    expect(actions.filter((x) => x.type === "schedule").map((x) => [x.unit, "machineId" in x ? x.machineId : ""])).toEqual([
      ["a.service", "m2"],
      ["b.service", "m1"],
    ]);
  });
});
