// Kills StrykerJS survivors in the unit file parser: src/unit/ini.ts, service-options.ts and
// fleet-options.ts (docs/mutation.md). Each case is a unit file a user could write.
import { describe, expect, it } from "vitest";
import { FlotillaError } from "../../src/protocol/errors.js";
import { MAX_UNIT_FILE_BYTES, parseUnitFile } from "../../src/unit/index.js";

const RUN = "[Service]\nExecStart=/bin/true\n";

function fileError(contents: string): FlotillaError {
  try {
    parseUnitFile("x.service", contents);
  } catch (e) {
    expect(e).toBeInstanceOf(FlotillaError);
    expect((e as FlotillaError).code).toBe("invalid_unit_file");
    return e as FlotillaError;
  }
  throw new Error("expected invalid_unit_file");
}

describe("INI layer edges", () => {
  it("accepts a file of exactly the limit, counting UTF-8 bytes", () => {
    const pad = (n: number) => "# " + "x".repeat(n - RUN.length - 3) + "\n";
    expect(Buffer.byteLength(RUN + pad(MAX_UNIT_FILE_BYTES))).toBe(MAX_UNIT_FILE_BYTES);
    expect(parseUnitFile("x.service", RUN + pad(MAX_UNIT_FILE_BYTES)).service.execStart).toHaveLength(1);
    const e = fileError(RUN + pad(MAX_UNIT_FILE_BYTES) + "é");
    expect(e).toMatchObject({ field: "contents", value: `${MAX_UNIT_FILE_BYTES + 2} bytes` });
  });

  it("names a control character with two hex digits", () => {
    expect(fileError(RUN + "Description=a\u0001b\n").message).toMatch(/control character 0x01;/);
  });

  it("accepts an indented section header and a one-letter section", () => {
    const u = parseUnitFile("x.service", "  [Service]  \nExecStart=/bin/true\n[X]\nk=v\n");
    expect(u.service.execStart[0]!.argv).toEqual(["/bin/true"]);
    expect(u.warnings).toEqual([{ line: 3, message: "unknown section [X] is ignored" }]);
  });

  it("refuses a section name with spaces or brackets inside", () => {
    for (const h of ["[ Service]", "[Service ]", "[a[b]"]) {
      const e = fileError(`${h}\nExecStart=/bin/true\n`);
      expect(e.line).toBe(1);
      expect(e.message).toMatch(/^line 1: invalid section name /);
    }
  });

  it("a section given twice keeps the line of its first header", () => {
    const u = parseUnitFile("x.service", "[Weird]\na=1\n" + RUN + "[Weird]\nb=2\n");
    expect(u.warnings).toEqual([{ line: 1, message: "unknown section [Weird] is ignored" }]);
    expect(fileError("[Service]\nRestart=always\n[Unit]\nDescription=d\n[Service]\nRestartSec=1\n").line).toBe(1);
  });

  it("allows spaces around '=' and strips a CR before a continuation", () => {
    const u = parseUnitFile("x.service", "[Service]\r\nExecStart = /bin/echo a \\\r\n  b\r\n");
    expect(u.service.execStart[0]!.argv).toEqual(["/bin/echo", "a", "b"]);
  });

  it("joins a continued line with a space, and reads a continuation left open at the end of the file", () => {
    expect(parseUnitFile("x.service", "[Service]\nExecStart=/bin/echo a\\\nb\n").service.execStart[0]!.argv).toEqual(["/bin/echo", "a", "b"]);
    expect(parseUnitFile("x.service", "[Service]\nExecStart=/bin/echo a \\").service.execStart[0]!.argv).toEqual(["/bin/echo", "a"]);
  });
});

