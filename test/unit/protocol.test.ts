import { describe, expect, it } from "vitest";
import { keys, Names, escapeUnit, unescapeUnit, isValidUnitName } from "../../src/protocol/names.js";
import { decodeAs, encode } from "../../src/protocol/codec.js";
import { isUnitRecord, MachineRecord, taskStateRank, UnitRecord } from "../../src/protocol/messages.js";
import { FlotillaError } from "../../src/protocol/errors.js";

describe("names and keys", () => {
  it("escapes @ and : in unit names so keys stay within [-/=.\\w]", () => {
    expect(escapeUnit("web@1:a.service")).toBe("web=401=3Aa.service");
    expect(unescapeUnit("web=401=3Aa.service")).toBe("web@1:a.service");
    for (const k of [keys.unit("a@b:c.service"), keys.schedule("m1", "a@b.service"), keys.state("a@b.service", "m1")]) {
      expect(k).toMatch(/^[-/=.\w]+$/);
    }
  });
  it("round-trips schedule and state keys", () => {
    expect(keys.parseSchedule(keys.schedule("abc", "hello@1.service"))).toEqual({ machineId: "abc", unit: "hello@1.service" });
    expect(keys.parseState(keys.state("hello@1.service", "abc"))).toEqual({ machineId: "abc", unit: "hello@1.service" });
    expect(keys.parseSchedule("nodot")).toBeUndefined();
  });
  it("builds subjects and bucket names under the prefix", () => {
    const n = new Names("acme");
    expect(n.bucket("units")).toBe("acme-units");
    expect(n.apiSubject("list-machines")).toBe("acme.api.list-machines");
    expect(n.journalSubject("web@1.service", "m1")).toBe("acme.journal.web=401.service.m1");
    expect(() => new Names("bad prefix")).toThrow(FlotillaError);
  });
  it("validates unit names", () => {
    expect(isValidUnitName("hello@1.service")).toBe(true);
    expect(isValidUnitName("a/b.service")).toBe(false);
    expect(isValidUnitName("a b.service")).toBe(false);
  });
});

describe("codec", () => {
  it("rejects garbage with the source and field named", () => {
    expect(() => decodeAs(MachineRecord, new Uint8Array([0xc1, 0xff]), "machines/x")).toThrow(/machines\/x/);
    try {
      decodeAs(MachineRecord, encode({ id: "m", capacity: { cpu: "x" } }), "machines/m");
      expect.unreachable();
    } catch (e) {
      expect((e as FlotillaError).code).toBe("bad_record");
      expect((e as FlotillaError).message).toMatch(/capacity\.cpu/);
    }
  });
  it("orders task states forward", () => {
    expect(taskStateRank("running")).toBeGreaterThan(taskStateRank("ready"));
    expect(taskStateRank("failed")).toBeGreaterThan(taskStateRank("complete"));
  });
});

import { parseDuration, parseSize } from "../../src/util/measure.js";
describe("durations and sizes", () => {
  it.each([
    ["10", 10_000],
    ["10s", 10_000],
    ["500ms", 500],
    ["1min 30s", 90_000],
    ["2h", 7_200_000],
    ["1.5s", 1_500],
  ])("duration %s = %d ms", (t, ms) => expect(parseDuration(t)).toBe(ms));
  it.each([
    ["256M", 256 * 1024 ** 2],
    ["1.5G", 1.5 * 1024 ** 3],
    ["4096", 4096],
    ["2GiB", 2 * 1024 ** 3],
  ])("size %s = %d bytes", (t, b) => expect(parseSize(t)).toBe(b));
  it("names the field and value of a bad one", () => {
    expect(() => parseDuration("ten seconds", "agent_ttl")).toThrow(/agent_ttl: "ten seconds" is not a duration/);
    expect(() => parseSize("lots", "Memory")).toThrow(/Memory: "lots" is not a size/);
  });
  it("keeps unplaced keys out of every machine's slice", () => {
    expect(keys.unplaced("web@1.service")).toBe("=unplaced.web=401.service");
    expect(keys.parseUnplaced(keys.unplaced("web@1.service"))).toBe("web@1.service");
  });
});

describe("the quick unit record check", () => {
  const good = { name: "a.service", contents: "[Service]\nExecStart=/bin/true\n", hash: "0123456789", desiredState: "launched", version: 1, createdAt: 1, updatedAt: 2 };
  const bad: unknown[] = [1, 2.5, -1, Number.NaN, Infinity, "1", null, undefined, true, "", "x", [], {}, 2 ** 60, "0123456"];
  const variants: unknown[] = [good, null, 3, "str", [good], { ...good, extra: 1 }];
  for (const field of Object.keys(good)) {
    const { [field]: _dropped, ...without } = good as Record<string, unknown>;
    variants.push(without);
    for (const v of bad) variants.push({ ...good, [field]: v });
  }
  for (const s of ["loaded", "inactive", "LAUNCHED", "running"]) variants.push({ ...good, desiredState: s });

  it("passes only what the schema accepts, and accepts a well-formed record", () => {
    expect(isUnitRecord(good)).toBe(true);
    for (const v of variants) {
      if (isUnitRecord(v)) expect(UnitRecord.safeParse(v).success, JSON.stringify(v)).toBe(true);
    }
    // and it is not a check that passes nothing: every field is checked, each way it can be wrong
    const rejected = variants.filter((v) => !isUnitRecord(v)).length;
    const schemaRejected = variants.filter((v) => !UnitRecord.safeParse(v).success).length;
    expect(rejected).toBe(schemaRejected);
  });

  it("leaves the explanation of a bad record to the schema", () => {
    expect(() => decodeAs(UnitRecord, encode({ ...good, hash: "abc" }), "units/a.service", isUnitRecord)).toThrow(
      /units\/a\.service: field hash/,
    );
  });
});
