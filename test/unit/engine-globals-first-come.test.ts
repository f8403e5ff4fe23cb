// The engine's side of issue 9: it keeps non-global units off a machine where a conflicting
// global runs, so it must pick the running globals as the agents do, first come, first served
// by arrival (not by name), and it must learn the arrival from the units bucket's entries.
import { describe, expect, it } from "vitest";
import { reconcile } from "../../src/engine/reconciler.js";
import { ClusterViews } from "../../src/engine/views.js";
import { Liveness } from "../../src/engine/liveness.js";
import type { EngineMachine, EngineUnit } from "../../src/engine/model.js";
import { encode } from "../../src/protocol/codec.js";
import { keys } from "../../src/protocol/names.js";
import type { UnitRecord } from "../../src/protocol/messages.js";
import { unitHash } from "../../src/unit/index.js";
import { silentLogger } from "../../src/log.js";
import type { FleetOptions } from "../../src/unit/types.js";

function unit(name: string, fleet: Partial<FleetOptions>, arrival: number): EngineUnit {
  return {
    name,
    hash: "h-" + name,
    desiredState: "launched",
    contents: "",
    fleet: { machineOf: [], machineMetadata: {}, conflicts: [], global: false, replaces: [], ...fleet },
    arrival,
  };
}
const m1: EngineMachine = { id: "m1", metadata: {}, capacity: { cpu: 4, memory: 2 ** 33 }, availability: "active" };

describe("the engine picks the running globals first come, first served", () => {
  // zeta came first; alpha (whose name sorts first) conflicts with it and waits on every agent.
  const zeta = unit("zeta.service", { global: true }, 3);
  const alpha = unit("alpha.service", { global: true, conflicts: ["zeta.service"] }, 7);

  it("a unit that conflicts only with the waiting newcomer is placed beside the global that runs", () => {
    const web = unit("web.service", { conflicts: ["alpha.service"] }, 9);
    const actions = reconcile({ units: new Map([zeta, alpha, web].map((u) => [u.name, u])), machines: new Map([["m1", m1]]), placements: [], unplaced: new Map() });
    expect(actions).toEqual([expect.objectContaining({ type: "schedule", unit: "web.service", machineId: "m1" })]);
  });

  it("a unit that conflicts with the global that runs is not placed, and says so", () => {
    const web = unit("web.service", { conflicts: ["zeta.service"] }, 9);
    const actions = reconcile({ units: new Map([zeta, alpha, web].map((u) => [u.name, u])), machines: new Map([["m1", m1]]), placements: [], unplaced: new Map() });
    expect(actions).toEqual([{ type: "unplaced", unit: "web.service", reason: "1 machine conflicts with zeta.service", refusals: [{ why: "conflicts with zeta.service", count: 1, machines: ["m1"] }] }]);
  });
});

describe("the engine's view learns each unit's arrival from the units bucket", () => {
  const contents = "[Service]\nExecStart=/bin/true\n[X-Fleet]\nGlobal=true\n";
  const rec = (name: string, extra: Partial<UnitRecord> = {}): UnitRecord => ({
    name,
    contents,
    hash: unitHash(contents),
    desiredState: "launched",
    version: 1,
    createdAt: 1,
    updatedAt: 1,
    ...extra,
  });
  const put = (r: UnitRecord, revision: number) => ({ key: keys.unit(r.name), operation: "PUT" as const, value: encode(r), revision });

  it("the pinned activatedRevision, else the entry's revision; a new arrival is a change", () => {
    const v = new ClusterViews(silentLogger, new Liveness(10_000));
    expect(v.onUnit(put(rec("new.service"), 12))).toBe(true);
    expect(v.onUnit(put(rec("old.service", { activatedRevision: 5 }), 20))).toBe(true);
    expect(v.units.get("new.service")?.arrival).toBe(12);
    expect(v.units.get("old.service")?.arrival).toBe(5);
    // The write that pins the arrival it already had changes nothing; a re-created unit does.
    expect(v.onUnit(put(rec("new.service", { activatedRevision: 12, version: 2 }), 13))).toBe(false);
    expect(v.onUnit(put(rec("old.service"), 30))).toBe(true);
    expect(v.units.get("old.service")?.arrival).toBe(30);
  });
});
