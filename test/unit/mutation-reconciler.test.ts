// Kills StrykerJS survivors in src/engine/reconciler.ts (docs/mutation.md): the reason of each
// action, the order of unschedules, duplicates found in stream order, MachineOf followers placed
// after the others, Replaces evictions, and when unplaced reasons are written or cleared.
import { describe, expect, it } from "vitest";
import { reconcile } from "../../src/engine/reconciler.js";
import type { Action, EngineMachine, EngineUnit, Placement } from "../../src/engine/model.js";
import type { FleetOptions } from "../../src/unit/types.js";

function unit(name: string, fleet: Partial<FleetOptions> = {}, o: Partial<EngineUnit> = {}): EngineUnit {
  return {
    name,
    hash: "h-" + name,
    desiredState: "launched",
    contents: "",
    fleet: { machineOf: [], machineMetadata: {}, conflicts: [], global: false, replaces: [], ...fleet },
    ...o,
  };
}
const machine = (id: string): EngineMachine => ({ id, metadata: {}, capacity: { cpu: 4, memory: 2 ** 33 }, availability: "active" });
const at = (u: EngineUnit, machineId: string, o: Partial<Placement> = {}): Placement => ({
  unit: u.name,
  machineId,
  hash: u.hash,
  desiredState: u.desiredState,
  ...o,
});
function run(units: EngineUnit[], machines: string[], placements: Placement[] = [], unplaced: [string, string][] = []): Action[] {
  return reconcile({
    units: new Map(units.map((u) => [u.name, u])),
    machines: new Map(machines.map((id) => [id, machine(id)])),
    placements,
    unplaced: new Map(unplaced),
  });
}

describe("reconcile: reasons and order", () => {
  it("unschedules the entry of a unit whose file became invalid, saying why", () => {
    const bad = unit("bad.service", {}, { invalid: "line 3: nonsense" });
    expect(run([bad], ["m1"], [at(bad, "m1")])).toEqual([
      { type: "unschedule", unit: "bad.service", machineId: "m1", reason: "unit file is invalid: line 3: nonsense" },
      { type: "unplaced", unit: "bad.service", reason: "unit file is invalid: line 3: nonsense" },
    ]);
  });

  it("a duplicate seen in stream order keeps the unit on the first machine by ID, and still judges every other entry", () => {
    const a = unit("a.service");
    const b = unit("b.service");
    const gone = unit("gone.service");
    const actions = run([a, b], ["m1", "m2"], [at(a, "m2"), at(b, "m2"), at(a, "m1"), at(gone, "m1")]);
    expect(actions).toEqual([
      { type: "unschedule", unit: "a.service", machineId: "m2", reason: "duplicate placement: kept on m1" },
      { type: "unschedule", unit: "gone.service", machineId: "m1", reason: "unit no longer exists" },
    ]);
  });

  it("unschedules in name order, then by machine", () => {
    const units = ["c", "a", "b"].map((n) => unit(`${n}.service`, {}, { desiredState: "inactive" }));
    const placements = [at(units[0]!, "m2"), at(units[0]!, "m1"), at(units[1]!, "m1"), at(units[2]!, "m1")];
    expect(run(units, ["m1", "m2"], placements).map((a) => `${a.type} ${a.unit} ${"machineId" in a ? a.machineId : ""}`)).toEqual([
      "unschedule a.service m1",
      "unschedule b.service m1",
      "unschedule c.service m1",
      "unschedule c.service m2",
    ]);
  });

  it("a rewrite says whether the unit file or the desired state changed", () => {
    const a = unit("a.service");
    const b = unit("b.service");
    expect(run([a, b], ["m1"], [at(a, "m1", { hash: "h-old", desiredState: "loaded" }), at(b, "m1", { desiredState: "loaded" })])).toEqual([
      { type: "update", unit: "a.service", machineId: "m1", reason: "unit file changed" },
      { type: "update", unit: "b.service", machineId: "m1", reason: "desired state is now launched" },
    ]);
  });

  it("places in name order, MachineOf followers after every other unit, and says why each went where", () => {
    const follower = unit("a-follower.service", { machineOf: ["z.service", "y.service"] });
    const pinned = unit("p.service", { machineId: "m2" });
    const y = unit("y.service", { machineId: "m1" });
    const z = unit("z.service", { machineId: "m1" });
    const c = unit("c.service");
    const b = unit("b.service");
    expect(run([follower, pinned, y, z, c, b], ["m1", "m2"]).map((a) => [a.unit, "machineId" in a ? a.machineId : "", a.reason])).toEqual([
      ["b.service", "m1", "least loaded (0 units before)"],
      ["c.service", "m2", "least loaded (0 units before)"],
      ["p.service", "m2", "MachineID=m2"],
      ["y.service", "m1", "MachineID=m1"],
      ["z.service", "m1", "MachineID=m1"],
      ["a-follower.service", "m1", "MachineOf=z.service,y.service"],
    ]);
  });

  it("a Replaces winner evicts the replaced unit, whose rewrite is dropped and which is placed again elsewhere", () => {
    const old = unit("old.service");
    const winner = unit("new.service", { replaces: ["old.service"], machineId: "m1" });
    const actions = run([old, winner], ["m1", "m2"], [at(old, "m1", { desiredState: "loaded" })]);
    expect(actions).toEqual([
      { type: "unschedule", unit: "old.service", machineId: "m1", reason: "replaced by new.service" },
      { type: "schedule", unit: "new.service", machineId: "m1", reason: "MachineID=m1" },
      { type: "schedule", unit: "old.service", machineId: "m2", reason: "least loaded (0 units before)" },
    ]);
  });

  it("a unit replaced by two winners is moved, then left unplaced, not placed over and over", () => {
    const old = unit("old.service");
    const w1 = unit("w1.service", { replaces: ["old.service"] });
    const w2 = unit("w2.service", { replaces: ["old.service"] });
    const actions = run([old, w1, w2], ["m1", "m2"], [at(old, "m1")]);
    const moves = actions.filter((a) => a.unit === "old.service");
    expect(moves.filter((a) => a.type === "schedule").length).toBeLessThanOrEqual(1);
    expect(actions.filter((a) => a.type === "schedule").map((a) => a.unit).sort()).toEqual(
      [...new Set(actions.filter((a) => a.type === "schedule").map((a) => a.unit))].sort(),
    );
  });

  it("writes an unplaced reason only when it changed, and clears one saying why", () => {
    const stuck = unit("stuck.service", { machineId: "nowhere1" });
    const placed = unit("placed.service");
    const off = unit("off.service", {}, { desiredState: "inactive" });
    const first = run([stuck, placed, off], ["m1"]);
    const reason = first.find((a) => a.type === "unplaced")!.reason;
    const again = run([stuck, placed, off], ["m1"], [at(placed, "m1")], [
      ["stuck.service", reason],
      ["placed.service", "old reason"],
      ["off.service", "old reason"],
      ["gone.service", "old reason"],
    ]);
    expect(again.filter((a) => a.type === "unplaced" || a.type === "clear-unplaced")).toEqual([
      { type: "clear-unplaced", unit: "placed.service", reason: "placed on m1" },
      { type: "clear-unplaced", unit: "off.service", reason: "no longer needs a place" },
      { type: "clear-unplaced", unit: "gone.service", reason: "no longer needs a place" },
    ]);
    const changed = run([stuck], ["m1"], [], [["stuck.service", "something else"]]);
    expect(changed).toHaveLength(1);
    expect(changed[0]).toMatchObject({ type: "unplaced", unit: "stuck.service", reason });
  });
});
