import { describe, expect, it } from "vitest";
import { FlotillaError } from "../../src/protocol/errors.js";
import { FLEET_RULES, parseUnitFile, validateFleetOptions } from "../../src/unit/index.js";
import type { FleetOptions } from "../../src/unit/index.js";

const HEAD = "[Unit]\nDescription=t\n[Service]\nExecStart=/bin/true\n[X-Fleet]\n"; // [X-Fleet] body starts at line 6

function fleetOf(body: string, name = "u.service") {
  return parseUnitFile(name, HEAD + body + "\n");
}

function failure(body: string, name = "u.service"): FlotillaError {
  try {
    fleetOf(body, name);
  } catch (e) {
    expect(e).toBeInstanceOf(FlotillaError);
    expect((e as FlotillaError).code).toBe("invalid_unit_file");
    return e as FlotillaError;
  }
  throw new Error("expected invalid_unit_file");
}

describe("[X-Fleet] options", () => {
  it.each<[string, Partial<FleetOptions>]>([
    ["MachineID=2c0e0ba1a2a84ad3b3c6fb3bb5e3a8b4", { machineId: "2c0e0ba1a2a84ad3b3c6fb3bb5e3a8b4" }],
    ["MachineID=2c0e0ba1", { machineId: "2c0e0ba1" }],
    ["MachineID=a\nMachineID=a", { machineId: "a" }],
    ["MachineID=a\nMachineID=\nMachineID=b", { machineId: "b" }],
    ["MachineOf=db.service", { machineOf: ["db.service"] }],
    ["MachineOf=db.service\nMachineOf=cache.service", { machineOf: ["db.service", "cache.service"] }],
    ["MachineOf=db.service cache.service", { machineOf: ["db.service", "cache.service"] }],
    ["MachineOf=db.service\nMachineOf=\nMachineOf=x.service", { machineOf: ["x.service"] }],
    ["MachineMetadata=region=us-west", { machineMetadata: { region: ["us-west"] } }],
    ["MachineMetadata=region=us-west region=us-east", { machineMetadata: { region: ["us-west", "us-east"] } }],
    ["MachineMetadata=region=us-west\nMachineMetadata=region=us-east", { machineMetadata: { region: ["us-west", "us-east"] } }],
    ["MachineMetadata=region=us-west disk=ssd\nMachineMetadata=disk=nvme", { machineMetadata: { region: ["us-west"], disk: ["ssd", "nvme"] } }],
    [`MachineMetadata="role=web server" region=eu`, { machineMetadata: { role: ["web server"], region: ["eu"] } }],
    ["MachineMetadata=region=eu\nMachineMetadata=\nMachineMetadata=disk=ssd", { machineMetadata: { disk: ["ssd"] } }],
    ["Conflicts=web@*.service", { conflicts: ["web@*.service"] }],
    ["Conflicts=web@*.service db*.service", { conflicts: ["web@*.service", "db*.service"] }],
    ["Conflicts=a*.service\nConflicts=b?.service\nConflicts=c[0-9].service", { conflicts: ["a*.service", "b?.service", "c[0-9].service"] }],
    ["Conflicts=a.service\nConflicts=a.service", { conflicts: ["a.service"] }],
    ["Replaces=old.service", { replaces: ["old.service"] }],
    ["Replaces=old.service legacy*.service", { replaces: ["old.service", "legacy*.service"] }],
    ["CPU=0.5", { cpu: 0.5 }],
    ["CPU=2", { cpu: 2 }],
    ["Memory=256M", { memoryBytes: 256 * 1024 * 1024 }],
    ["Memory=1.5G", { memoryBytes: 1.5 * 1024 ** 3 }],
    ["Memory=4096", { memoryBytes: 4096 }],
    ["CPU=1\nMemory=1G", { cpu: 1, memoryBytes: 1024 ** 3 }],
  ])("%s", (body, want) => {
    const u = fleetOf(body);
    expect(u.fleet).toMatchObject(want);
    expect(u.warnings).toEqual([]);
  });

  it.each([
    ["true", true], ["TRUE", true], ["yes", true], ["Yes", true], ["1", true], ["on", true], ["t", true], ["T", true],
    ["false", false], ["no", false], ["0", false], ["off", false], ["f", false],
  ])("Global=%s is %s", (v, global) => {
    const u = fleetOf(`Global=${v}`);
    expect(u.fleet.global).toBe(global);
    expect(u.warnings).toEqual([]);
  });

  it("takes the last Global= (fleet)", () => {
    expect(fleetOf("Global=true\nGlobal=false").fleet.global).toBe(false);
    expect(fleetOf("Global=false\nGlobal=yes").fleet.global).toBe(true);
  });

  it("treats another Global= value as false with a warning, as fleet does silently", () => {
    const u = fleetOf("Global=everywhere");
    expect(u.fleet.global).toBe(false);
    expect(u.warnings).toEqual([{ line: 6, message: "Global=everywhere is not a yes/no value; treated as false" }]);
  });

  it("accepts fleet's deprecated spellings with a warning", () => {
    const u = fleetOf("X-ConditionMachineOf=db.service\nX-Conflicts=web*\nX-ConditionMachineMetadata=region=eu");
    expect(u.fleet).toMatchObject({ machineOf: ["db.service"], conflicts: ["web*"], machineMetadata: { region: ["eu"] } });
    expect(u.warnings).toEqual([
      { line: 6, message: "X-ConditionMachineOf= is deprecated; write MachineOf=" },
      { line: 7, message: "X-Conflicts= is deprecated; write Conflicts=" },
      { line: 8, message: "X-ConditionMachineMetadata= is deprecated; write MachineMetadata=" },
    ]);
    expect(fleetOf("X-ConditionMachineID=abc").fleet.machineId).toBe("abc");
  });

  it("warns about an unknown [X-Fleet] key with its line", () => {
    const u = fleetOf("Global=true\nMachineMetdata=region=eu");
    expect(u.warnings).toHaveLength(1);
    expect(u.warnings[0]!.line).toBe(7);
    expect(u.warnings[0]!.message).toMatch(/^unknown key MachineMetdata= in \[X-Fleet\] is ignored/);
  });

  it("warns when MachineOf names a unit without a type", () => {
    const u = fleetOf("MachineOf=db");
    expect(u.fleet.machineOf).toEqual(["db"]);
    expect(u.warnings).toEqual([{ line: 6, message: "MachineOf=db has no unit type; did you mean db.service?" }]);
  });

  it.each([
    ["MachineID=not/an/id", 6, /MachineID="not\/an\/id" is not a machine ID/],
    ["MachineID=a\nMachineID=b", 7, /MachineID= given twice with different values \(a, b\)/],
    ["MachineOf=a/b", 6, /MachineOf="a\/b" is not a unit name/],
    ["MachineMetadata=region", 6, /MachineMetadata=: "region" is not key=value/],
    ["MachineMetadata==eu", 6, /"=eu" is not key=value/],
    ["MachineMetadata=region=", 6, /"region=" is not key=value/],
    ["MachineMetadata=a=b=c", 6, /"a=b=c" is not key=value/],
    ["MachineMetadata=\"region=eu", 6, /unterminated double quote/],
    ["Conflicts=web[", 6, /Conflicts="web\[" is not a valid glob pattern/],
    ["Conflicts=a\\q", 6, /Conflicts=: unknown escape "\\q"/],
    ["Replaces=[]a]", 6, /Replaces="\[\]a\]" is not a valid glob pattern/],
    ["CPU=0", 6, /CPU="0" is not a number of cores above 0/],
    ["CPU=-1", 6, /CPU="-1" is not a number of cores above 0/],
    ["CPU=lots", 6, /CPU="lots" is not a number of cores/],
    ["Memory=lots", 6, /Memory="lots" is not a size/],
    ["Memory=0", 6, /Memory= must be more than 0/],
  ])("rejects %s with its line", (body, line, msg) => {
    const e = failure(body);
    expect(e.line).toBe(line);
    expect(e.message).toMatch(new RegExp(`^line ${line}: `));
    expect(e.message).toMatch(msg);
  });
});

