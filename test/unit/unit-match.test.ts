import { describe, expect, it } from "vitest";
import {
  chooseGlobals,
  conflictReason,
  conflictsWith,
  explainMetadata,
  formatMetadata,
  formatMissing,
  globMatch,
  isGlobal,
  isValidGlob,
  matchesMetadata,
  parseUnitFile,
  replaces,
} from "../../src/unit/index.js";
import { arrivalOf } from "../../src/unit/match.js";

describe("machine metadata (values of one key OR'ed, keys AND'ed)", () => {
  const machine = { region: "us-west", disk: "ssd", role: "web" };
  it.each<[string, Record<string, string[]>, boolean]>([
    ["nothing required", {}, true],
    ["one matching pair", { region: ["us-west"] }, true],
    ["one of several values", { region: ["us-east", "us-west"] }, true],
    ["no listed value", { region: ["us-east", "eu"] }, false],
    ["two keys, both match", { region: ["us-west"], disk: ["ssd"] }, true],
    ["two keys, one fails", { region: ["us-west"], disk: ["hdd"] }, false],
    ["a key the machine lacks", { gpu: ["yes"] }, false],
    ["values are case-sensitive", { region: ["US-WEST"] }, false],
    ["a key named like an object property", { constructor: ["x"] }, false],
    ["a key with no values is no requirement", { region: [] }, true],
  ])("%s", (_what, required, ok) => {
    expect(matchesMetadata(required, machine)).toBe(ok);
    expect(explainMetadata(required, machine).length === 0).toBe(ok);
  });

  it("explains what a machine lacks, for messages like '3 machines lack region=eu'", () => {
    const missing = explainMetadata({ region: ["eu", "us-east"], disk: ["ssd"], gpu: ["yes"] }, machine);
    expect(missing).toEqual([
      { key: "region", wanted: ["eu", "us-east"], have: "us-west" },
      { key: "gpu", wanted: ["yes"] },
    ]);
    expect(missing.map(formatMissing)).toEqual(["region=eu|us-east", "gpu=yes"]);
    expect(formatMetadata({ region: ["eu", "us"], disk: ["ssd"], none: [] })).toBe("region=eu|us,disk=ssd");
  });

  it.each<[string, Record<string, string>, boolean]>([
    ["ram>=1024", { ram: "2048" }, true],
    ["ram>=1024", { ram: "1024" }, true],
    ["ram>=1024", { ram: "1023" }, false],
    ["ram>=1024", { ram: "lots" }, false],
    ["ram>=1024", {}, false],
    ["ram<=4", { ram: "4" }, true],
    ["ram<=4", { ram: "8" }, false],
    ["region!=us-east", { region: "eu" }, true],
    ["region!=us-east", { region: "us-east" }, false],
    ["region!=us-east", {}, true],
    ["region!=us-east region!=eu", { region: "eu" }, false],
    ["cores>=2 cores<=8 region=eu", { cores: "4", region: "eu" }, true],
    ["cores>=2 cores<=8 region=eu", { cores: "16", region: "eu" }, false],
  ])("fleet's comparison form MachineMetadata=%s on %j -> %s", (line, have, ok) => {
    const u = parseUnitFile("a", `[Service]\nExecStart=/bin/true\n[X-Fleet]\nMachineMetadata=${line}\n`);
    expect(matchesMetadata(u.fleet.machineMetadata, have)).toBe(ok);
    const missing = explainMetadata(u.fleet.machineMetadata, have);
    expect(missing.length === 0).toBe(ok);
    if (!ok) expect(line).toContain(formatMissing(missing[0]!).split("|")[0]!);
  });

  it("works on what the parser produced from repeated lines", () => {
    const u = parseUnitFile("a", "[Service]\nExecStart=/bin/true\n[X-Fleet]\nMachineMetadata=region=eu region=us\nMachineMetadata=disk=ssd\n");
    expect(matchesMetadata(u.fleet.machineMetadata, { region: "us", disk: "ssd" })).toBe(true);
    expect(matchesMetadata(u.fleet.machineMetadata, { region: "us", disk: "hdd" })).toBe(false);
    expect(matchesMetadata(u.fleet.machineMetadata, { region: "ap", disk: "ssd" })).toBe(false);
  });
});

