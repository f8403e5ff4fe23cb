// Kills StrykerJS survivors in src/unit/validate.ts (docs/mutation.md): the field each rule
// names for the API, and the line it points at when only one of the two options has a line.
import { describe, expect, it } from "vitest";
import { validateFleetOptions } from "../../src/unit/validate.js";
import type { FleetLines } from "../../src/unit/fleet-options.js";
import type { FleetOptions } from "../../src/unit/types.js";
import { FlotillaError } from "../../src/protocol/errors.js";

const fleet = (o: Partial<FleetOptions>): FleetOptions => ({ machineOf: [], machineMetadata: {}, conflicts: [], global: false, replaces: [], ...o });

function refusal(f: FleetOptions, lines: FleetLines = {}): FlotillaError {
  try {
    validateFleetOptions("u.service", f, lines);
  } catch (e) {
    expect(e).toBeInstanceOf(FlotillaError);
    return e as FlotillaError;
  }
  throw new Error("expected invalid_unit_file");
}

describe("validateFleetOptions: field and line of each rule", () => {
  it.each<[string, Partial<FleetOptions>, string]>([
    ["MachineOf matches Conflicts", { machineOf: ["db.service"], conflicts: ["db*"] }, "MachineOf"],
    ["MachineOf matches Replaces", { machineOf: ["db.service"], replaces: ["db*"] }, "MachineOf"],
    ["MachineOf names itself", { machineOf: ["u.service"] }, "MachineOf"],
    ["MachineID with MachineOf", { machineId: "m1", machineOf: ["db.service"] }, "MachineOf"],
    ["MachineID with Conflicts", { machineId: "m1", conflicts: ["x*"] }, "Conflicts"],
    ["MachineID with Global", { machineId: "m1", global: true }, "Global"],
    ["MachineID with Replaces", { machineId: "m1", replaces: ["x*"] }, "Replaces"],
    ["Global with MachineOf", { global: true, machineOf: ["db.service"] }, "MachineOf"],
    ["Global with Replaces", { global: true, replaces: ["x*"] }, "Replaces"],
    ["Conflicts with Replaces", { conflicts: ["a*"], replaces: ["b*"] }, "Replaces"],
  ])("%s: field %s", (_rule, o, field) => {
    const e = refusal(fleet(o));
    expect(e).toMatchObject({ code: "invalid_unit_file", field, line: undefined });
    expect(e.message).toMatch(/^\[X-Fleet\] /);
  });

  it("points at the one line known when the other option's line is unknown", () => {
    const both = fleet({ conflicts: ["a*"], replaces: ["b*"] });
    expect(refusal(both, { conflicts: 7 })).toMatchObject({ line: 7 });
    expect(refusal(both, { replaces: 9 })).toMatchObject({ line: 9 });
    expect(refusal(both, { conflicts: 7, replaces: 9 })).toMatchObject({ line: 9 });
    expect(refusal(both, { conflicts: 12, replaces: 9 }).message).toBe("line 12: [X-Fleet] Conflicts cannot be used with Replaces");
  });
});