describe("fleet's validation rules", () => {
  // Each rule: an offending file, the line to blame (the later of the two options), the message.
  const cases: [string, string, number, RegExp][] = [
    ["MachineID + MachineOf", "MachineID=m1\nMachineOf=db.service", 7, /MachineID cannot be used with MachineOf/],
    ["MachineOf + MachineID", "MachineOf=db.service\nMachineID=m1", 7, /MachineID cannot be used with MachineOf/],
    ["MachineID + Conflicts", "MachineID=m1\nConflicts=web*", 7, /MachineID cannot be used with Conflicts/],
    ["MachineID + Global", "Global=true\nDescription=x\nMachineID=m1", 8, /MachineID cannot be used with Global/],
    ["MachineID + Replaces", "MachineID=m1\nReplaces=old.service", 7, /MachineID cannot be used with Replaces/],
    ["Global + MachineOf", "Global=yes\nMachineOf=db.service", 7, /Global cannot be used with MachineOf/],
    ["Global + Replaces", "Replaces=old.service\nGlobal=1", 7, /Global cannot be used with Replaces/],
    ["Conflicts + Replaces", "Conflicts=a*\nReplaces=b.service", 7, /Conflicts cannot be used with Replaces/],
    ["peer matches own Conflicts", "MachineOf=db@1.service\nConflicts=db@*.service", 7, /unresolvable requirements: MachineOf=db@1.service matches the unit's own Conflicts=db@\*.service/],
    ["peer matches own Replaces", "Replaces=db.service\nMachineOf=db.service", 7, /unresolvable requirements: MachineOf=db.service matches the unit's own Replaces=db.service/],
    ["MachineOf itself", "MachineOf=u.service", 6, /MachineOf=u.service names the unit itself/],
  ];

  it.each(cases)("rejects %s", (_rule, body, line, msg) => {
    const e = failure(body);
    expect(e.line).toBe(line);
    expect(e.message).toMatch(new RegExp(`^line ${line}: \\[X-Fleet\\] `));
    expect(e.message).toMatch(msg);
  });

  it("names every rule it has in FLEET_RULES", () => {
    expect(FLEET_RULES).toHaveLength(cases.length - 1); // MachineOf before/after MachineID is one rule
  });

  it.each([
    ["Global with MachineMetadata", "Global=true\nMachineMetadata=region=eu"],
    ["Global with Conflicts (allowed since fleet 0.11: skips machines running the conflict)", "Global=true\nConflicts=other*"],
    ["MachineID with MachineMetadata", "MachineID=m1\nMachineMetadata=region=eu"],
    ["MachineOf with Conflicts that do not match the peer", "MachineOf=db.service\nConflicts=web@*"],
    ["MachineOf with Replaces that do not match the peer", "MachineOf=db.service\nReplaces=old.service"],
    ["Conflicts matching the unit's own name (the usual web@.service pattern)", "Conflicts=u*"],
    ["Global=false with MachineID", "Global=false\nMachineID=m1"],
    ["a rule undone by an empty assignment", "MachineID=m1\nMachineID=\nGlobal=true"],
    ["CPU and Memory with everything", "MachineOf=db.service\nCPU=0.25\nMemory=64M\nMachineMetadata=a=b"],
  ])("accepts %s", (_what, body) => {
    expect(() => fleetOf(body)).not.toThrow();
  });

  it("applies specifiers before checking: an instance's peer vs its own conflicts", () => {
    const tpl = "MachineOf=db@%i.service\nConflicts=db@%i.service";
    const e = failure(tpl, "web@3.service");
    expect(e.message).toMatch(/MachineOf=db@3.service matches the unit's own Conflicts=db@3.service/);
  });

  it("validates FleetOptions built elsewhere (no lines known)", () => {
    const base: FleetOptions = { machineOf: [], machineMetadata: {}, conflicts: [], global: true, replaces: [] };
    expect(() => validateFleetOptions("x.service", { ...base, machineId: "m1" })).toThrow(
      /^\[X-Fleet\] MachineID cannot be used with Global/,
    );
    expect(() => validateFleetOptions("x.service", base)).not.toThrow();
  });
});

describe("errors about huge values stay short", () => {
  it("quotes at most a few dozen characters of a 100 KB value, whatever the option", async () => {
    const { parseUnitFile } = await import("../../src/unit/index.js");
    const huge = "x".repeat(100_000);
    const files = [
      `[Service]\nExecStart=/bin/true\n[X-Fleet]\nMachineID=${huge}!\n`,
      `[Service]\nExecStart=/bin/true\n[X-Fleet]\nCPU=${huge}\n`,
      `[Service]\nExecStart=/bin/true\n[X-Fleet]\nConflicts=[${huge}\n`,
      `[Service]\nExecStart=/bin/true "${huge}\n`,
      `[${huge}\n[Service]\nExecStart=/bin/true\n`,
      `[Service]\nExecStart=/bin/true\n${huge}\n`,
      `[Service]\nExecStart=/bin/true\nRestartSec=${huge}\n`,
    ];
    for (const f of files) {
      let msg = "";
      try {
        parseUnitFile("big.service", f);
      } catch (e) {
        msg = (e as Error).message;
      }
      expect(msg, f.slice(0, 60)).not.toBe("");
      expect(msg.length, msg.slice(0, 120)).toBeLessThan(300);
    }
  });
});