describe("[Service] option edges", () => {
  const service = (body: string) => parseUnitFile("x.service", `[Service]\nExecStart=/bin/true\n${body}\n`).service;

  it("refuses an empty command around ';'", () => {
    for (const v of ["/bin/a ;", "; /bin/a", "/bin/a ; ; /bin/b"]) {
      expect(fileError(`[Service]\nExecStart=/bin/true\nExecStartPre=${v}\n`).message).toBe('line 3: ExecStartPre=: empty command around ";"');
    }
  });

  it("accepts systemd's '!!' prefix and refuses '!!!'", () => {
    expect(service("ExecStartPre=!!/bin/true").execStartPre[0]!.argv).toEqual(["/bin/true"]);
    expect(fileError("[Service]\nExecStart=!!!/bin/true\n").message).toMatch(/prefix "!" given twice/);
  });

  it.each(["A-B=1", "NAME", "1X=2"])("refuses Environment=%s, field Environment", (v) => {
    const e = fileError(`[Service]\nExecStart=/bin/true\nEnvironment=${v}\n`);
    expect(e).toMatchObject({ line: 3, field: "Environment" });
    expect(e.message).toMatch(/is not an assignment NAME=value/);
  });

  it("names the field of a bad quote in Environment= and of a relative EnvironmentFile=", () => {
    expect(fileError(`${RUN}Environment="A=1\n`)).toMatchObject({ field: "Environment" });
    expect(fileError(`${RUN}EnvironmentFile=etc/env\n`)).toMatchObject({ field: "EnvironmentFile" });
    expect(fileError(`${RUN}WorkingDirectory=srv\n`)).toMatchObject({ field: "WorkingDirectory" });
    expect(fileError(`${RUN}Restart=on-success\n`)).toMatchObject({ field: "Restart" });
  });

  it("reads an optional EnvironmentFile= with a space after '-'", () => {
    expect(service("EnvironmentFile=- /etc/env").environmentFile).toEqual([{ path: "/etc/env", optional: true }]);
  });

  it("WorkingDirectory= empty clears it, and a later non-optional one clears the optional flag", () => {
    expect(service("WorkingDirectory=-/srv\nWorkingDirectory=")).not.toHaveProperty("workingDirectory");
    expect(service("WorkingDirectory=-/srv\nWorkingDirectory=")).not.toHaveProperty("workingDirectoryOptional");
    const s = service("WorkingDirectory=-/srv\nWorkingDirectory=/opt");
    expect(s.workingDirectory).toBe("/opt");
    expect(s).not.toHaveProperty("workingDirectoryOptional");
    expect(service("WorkingDirectory=/opt\nWorkingDirectory=-/srv").workingDirectoryOptional).toBe(true);
  });

  it("StartLimitBurst= takes up to 1,000,000", () => {
    expect(service("StartLimitBurst=1000000").startLimitBurst).toBe(1_000_000);
    expect(fileError(`${RUN}StartLimitBurst=1000001\n`).message).toBe('line 3: StartLimitBurst=: "1000001" is not a whole number');
  });
});

describe("[X-Fleet] option edges", () => {
  const fleetOf = (body: string) => parseUnitFile("x.service", `${RUN}[X-Fleet]\n${body}\n`);

  it("reads the deprecated X-ConditionMachineBootID= as MachineID=", () => {
    const u = fleetOf("X-ConditionMachineBootID=abc123");
    expect(u.fleet.machineId).toBe("abc123");
    expect(u.warnings).toEqual([{ line: 4, message: "X-ConditionMachineBootID= is deprecated; write MachineID=" }]);
  });

  it("an empty Global= is false without a warning", () => {
    const u = fleetOf("Global=true\nGlobal=");
    expect(u.fleet.global).toBe(false);
    expect(u.warnings).toEqual([]);
  });

  it("warns about a MachineOf= peer whose name ends without a unit type", () => {
    expect(fleetOf("MachineOf=db.x1").warnings).toEqual([{ line: 4, message: "MachineOf=db.x1 has no unit type; did you mean db.x1.service?" }]);
  });

  it("MachineMetadata= empty clears it, and a value given twice is kept once", () => {
    expect(fleetOf("MachineMetadata=region=eu\nMachineMetadata=").fleet.machineMetadata).toEqual({});
    expect(fleetOf("MachineMetadata=region=eu region=eu\nMachineMetadata=region=eu").fleet.machineMetadata).toEqual({ region: ["eu"] });
  });

  it("CPU= and Memory= empty clear them", () => {
    expect(fleetOf("CPU=2\nCPU=").fleet).not.toHaveProperty("cpu");
    expect(fleetOf("Memory=1G\nMemory=").fleet).not.toHaveProperty("memoryBytes");
  });

  it("CPU= takes several digits, up to 100,000 cores", () => {
    expect(fleetOf("CPU=12").fleet.cpu).toBe(12);
    expect(fleetOf("CPU=100000").fleet.cpu).toBe(100_000);
    expect(() => fleetOf("CPU=100001")).toThrow(/CPU="100001" is not a number of cores above 0/);
  });

  it("a bad Memory= names the field", () => {
    try {
      fleetOf("Memory=lots");
      expect.unreachable();
    } catch (e) {
      expect(e).toMatchObject({ code: "invalid_unit_file", field: "Memory", line: 4 });
    }
  });
});

