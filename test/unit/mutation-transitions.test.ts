// Kills StrykerJS survivors in src/unit/transitions.ts (docs/mutation.md): what each refusal
// says (code, field, value, message) and which inputs count as "a unit file was given".
import { describe, expect, it } from "vitest";
import { decide, REPLACE_ALLOWED, type UnitInput } from "../../src/unit/transitions.js";
import type { DesiredState, UnitRecord } from "../../src/protocol/messages.js";
import { FlotillaError } from "../../src/protocol/errors.js";

const OLD = "1234567" + "a".repeat(33);
const NEWH = "89abcde" + "b".repeat(33);
const rec = (desiredState: DesiredState, hash = OLD): UnitRecord => ({
  name: "web.service",
  contents: "[Service]\nExecStart=/bin/true\n",
  hash,
  desiredState,
  version: 1,
  createdAt: 1,
  updatedAt: 1,
});
const given: UnitInput = { name: "web.service", contents: "[Service]\nExecStart=/bin/false\n", hash: NEWH, replace: false };

function refusal(fn: () => unknown): FlotillaError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(FlotillaError);
    return e as FlotillaError;
  }
  throw new Error("expected a FlotillaError");
}

describe("decide: refusals say what to do", () => {
  it.each(["stop", "unload", "destroy"] as const)("%s of a missing unit is unknown_unit, field units", (verb) => {
    const e = refusal(() => decide(verb, undefined, given));
    expect(e).toMatchObject({ code: "unknown_unit", field: "units", value: "web.service" });
    expect(e.message).toBe("unit web.service does not exist in the cluster");
  });

  it.each<[string, Partial<UnitInput>]>([
    ["no contents", { contents: undefined }],
    ["no hash", { hash: undefined }],
    ["neither", { contents: undefined, hash: undefined }],
  ])("creating a missing unit without a full unit file (%s) is unknown_unit", (_what, o) => {
    const e = refusal(() => decide("start", undefined, { ...given, ...o }));
    expect(e).toMatchObject({ code: "unknown_unit", field: "units", value: "web.service" });
    expect(e.message).toBe("unit web.service does not exist in the cluster and no unit file was given for it");
  });

  it("stop of an inactive unit says to load or start it", () => {
    const e = refusal(() => decide("stop", rec("inactive"), given));
    expect(e).toMatchObject({ code: "illegal_state_change", field: "units", value: "web.service" });
    expect(e.message).toBe("cannot stop web.service: it is inactive (not loaded); load or start it first");
  });

  it("a refused --replace names the allowed states and the verb to use instead", () => {
    const submit = refusal(() => decide("submit", rec("loaded"), { ...given, replace: true }));
    expect(submit).toMatchObject({ code: "illegal_state_change", field: "units", value: "web.service" });
    expect(submit.message).toBe(
      "cannot replace web.service: it is loaded, and submit --replace replaces only a unit that is inactive " +
        "(use load --replace or start --replace, or stop/unload it first)",
    );
    const load = refusal(() => decide("load", rec("launched"), { ...given, replace: true }));
    expect(load.message).toBe(
      "cannot replace web.service: it is launched, and load --replace replaces only a unit that is inactive or loaded " +
        "(use start --replace, or stop/unload it first)",
    );
  });

  it("REPLACE_ALLOWED is fleetctl's table", () => {
    expect(REPLACE_ALLOWED).toEqual({ submit: ["inactive"], load: ["inactive", "loaded"], start: ["inactive", "loaded", "launched"] });
    expect(decide("start", rec("launched"), { ...given, replace: true })).toMatchObject({ action: "put", hash: NEWH });
    expect(decide("load", rec("loaded"), { ...given, replace: true })).toMatchObject({ action: "put", hash: NEWH });
    expect(decide("submit", rec("inactive"), { ...given, replace: true })).toMatchObject({ action: "put", hash: NEWH });
  });
});

describe("decide: a differing unit file", () => {
  it("without --replace keeps the cluster's and warns with both short hashes", () => {
    expect(decide("load", rec("inactive"), given)).toEqual({
      action: "put",
      desiredState: "loaded",
      contents: rec("inactive").contents,
      hash: OLD,
      warning:
        "unit web.service in the cluster differs from the given unit file (hash 1234567 vs 89abcde); the cluster's is kept, use --replace to replace it",
    });
  });

  it("is not compared unless both contents and hash were given, nor for a verb that does not create", () => {
    expect(decide("load", rec("loaded"), { ...given, contents: undefined })).toEqual({ action: "none", warning: undefined });
    expect(decide("load", rec("loaded"), { ...given, hash: undefined })).toEqual({ action: "none", warning: undefined });
    expect(decide("load", rec("loaded"), { ...given, contents: undefined, replace: true })).toEqual({ action: "none", warning: undefined });
    expect(decide("stop", rec("loaded"), { ...given, replace: true })).toEqual({ action: "none", warning: undefined });
    expect(decide("unload", rec("loaded"), given)).toMatchObject({ action: "put", desiredState: "inactive", hash: OLD, warning: undefined });
  });
});
