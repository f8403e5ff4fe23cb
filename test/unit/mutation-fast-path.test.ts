// Kills StrykerJS survivors in src/engine/fast-path.ts (docs/mutation.md): which fresh units it
// takes (only known, plain, valid, not inactive ones, each once) and that it places them in name
// order whatever order they arrived in.
import { describe, expect, it } from "vitest";
import { placeFresh } from "../../src/engine/fast-path.js";
import { NO_FLEET_OPTIONS, type EngineMachine, type EngineUnit } from "../../src/engine/model.js";

const plain = (name: string, o: Partial<EngineUnit> = {}): EngineUnit => ({
  name,
  hash: `h-${name}`,
  desiredState: "launched",
  contents: "",
  fleet: NO_FLEET_OPTIONS,
  ...o,
});
const machine = (id: string): EngineMachine => ({ id, metadata: {}, capacity: { cpu: 4, memory: 2 ** 33 }, availability: "active" });

function place(fresh: string[], units: EngineUnit[], machines = [machine("m1")]) {
  return placeFresh({
    fresh,
    units: new Map(units.map((u) => [u.name, u])),
    loads: new Map(),
    machines: new Map(machines.map((m) => [m.id, m])),
  });
}

describe("placeFresh", () => {
  it("takes only units it knows, plain, valid and not inactive", () => {
    const units = [
      plain("ok.service"),
      plain("bad.service", { invalid: "line 1: nonsense" }),
      plain("off.service", { desiredState: "inactive" }),
      plain("loaded.service", { desiredState: "loaded" }),
      plain("pinned.service", { fleet: { machineOf: [], machineMetadata: {}, conflicts: [], global: false, replaces: [] } }),
    ];
    const names = ["gone.service", ...units.map((u) => u.name)];
    expect(place(names, units)?.map((a) => a.unit)).toEqual(["loaded.service", "ok.service"]);
  });

  it("places each unit once, in name order, whatever order they arrived in", () => {
    const names = ["e", "c", "a", "d", "b", "c", "a"].map((n) => `${n}.service`);
    const actions = place(names, names.map((n) => plain(n)), [machine("m1"), machine("m2")]);
    expect(actions).toEqual([
      { type: "schedule", unit: "a.service", machineId: "m1", reason: "least loaded (0 units before)" },
      { type: "schedule", unit: "b.service", machineId: "m2", reason: "least loaded (0 units before)" },
      { type: "schedule", unit: "c.service", machineId: "m1", reason: "least loaded (1 units before)" },
      { type: "schedule", unit: "d.service", machineId: "m2", reason: "least loaded (1 units before)" },
      { type: "schedule", unit: "e.service", machineId: "m1", reason: "least loaded (2 units before)" },
    ]);
  });

  it("with nothing to place and no active machine, decides nothing rather than giving up", () => {
    expect(place(["off.service"], [plain("off.service", { desiredState: "inactive" })], [])).toEqual([]);
    expect(place(["a.service"], [plain("a.service")], [])).toBeUndefined();
  });
});