describe("parse.ts edges", () => {
  const parse = (body: string, name = "x.service") => parseUnitFile(name, body);

  it("an empty Description= leaves none, and no description or template keys on a plain unit", () => {
    const u = parse("[Unit]\nDescription=d\nDescription=\n" + RUN);
    expect(u).not.toHaveProperty("description");
    expect(u).not.toHaveProperty("template");
    expect(u).not.toHaveProperty("instance");
  });

  it("reads [Unit] StartLimitInterval= (the old spelling) and allows 0 in [Unit] and [Service]", () => {
    expect(parse("[Unit]\nStartLimitInterval=30s\n" + RUN).service.startLimitIntervalMs).toBe(30_000);
    expect(parse("[Unit]\nStartLimitIntervalSec=0\n" + RUN).service.startLimitIntervalMs).toBe(0);
    expect(parse(RUN + "StartLimitIntervalSec=0\n").service.startLimitIntervalMs).toBe(0);
  });

  it("ExecStop= empty clears the list", () => {
    expect(parse(RUN + "ExecStop=/bin/a\nExecStop=\n").service.execStop).toEqual([]);
  });

  it("TimeoutSec= takes 0 and infinity as no timeout", () => {
    const inf = parse(RUN + "TimeoutSec=0\n").service.timeoutStopSecMs;
    expect(inf).toBe(2_147_483_647);
    expect(parse(RUN + "TimeoutSec=infinity\n").service.timeoutStopSecMs).toBe(inf);
  });

  it.each(["", "simple", "exec"])("Type=%s gives no warning", (t) => {
    expect(parse(RUN + `Type=${t}\n`).warnings).toEqual([]);
  });

  it("in a template, a value %i made invalid is a warning without its line prefix, even past line 9", () => {
    const body = "[Unit]\n" + "Description=d\n".repeat(9) + "[Service]\nExecStart=/bin/true\nRestartSec=%i\n";
    const u = parse(body, "web@.service");
    expect(u.warnings).toHaveLength(1);
    expect(u.warnings[0]!.line).toBe(13);
    expect(u.warnings[0]!.message).toMatch(/^RestartSec=: "" is not a time span/);
    expect(u.template).toBe("web@.service");
  });

  it("the ExecStart errors name the field ExecStart", () => {
    expect(fileError("[Service]\nExecStart=/bin/a\nExecStart=/bin/b\n")).toMatchObject({ field: "ExecStart" });
    expect(fileError("[Service]\nRestart=no\n")).toMatchObject({ field: "ExecStart" });
  });

  it("refuses a name that is not a .service, naming the field, and contents that are not text", () => {
    try {
      parseUnitFile("x.socket", RUN);
      expect.unreachable();
    } catch (e) {
      expect(e).toMatchObject({ code: "invalid_unit_name", field: "name", value: "x.socket" });
    }
    try {
      parseUnitFile("x.service", 42 as unknown as string);
      expect.unreachable();
    } catch (e) {
      expect(e).toMatchObject({ code: "invalid_unit_file", field: "contents", message: "unit file contents must be text" });
    }
  });
});
