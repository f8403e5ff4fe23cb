import { describe, expect, it } from "vitest";
import { decide } from "../../src/unit/transitions.js";
import type { DesiredState, UnitRecord } from "../../src/protocol/messages.js";
import { FlotillaError } from "../../src/protocol/errors.js";

const rec = (desiredState: DesiredState, hash = "a".repeat(40)): UnitRecord => ({
  name: "hello.service",
  contents: "[Service]\nExecStart=/bin/true\n",
  hash,
  desiredState,
  version: 3,
  createdAt: 1,
  updatedAt: 2,
});
const NEW = { name: "hello.service", contents: "[Service]\nExecStart=/bin/false\n", hash: "b".repeat(40) };

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return e instanceof FlotillaError ? e.code : "thrown";
  }
  return "ok";
}

describe("decide: desired state per verb (fleet's setTargetStateOfUnits)", () => {
  const table: [verb: "submit" | "load" | "start" | "stop" | "unload", from: DesiredState, to: DesiredState | "none"][] = [
    ["submit", "inactive", "none"],
    ["submit", "loaded", "none"],
    ["submit", "launched", "none"],
    ["load", "inactive", "loaded"],
    ["load", "loaded", "none"],
    ["load", "launched", "loaded"],
    ["start", "inactive", "launched"],
    ["start", "loaded", "launched"],
    ["start", "launched", "none"],
    ["stop", "launched", "loaded"],
    ["stop", "loaded", "none"],
    ["unload", "launched", "inactive"],
    ["unload", "loaded", "inactive"],
    ["unload", "inactive", "none"],
  ];
  it.each(table)("%s from %s -> %s", (verb, from, to) => {
    const d = decide(verb, rec(from), { name: "hello.service", replace: false });
    if (to === "none") expect(d.action).toBe("none");
    else expect(d).toMatchObject({ action: "put", desiredState: to, hash: "a".repeat(40) });
  });

  it("creates with submit inactive, load loaded, start launched", () => {
    expect(decide("submit", undefined, { ...NEW, replace: false })).toMatchObject({ action: "put", desiredState: "inactive" });
    expect(decide("load", undefined, { ...NEW, replace: false })).toMatchObject({ action: "put", desiredState: "loaded" });
    expect(decide("start", undefined, { ...NEW, replace: false })).toMatchObject({ action: "put", desiredState: "launched" });
  });

  it("refuses unknown units and a stop of an inactive unit", () => {
    for (const verb of ["stop", "unload", "destroy"] as const) {
      expect(code(() => decide(verb, undefined, { name: "x.service", replace: false }))).toBe("unknown_unit");
    }
    expect(code(() => decide("start", undefined, { name: "x.service", replace: false }))).toBe("unknown_unit");
    expect(code(() => decide("stop", rec("inactive"), { name: "hello.service", replace: false }))).toBe("illegal_state_change");
    expect(decide("destroy", rec("launched"), { name: "hello.service", replace: false })).toEqual({ action: "delete" });
  });
});

describe("decide: --replace rules (fleetctl's checkReplaceUnitState)", () => {
  // fleetctl's rules, written out literally (not read back from REPLACE_ALLOWED): submit
  // replaces only an inactive unit, load an inactive or loaded one, start any.
  const RULES: [verb: "submit" | "load" | "start", from: DesiredState, allowed: boolean][] = [
    ["submit", "inactive", true],
    ["submit", "loaded", false],
    ["submit", "launched", false],
    ["load", "inactive", true],
    ["load", "loaded", true],
    ["load", "launched", false],
    ["start", "inactive", true],
    ["start", "loaded", true],
    ["start", "launched", true],
  ];
  it.each(RULES)("%s --replace over a %s unit: allowed %s", (verb, from, allowed) => {
    if (!allowed) {
      expect(code(() => decide(verb, rec(from), { ...NEW, replace: true }))).toBe("illegal_state_change");
      return;
    }
    const d = decide(verb, rec(from), { ...NEW, replace: true });
    expect(d).toMatchObject({ action: "put", contents: NEW.contents, hash: NEW.hash });
  });
  it("without --replace keeps the cluster's file and warns", () => {
    const d = decide("start", rec("loaded"), { ...NEW, replace: false });
    expect(d).toMatchObject({ action: "put", desiredState: "launched", hash: "a".repeat(40) });
    expect((d as { warning?: string }).warning).toMatch(/differs.*--replace/);
    const s = decide("submit", rec("launched"), { ...NEW, replace: false });
    expect(s.action).toBe("none");
  });
  it("the same contents with --replace change nothing, whatever the state", () => {
    expect(decide("submit", rec("launched"), { name: "hello.service", contents: "x", hash: "a".repeat(40), replace: true }).action).toBe("none");
  });
});