describe("globMatch follows Go's path.Match", () => {
  // From Go's path/match_test.go (the rules fleet's Conflicts= uses).
  it.each<[string, string, boolean]>([
    ["abc", "abc", true],
    ["*", "abc", true],
    ["*c", "abc", true],
    ["a*", "a", true],
    ["a*", "abc", true],
    ["a*", "ab/c", false],
    ["a*/b", "abc/b", true],
    ["a*/b", "a/c/b", false],
    ["a*b*c*d*e*/f", "axbxcxdxe/f", true],
    ["a*b*c*d*e*/f", "axbxcxdxexxx/f", true],
    ["a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false],
    ["a*b*c*d*e*/f", "axbxcxdxexxx/fff", false],
    ["a*b?c*x", "abxbbxdbxebxczzx", true],
    ["a*b?c*x", "abxbbxdbxebxczzy", false],
    ["ab[c]", "abc", true],
    ["ab[b-d]", "abc", true],
    ["ab[e-g]", "abc", false],
    ["ab[^c]", "abc", false],
    ["ab[^b-d]", "abc", false],
    ["ab[^e-g]", "abc", true],
    ["a\\*b", "a*b", true],
    ["a\\*b", "ab", false],
    ["a?b", "a☺b", true],
    ["a[^a]b", "a☺b", true],
    ["a???b", "a☺b", false],
    ["a[^a][^a][^a]b", "a☺b", false],
    ["[a-ζ]*", "α", true],
    ["*[a-ζ]", "A", false],
    ["a?b", "a/b", false],
    ["a*b", "a/b", false],
    ["[\\]a]", "]", true],
    ["[\\-]", "-", true],
    ["[x\\-]", "x", true],
    ["[x\\-]", "-", true],
    ["[x\\-]", "z", false],
    ["[\\-x]", "x", true],
    ["[\\-x]", "-", true],
    ["[\\-x]", "a", false],
    ["*x", "xxx", true],
    // unit names
    ["web@*.service", "web@1.service", true],
    ["web@*.service", "web@.service", true],
    ["web@*.service", "webapp@1.service", false],
    ["web@?.service", "web@10.service", false],
    ["*.service", "anything.service", true],
  ])("%s vs %s -> %s", (pattern, name, ok) => {
    expect(isValidGlob(pattern)).toBe(true);
    expect(globMatch(pattern, name)).toBe(ok);
  });

  it.each(["[]a]", "[-]", "[x-]", "[-x]", "\\", "[a-b-c]", "[", "[^", "[^bc", "a[", ""])(
    "a malformed pattern %j matches nothing and is reported invalid",
    (pattern) => {
      expect(isValidGlob(pattern)).toBe(false);
      expect(globMatch(pattern, "a")).toBe(false);
      expect(globMatch(pattern, "-")).toBe(false);
    },
  );
});

describe("unit relations", () => {
  const unit = (name: string, x: string) => parseUnitFile(name, `[Service]\nExecStart=/bin/true\n[X-Fleet]\n${x}\n`);

  it("a conflict holds when either side declares it, and never with itself", () => {
    const web1 = unit("web@1", "Conflicts=web@*.service");
    const web2 = unit("web@2", "Conflicts=web@*.service");
    const db = unit("db", "Conflicts=backup.service");
    const backup = unit("backup", "");
    expect(conflictsWith(web1, web2)).toBe(true);
    expect(conflictsWith(web1, web1)).toBe(false);
    expect(conflictsWith(web1, db)).toBe(false);
    expect(conflictsWith(db, backup)).toBe(true);
    expect(conflictsWith(backup, db)).toBe(true);
    expect(conflictReason(backup, db)).toBe("db.service conflicts with backup.service (Conflicts=backup.service)");
    expect(conflictReason(web1, db)).toBeUndefined();
  });

  it("works on plain {name, fleet} records, as the engine keeps them", () => {
    expect(conflictsWith({ name: "a.service", fleet: { conflicts: ["b*"] } }, { name: "b1.service", fleet: { conflicts: [] } })).toBe(true);
  });

  it("Replaces matches other units by glob, never the unit itself", () => {
    const neu = unit("new", "Replaces=old*.service");
    expect(replaces(neu, "old.service")).toBe(true);
    expect(replaces(neu, "older.service")).toBe(true);
    expect(replaces(neu, "new.service")).toBe(false);
    expect(replaces(neu, "other.service")).toBe(false);
  });

  it("isGlobal reads Global=", () => {
    expect(isGlobal(unit("g", "Global=true"))).toBe(true);
    expect(isGlobal(unit("n", ""))).toBe(false);
  });
});

describe("chooseGlobals (the agent's and the engine's rule for which globals run on a machine)", () => {
  const g = (name: string, conflicts: string[] = [], machineMetadata: Record<string, string[]> = {}, arrival?: number) => ({
    name,
    fleet: { conflicts, machineMetadata },
    ...(arrival === undefined ? {} : { arrival }),
  });
  /** g() with an arrival (the units-bucket revision the unit came at). */
  const at = (arrival: number, name: string, conflicts: string[] = [], machineMetadata: Record<string, string[]> = {}) =>
    g(name, conflicts, machineMetadata, arrival);
  const u = (name: string, conflicts: string[] = []) => ({ name, fleet: { conflicts } });
  const table: { why: string; globals: ReturnType<typeof g>[]; metadata?: Record<string, string>; here?: ReturnType<typeof u>[]; want: string[] }[] = [
    // No arrival known (equal arrivals): by name.
    { why: "no conflicts: all, in name order", globals: [g("b"), g("a")], want: ["a", "b"] },
    { why: "two conflicting: the first by name wins, whatever the input order", globals: [g("b", ["a"]), g("a")], want: ["a"] },
    { why: "the conflict declared by the first one counts as well", globals: [g("b"), g("a", ["b"])], want: ["a"] },
    { why: "a loser does not block later ones", globals: [g("a", ["b"]), g("b", ["c"]), g("c")], want: ["a", "c"] },
    { why: "metadata not met: skipped, and blocks nothing", globals: [g("a", ["b"], { role: ["edge"] }), g("b")], metadata: { role: "db" }, want: ["b"] },
    { why: "metadata met", globals: [g("a", [], { role: ["edge", "db"] })], metadata: { role: "db" }, want: ["a"] },
    { why: "a scheduled unit here blocks a global it conflicts with", globals: [g("a"), g("b")], here: [u("web", ["b"])], want: ["a"] },
    { why: "a global's Conflicts against a scheduled unit", globals: [g("a", ["web*"]), g("b")], here: [u("web1")], want: ["b"] },
    { why: "a global already here by name is not chosen again", globals: [g("a")], here: [u("a")], want: [] },
    { why: "globs", globals: [g("proxy-1", ["proxy-*"]), g("proxy-2", ["proxy-*"])], want: ["proxy-1"] },
    // First come, first served (issue 9): the arrival decides, the name only breaks ties.
    { why: "first come: the one that came first runs, though its name sorts last", globals: [at(7, "alpha", ["zeta"]), at(3, "zeta")], want: ["zeta"] },
    { why: "first come, whichever side declares the conflict", globals: [at(3, "zeta", ["alpha"]), at(7, "alpha")], want: ["zeta"] },
    { why: "first come, whatever the input order", globals: [at(3, "zeta"), at(7, "alpha", ["zeta"])], want: ["zeta"] },
    { why: "no conflict: every global, in arrival order", globals: [at(9, "a"), at(2, "c"), at(5, "b")], want: ["c", "b", "a"] },
    { why: "the same arrival: the first by name", globals: [at(4, "b", ["a"]), at(4, "a")], want: ["a"] },
    { why: "an unknown arrival comes after every known one", globals: [g("a", ["b"]), at(8, "b")], want: ["b"] },
    { why: "a newcomer that lost blocks nobody after it", globals: [at(1, "x", ["y"]), at(2, "y", ["z"]), at(3, "z")], want: ["x", "z"] },
    { why: "a scheduled unit here comes before any global, however early", globals: [at(1, "zeta"), at(2, "alpha")], here: [u("web", ["zeta"])], want: ["alpha"] },
    { why: "an early global this machine lacks the metadata for blocks nothing here", globals: [at(1, "zeta", [], { role: ["edge"] }), at(2, "alpha", ["zeta"])], metadata: { role: "db" }, want: ["alpha"] },
  ];
  for (const t of table) {
    it(t.why, () => {
      expect(chooseGlobals(t.globals, t.metadata ?? {}, t.here ?? []).map((x) => x.name)).toEqual(t.want);
    });
  }
  it("arrival: the pinned activatedRevision, else the revision of the entry carrying the record", () => {
    expect(arrivalOf({ activatedRevision: 4 }, 90)).toBe(4);
    expect(arrivalOf({}, 90)).toBe(90);
  });
});
