import { describe, expect, it } from "vitest";
import { FlotillaError } from "../../src/protocol/errors.js";
import {
  clearUnitCache,
  instanceOf,
  isTemplate,
  normalizeUnitName,
  parseUnitFile,
  parseUnitFileCached,
  shortHash,
  unitHash,
  unitNameInfo,
  MAX_UNIT_FILE_BYTES,
} from "../../src/unit/index.js";

const RUN = "[Service]\nExecStart=/bin/true\n";

/** Runs fn, expects a FlotillaError, returns it for more checks. */
function failure(fn: () => unknown): FlotillaError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(FlotillaError);
    return e as FlotillaError;
  }
  throw new Error("expected a FlotillaError, got none");
}

function fileError(contents: string, name = "x.service"): FlotillaError {
  const e = failure(() => parseUnitFile(name, contents));
  expect(e.code).toBe("invalid_unit_file");
  return e;
}

describe("INI structure", () => {
  it("parses a minimal service with flotilla's defaults", () => {
    const u = parseUnitFile("hello.service", RUN);
    expect(u.name).toBe("hello.service");
    expect(u.description).toBeUndefined();
    expect(u.service).toEqual({
      execStart: [{ raw: "/bin/true", argv: ["/bin/true"], ignoreFailure: false }],
      execStartPre: [],
      execStop: [],
      environment: {},
      environmentFile: [],
      restart: "no",
      restartSecMs: 100,
      timeoutStopSecMs: 10_000,
      startLimitBurst: 5,
      startLimitIntervalMs: 10_000,
    });
    expect(u.fleet).toEqual({ machineOf: [], machineMetadata: {}, conflicts: [], global: false, replaces: [] });
    expect(u.warnings).toEqual([]);
    expect(u.sections).toEqual({ Service: { ExecStart: ["/bin/true"] } });
  });

  it("reads [Unit] Description, keeping '#' that is not at the start of a line", () => {
    const u = parseUnitFile("a", "[Unit]\nDescription=  My web # not a comment  \n" + RUN);
    expect(u.description).toBe("My web # not a comment");
  });

  it.each([
    ["# comment", "#"],
    ["; comment", ";"],
    ["   # indented comment", "indented #"],
  ])("skips comment lines: %s (%s)", (comment) => {
    const u = parseUnitFile("a", `${comment}\n[Service]\n${comment}\nExecStart=/bin/true\n${comment}\n`);
    expect(u.service.execStart[0]!.argv).toEqual(["/bin/true"]);
    expect(u.warnings).toEqual([]);
  });

  it("joins continuation lines with a space and skips comments inside them", () => {
    const u = parseUnitFile(
      "a",
      "[Service]\nExecStart=/bin/echo one \\\n  two \\\n# a comment in the middle\n  three\nRestart=always\n",
    );
    expect(u.service.execStart[0]!.argv).toEqual(["/bin/echo", "one", "two", "three"]);
    expect(u.service.restart).toBe("always");
  });

  it("does not continue a line ending in an escaped backslash", () => {
    const u = parseUnitFile("a", "[Service]\nExecStart=/bin/echo a\\\\\nRestart=always\n");
    expect(u.service.execStart[0]!.argv).toEqual(["/bin/echo", "a\\"]);
    expect(u.service.restart).toBe("always");
  });

  it("reports the first line of a continued assignment in errors", () => {
    const e = fileError("[Service]\nExecStart=/bin/true\nRestartSec=5 \\\n  bogus\n");
    expect(e.line).toBe(3);
    expect(e.message).toMatch(/^line 3: RestartSec=: "5 +bogus" is not a time span/);
  });

  it("accepts CRLF line endings and a UTF-8 byte order mark", () => {
    const u = parseUnitFile("a", "\ufeff[Unit]\r\nDescription=crlf\r\n[Service]\r\nExecStart=/bin/true\r\n");
    expect(u.description).toBe("crlf");
    expect(u.service.execStart[0]!.argv).toEqual(["/bin/true"]);
  });

  it("merges a section that appears twice", () => {
    const u = parseUnitFile("a", "[Service]\nExecStart=/bin/true\n[Unit]\nDescription=d\n[Service]\nRestart=always\n");
    expect(u.service.restart).toBe("always");
    expect(u.description).toBe("d");
  });

  it.each([
    ["a key before any section", "ExecStart=/bin/true\n[Service]\n", 1, /ExecStart= appears before any \[Section\] header/],
    ["a line without '='", "[Service]\nExecStart=/bin/true\njust words\n", 3, /"just words" is not an assignment/],
    ["an unclosed section header", "[Service\nExecStart=/bin/true\n", 1, /invalid section header "\[Service"/],
    ["an empty section header", "[]\n", 1, /invalid section header/],
    ["an empty key", "[Service]\n=x\n", 2, /assignment without a key/],
    ["a key with spaces inside", "[Service]\nExec Start=/bin/true\n", 2, /invalid key "Exec Start"/],
  ])("rejects %s with its line", (_what, contents, line, msg) => {
    const e = fileError(contents);
    expect(e.line).toBe(line);
    expect(e.message).toMatch(new RegExp(`^line ${line}: `));
    expect(e.message).toMatch(msg);
  });

  it("warns about unknown keys and sections with their line, and keeps them in sections", () => {
    const u = parseUnitFile(
      "a",
      "[Unit]\nDescription=x\nFrobnicate=1\n[Service]\nExecStart=/bin/true\nColour=blue\n[Weird]\nK=v\n[Install]\nWantedBy=multi-user.target\n",
    );
    expect(u.warnings).toEqual([
      { line: 7, message: "unknown section [Weird] is ignored" },
      { line: 9, message: "[Install] is ignored: flotilla decides where and when units run" },
      { line: 3, message: "unknown key Frobnicate= in [Unit] is ignored" },
      { line: 6, message: "unknown key Colour= in [Service] is ignored" },
    ]);
    expect(u.sections.Weird).toEqual({ K: ["v"] });
    expect(u.sections.Install).toEqual({ WantedBy: ["multi-user.target"] });
  });

  it("warns that systemd dependencies and unsupported service keys are ignored, naming the line", () => {
    const u = parseUnitFile(
      "a",
      "[Unit]\nAfter=docker.service\nRequires=docker.service\n[Service]\nType=forking\nUser=core\nExecStart=/bin/true\n",
    );
    expect(u.warnings.map((w) => [w.line, w.message.split(":")[0]])).toEqual([
      [2, "[Unit] After= is ignored"],
      [3, "[Unit] Requires= is ignored"],
      [5, "Type=forking is treated as Type=simple"],
      [6, "[Service] User= is ignored"],
    ]);
  });
});

describe("bad input", () => {
  it("treats keys such as __proto__ and constructor as plain keys, never as object internals", () => {
    const u = parseUnitFile(
      "a",
      "[__proto__]\nx=1\n[Unit]\nconstructor=1\ntoString=2\n[Service]\nExecStart=/bin/true\nEnvironment=__proto__=p constructor=c\n__proto__=z\n[X-Fleet]\nMachineMetadata=__proto__=a constructor=b\nhasOwnProperty=1\n",
    );
    expect(u.service.environment.__proto__).toBe("p");
    expect(u.service.environment.constructor).toBe("c");
    expect(Object.keys(u.service.environment)).toEqual(["__proto__", "constructor"]);
    expect(Object.keys(u.fleet.machineMetadata)).toEqual(["__proto__", "constructor"]);
    expect(Object.keys(u.sections)).toEqual(["__proto__", "Unit", "Service", "X-Fleet"]);
    expect(u.warnings.map((w) => w.message)).toEqual([
      "unknown section [__proto__] is ignored",
      "unknown key constructor= in [Unit] is ignored",
      "unknown key toString= in [Unit] is ignored",
      "unknown key __proto__= in [Service] is ignored",
      expect.stringMatching(/^unknown key hasOwnProperty= in \[X-Fleet\] is ignored/),
    ]);
    expect(({} as Record<string, unknown>).x).toBeUndefined(); // Object.prototype untouched
  });


  it("rejects a 1 MiB file before parsing it", () => {
    const big = RUN + "# " + "x".repeat(1024 * 1024) + "\n";
    const e = fileError(big);
    expect(e.message).toMatch(/^unit file is 10\d{5} bytes; the limit is 262144 bytes \(256 KiB\)$/);
  });

  it("accepts a file just under the limit", () => {
    const padding = "# " + "x".repeat(MAX_UNIT_FILE_BYTES - RUN.length - 10) + "\n";
    const u = parseUnitFile("a", RUN + padding);
    expect(u.service.execStart).toHaveLength(1);
  });

  it("rejects NUL bytes, naming the line", () => {
    const e = fileError("[Service]\nExecStart=/bin/true\nDescription=a\u0000b\n");
    expect(e.line).toBe(3);
    expect(e.message).toBe("line 3: unit file contains a NUL byte; is it a binary file? A unit file is UTF-8 text");
  });

  it("rejects bytes that were not UTF-8", () => {
    const text = Buffer.from([0x5b, 0x53, 0x5d, 0x0a, 0xff, 0xfe, 0x00, 0x89, 0x50, 0x4e, 0x47]).toString("utf8");
    const e = fileError(text);
    expect(e.line).toBe(2);
    expect(e.message).toMatch(/not valid UTF-8|NUL byte/);
  });

  it("rejects random binary garbage with a clear error", () => {
    let seed = 42;
    const bytes = Buffer.alloc(4096);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (seed = (seed * 1103515245 + 12345) & 0x7fffffff) & 0xff;
    const e = fileError(bytes.toString("utf8"));
    expect(e.message).toMatch(/binary file/);
  });

  it("rejects other control characters", () => {
    const e = fileError("[Service]\nExecStart=/bin/echo \u001b[31mred\n");
    expect(e.message).toBe("line 2: unit file contains control character 0x1b; is it a binary file? A unit file is UTF-8 text");
  });
});

describe("[Service] exec lines", () => {
  const exec = (line: string) => parseUnitFile("a", `[Service]\nExecStart=${line}\n`).service.execStart[0]!;

  it.each([
    ["/bin/echo a b", ["/bin/echo", "a", "b"]],
    ["/bin/echo   spaced\tout", ["/bin/echo", "spaced", "out"]],
    [`/bin/echo "a b" c`, ["/bin/echo", "a b", "c"]],
    [`/bin/echo 'a b' c`, ["/bin/echo", "a b", "c"]],
    [`/bin/echo "it's"`, ["/bin/echo", "it's"]],
    [`/bin/echo 'say "hi"'`, ["/bin/echo", 'say "hi"']],
    [`/bin/echo a"b c"d`, ["/bin/echo", "ab cd"]],
    [`/bin/echo ""`, ["/bin/echo", ""]],
    [`/bin/echo a\\ b`, ["/bin/echo", "a b"]],
    [`/bin/echo "a\\"b"`, ["/bin/echo", 'a"b']],
    [`/bin/echo \\\\ \\t \\x41 \\101 \\u00e9`, ["/bin/echo", "\\", "\t", "A", "A", "é"]],
    [`/bin/echo "line1\\nline2"`, ["/bin/echo", "line1\nline2"]],
    [`/bin/sh -c "echo $HOME && sleep 1"`, ["/bin/sh", "-c", "echo $HOME && sleep 1"]],
    [`/usr/bin/docker run --rm --name web -p 80:80 nginx`, ["/usr/bin/docker", "run", "--rm", "--name", "web", "-p", "80:80", "nginx"]],
  ])("splits %s", (line, argv) => {
    expect(exec(line).argv).toEqual(argv);
  });

  it("never adds a shell: pipes and globs stay plain arguments", () => {
    expect(exec("/bin/echo a | grep *").argv).toEqual(["/bin/echo", "a", "|", "grep", "*"]);
  });

  it.each([
    ["-/bin/false", { argv: ["/bin/false"], ignoreFailure: true }],
    ["@/bin/sleep mysleep 10", { argv: ["/bin/sleep", "10"], argv0: "mysleep", ignoreFailure: false }],
    ["-@/bin/sleep mysleep 10", { argv: ["/bin/sleep", "10"], argv0: "mysleep", ignoreFailure: true }],
    ["@-/bin/sleep mysleep", { argv: ["/bin/sleep"], argv0: "mysleep", ignoreFailure: true }],
    ["+/bin/true", { argv: ["/bin/true"], ignoreFailure: false }],
    [":/bin/echo $X", { argv: ["/bin/echo", "$X"], ignoreFailure: false, noEnvExpansion: true }],
    [`-"/opt/my app/run"`, { argv: ["/opt/my app/run"], ignoreFailure: true }],
  ])("reads prefixes of %s", (line, want) => {
    expect(exec(line)).toMatchObject(want);
  });

  it("keeps the raw command without its prefixes", () => {
    expect(exec(`-/bin/sh -c "exit 1"`).raw).toBe(`/bin/sh -c "exit 1"`);
  });

  it.each([
    [`/bin/echo "open`, /ExecStart=: unterminated double quote/],
    [`/bin/echo 'open`, /ExecStart=: unterminated single quote/],
    [`/bin/echo \\q`, /ExecStart=: unknown escape "\\q"/],
    [`/bin/echo \\x4`, /bad escape "\\x4"/],
    [`/bin/echo \\x00`, /\\x00 \(a NUL byte\) is not allowed/],
    [`@/bin/sleep`, /the "@" prefix needs argv\[0\]/],
    [`-`, /no executable after the prefix "-"/],
    [`--/bin/true`, /prefix "-" given twice/],
  ])("rejects ExecStart=%s with its line", (line, msg) => {
    const e = fileError(`[Unit]\nDescription=x\n[Service]\nExecStart=${line}\n`);
    expect(e.line).toBe(4);
    expect(e.message).toMatch(/^line 4: /);
    expect(e.message).toMatch(msg);
  });

  it("accumulates ExecStartPre and ExecStop lines, and an empty assignment clears them", () => {
    const u = parseUnitFile(
      "a",
      "[Service]\nExecStartPre=/bin/a\nExecStartPre=/bin/b\nExecStartPre=\nExecStartPre=-/bin/c x\nExecStartPre=/bin/d\nExecStart=/bin/main\nExecStop=/bin/stop1\nExecStop=/bin/stop2\n",
    );
    expect(u.service.execStartPre.map((c) => c.argv)).toEqual([["/bin/c", "x"], ["/bin/d"]]);
    expect(u.service.execStartPre[0]!.ignoreFailure).toBe(true);
    expect(u.service.execStop.map((c) => c.argv)).toEqual([["/bin/stop1"], ["/bin/stop2"]]);
    expect(u.sections.Service!.ExecStartPre).toEqual(["/bin/a", "/bin/b", "", "-/bin/c x", "/bin/d"]);
  });

  it("splits several commands on a lone ';' and keeps an escaped one", () => {
    const u = parseUnitFile("a", "[Service]\nExecStartPre=/bin/a 1 ; -/bin/b 2\nExecStart=/bin/echo \\; done\n");
    expect(u.service.execStartPre.map((c) => [c.argv, c.ignoreFailure])).toEqual([
      [["/bin/a", "1"], false],
      [["/bin/b", "2"], true],
    ]);
    expect(u.service.execStartPre.map((c) => c.raw)).toEqual(["/bin/a 1", "/bin/b 2"]);
    expect(u.service.execStart[0]!.argv).toEqual(["/bin/echo", ";", "done"]);
  });

  it("rejects a service without ExecStart", () => {
    const e = fileError("[Unit]\nDescription=x\n[Service]\nRestart=always\n", "idle.service");
    expect(e.message).toBe("[Service] ExecStart= is missing: idle.service has no command to run");
    expect(e.line).toBe(3);
  });

  it("rejects a file with no [Service] at all", () => {
    const e = fileError("[Unit]\nDescription=x\n");
    expect(e.message).toMatch(/ExecStart= is missing/);
  });

  it("rejects two ExecStart commands, naming the line of the second", () => {
    const e = fileError("[Service]\nExecStart=/bin/a\nExecStart=/bin/b\n");
    expect(e.line).toBe(3);
    expect(e.message).toMatch(/^line 3: more than one ExecStart= command \(2\)/);
  });

  it("lets an empty ExecStart= replace an earlier one", () => {
    const u = parseUnitFile("a", "[Service]\nExecStart=/bin/a\nExecStart=\nExecStart=/bin/b\n");
    expect(u.service.execStart.map((c) => c.argv)).toEqual([["/bin/b"]]);
  });
});

describe("[Service] environment", () => {
  const svc = (lines: string) => parseUnitFile("a", `[Service]\nExecStart=/bin/true\n${lines}\n`).service;

  it.each([
    [`Environment=A=1`, { A: "1" }],
    [`Environment=A=1 B=2`, { A: "1", B: "2" }],
    [`Environment="A=b c" "D=e"`, { A: "b c", D: "e" }],
    [`Environment='A=b c' D=e`, { A: "b c", D: "e" }],
    [`Environment=A="b c"`, { A: "b c" }],
    [`Environment=A=`, { A: "" }],
    [`Environment=URL=http://x?a=b`, { URL: "http://x?a=b" }],
    [`Environment=A=1\nEnvironment=B=2`, { A: "1", B: "2" }],
    [`Environment=A=1\nEnvironment=A=2`, { A: "2" }],
    [`Environment=A=1\nEnvironment=\nEnvironment=B=2`, { B: "2" }],
    [`Environment="MSG=tab\\there"`, { MSG: "tab\there" }],
  ])("%s", (lines, env) => {
    expect(svc(lines).environment).toEqual(env);
  });

  it.each([
    [`Environment=NOEQUALS`, /"NOEQUALS" is not an assignment NAME=value/],
    [`Environment=1A=x`, /"1A=x" is not an assignment/],
    [`Environment=A=b c`, /"c" is not an assignment NAME=value \(quote a value with spaces/],
    [`Environment="A=b`, /unterminated double quote/],
  ])("rejects %s with its line", (lines, msg) => {
    const e = fileError(`[Service]\nExecStart=/bin/true\n${lines}\n`);
    expect(e.line).toBe(3);
    expect(e.message).toMatch(msg);
  });

  it("reads EnvironmentFile paths without reading the files; '-' makes one optional", () => {
    expect(svc("EnvironmentFile=/etc/a.env\nEnvironmentFile=-/etc/b.env").environmentFile).toEqual([
      { path: "/etc/a.env", optional: false },
      { path: "/etc/b.env", optional: true },
    ]);
    expect(svc("EnvironmentFile=/etc/a.env\nEnvironmentFile=\nEnvironmentFile=/etc/c.env").environmentFile).toEqual([
      { path: "/etc/c.env", optional: false },
    ]);
  });

  it("rejects a relative EnvironmentFile", () => {
    const e = fileError("[Service]\nExecStart=/bin/true\nEnvironmentFile=etc/a.env\n");
    expect(e.message).toBe('line 3: EnvironmentFile=: "etc/a.env" is not an absolute path');
  });

  it.each([
    ["WorkingDirectory=/srv/app", { workingDirectory: "/srv/app" }],
    ["WorkingDirectory=~", { workingDirectory: "~" }],
    ["WorkingDirectory=-/srv/maybe", { workingDirectory: "/srv/maybe", workingDirectoryOptional: true }],
    ["WorkingDirectory=/a\nWorkingDirectory=/b", { workingDirectory: "/b" }],
  ])("%s", (lines, want) => {
    expect(svc(lines)).toMatchObject(want);
  });

  it("rejects a relative WorkingDirectory", () => {
    const e = fileError("[Service]\nExecStart=/bin/true\nWorkingDirectory=srv\n");
    expect(e.message).toBe('line 3: WorkingDirectory=: "srv" is not an absolute path (or "~")');
  });
});

describe("[Service] restart and timeouts", () => {
  const svc = (lines: string) => parseUnitFile("a", `[Service]\nExecStart=/bin/true\n${lines}\n`);

  it.each([
    ["Restart=no", "no"],
    ["Restart=on-failure", "on-failure"],
    ["Restart=always", "always"],
    ["Restart=always\nRestart=no", "no"],
    ["Restart=", "no"],
  ])("%s", (line, policy) => {
    expect(svc(line).service.restart).toBe(policy);
  });

  it.each(["on-abnormal", "on-abort", "on-watchdog"])("maps Restart=%s to on-failure with a warning", (v) => {
    const u = svc(`Restart=${v}`);
    expect(u.service.restart).toBe("on-failure");
    expect(u.warnings).toEqual([{ line: 3, message: `Restart=${v} is treated as Restart=on-failure (flotilla restarts on any failure)` }]);
  });

  it.each(["on-success", "sometimes", "Always"])("rejects Restart=%s", (v) => {
    const e = fileError(`[Service]\nExecStart=/bin/true\nRestart=${v}\n`);
    expect(e.message).toBe(`line 3: Restart="${v}" is not supported: use no, on-failure or always`);
  });

  it.each([
    ["RestartSec=5", "restartSecMs", 5000],
    ["RestartSec=500ms", "restartSecMs", 500],
    ["RestartSec=1min 30s", "restartSecMs", 90_000],
    ["RestartSec=0", "restartSecMs", 0],
    ["TimeoutStopSec=30", "timeoutStopSecMs", 30_000],
    ["TimeoutStopSec=2min", "timeoutStopSecMs", 120_000],
    ["TimeoutStopSec=infinity", "timeoutStopSecMs", 2_147_483_647],
    ["TimeoutStopSec=0", "timeoutStopSecMs", 2_147_483_647],
    ["TimeoutStopSec=60d", "timeoutStopSecMs", 2_147_483_647],
    ["StartLimitIntervalSec=1d", "startLimitIntervalMs", 86_400_000],
    ["TimeoutSec=20", "timeoutStopSecMs", 20_000],
    ["TimeoutStopSec=5\nTimeoutSec=20", "timeoutStopSecMs", 5000],
    ["StartLimitBurst=3", "startLimitBurst", 3],
    ["StartLimitIntervalSec=1min", "startLimitIntervalMs", 60_000],
    ["StartLimitInterval=30", "startLimitIntervalMs", 30_000],
  ])("%s", (line, field, value) => {
    expect(svc(line).service[field as "restartSecMs"]).toBe(value);
  });

  it("reads StartLimitIntervalSec and StartLimitBurst from [Unit], where systemd puts them", () => {
    const u = parseUnitFile("a", "[Unit]\nStartLimitIntervalSec=2min\nStartLimitBurst=10\n" + RUN);
    expect(u.service.startLimitIntervalMs).toBe(120_000);
    expect(u.service.startLimitBurst).toBe(10);
    expect(u.warnings).toEqual([]);
  });

  it.each([
    ["RestartSec=soon", /RestartSec=: "soon" is not a time span/],
    ["RestartSec=infinity", /RestartSec=infinity is not allowed here/],
    ["TimeoutStopSec=5 parsecs", /TimeoutStopSec=: "5 parsecs" is not a time span/],
    ["StartLimitBurst=-1", /StartLimitBurst=: "-1" is not a whole number/],
    ["StartLimitBurst=2.5", /StartLimitBurst=: "2.5" is not a whole number/],
    ["StartLimitIntervalSec=often", /StartLimitIntervalSec=: "often" is not a time span/],
    ["RestartSec=5constructor", /RestartSec=: "5constructor" is not a time span/],
  ])("rejects %s with its line", (line, msg) => {
    const e = fileError(`[Service]\nExecStart=/bin/true\n${line}\n`);
    expect(e.line).toBe(3);
    expect(e.field).toBe(line.split("=")[0]);
    expect(e.message).toMatch(msg);
  });
});

describe("specifiers", () => {
  const tpl = `[Unit]
Description=%p instance %i (%n, %N)
[Service]
ExecStart=/bin/echo %i %I %p %P %n %N 100%%
Environment=NAME=%n
WorkingDirectory=/srv/%i
[X-Fleet]
Conflicts=%p@*.service
MachineOf=db@%i.service
`;

  it("expands %n %N %p %i %I %P and %% from an instance name", () => {
    const u = parseUnitFile("web@8080.service", tpl);
    expect(u.description).toBe("web instance 8080 (web@8080.service, web@8080)");
    expect(u.service.execStart[0]!.argv).toEqual(["/bin/echo", "8080", "8080", "web", "web", "web@8080.service", "web@8080", "100%"]);
    expect(u.service.environment).toEqual({ NAME: "web@8080.service" });
    expect(u.service.workingDirectory).toBe("/srv/8080");
    expect(u.fleet.conflicts).toEqual(["web@*.service"]);
    expect(u.fleet.machineOf).toEqual(["db@8080.service"]);
    expect(u.sections.Unit!.Description).toEqual(["web instance 8080 (web@8080.service, web@8080)"]);
  });

  it("expands specifiers from a plain name (instance empty)", () => {
    const u = parseUnitFile("web", "[Service]\nExecStart=/bin/echo %p [%i] %n\n");
    expect(u.service.execStart[0]!.argv).toEqual(["/bin/echo", "web", "[]", "web.service"]);
  });

  it("expands %f %j from the name as systemd does", () => {
    const u = parseUnitFile("var-lib@srv-data.service", "[Service]\nExecStart=/bin/echo %f %j\n");
    expect(u.service.execStart[0]!.argv).toEqual(["/bin/echo", "/srv/data", "lib"]);
  });

  it("leaves host specifiers for the agent, which expands them with its host facts", () => {
    const contents = "[Service]\nExecStart=/usr/bin/etcdctl set /hosts/%H/%m %i\n";
    expect(parseUnitFile("a@1", contents).service.execStart[0]!.argv).toEqual(["/usr/bin/etcdctl", "set", "/hosts/%H/%m", "1"]);
    const onHost = parseUnitFile("a@1", contents, { host: { hostname: "node1", machineId: "m42" } });
    expect(onHost.service.execStart[0]!.argv).toEqual(["/usr/bin/etcdctl", "set", "/hosts/node1/m42", "1"]);
  });

  it.each([
    ["ExecStart=/bin/echo %z", 2, /ExecStart=: unknown specifier "%z"/],
    ["ExecStart=/bin/echo 100%", 2, /ExecStart=: a lone "%" ends the value/],
  ])("rejects %s", (line, at, msg) => {
    const e = fileError(`[Service]\n${line}\n`);
    expect(e.line).toBe(at);
    expect(e.message).toMatch(msg);
  });
});

describe("unit names and templates", () => {
  it.each([
    ["hello", "hello.service"],
    ["hello.service", "hello.service"],
    ["hello@", "hello@.service"],
    ["hello@1", "hello@1.service"],
    ["hello@1.service", "hello@1.service"],
    ["a.b", "a.b.service"],
    ["web:8080", "web:8080.service"],
    ["x.timer", "x.timer"],
    ["my_unit-2.service", "my_unit-2.service"],
  ])("normalizes %s to %s", (name, full) => {
    expect(normalizeUnitName(name)).toBe(full);
  });

  it.each([
    ["a/b", /invalid unit name "a\/b": "\/" \(give the unit name, not a path\) is not allowed/],
    ["a b", /invalid unit name "a b": a space is not allowed/],
    ["", /invalid unit name "": the name is empty/],
    ["@x.service", /cannot start with "@"/],
    [".service", /cannot start with "."/],
    ["a$.service", /"\$" is not allowed/],
    ["foo.", /a name cannot end with "."/],
    ["a..service", /the part before ".service" is empty or ends with "."/],
    ["é", /"é" is not allowed/],
    ["x".repeat(300), /longer than 255 characters/],
  ])("rejects %j", (name, msg) => {
    const e = failure(() => normalizeUnitName(name));
    expect(e.code).toBe("invalid_unit_name");
    expect(e.field).toBe("name");
    expect(e.message).toMatch(msg);
    const e2 = failure(() => parseUnitFile(name, RUN));
    expect(e2.code).toBe("invalid_unit_name");
  });

  it("refuses units that are not services", () => {
    const e = failure(() => parseUnitFile("backup.timer", RUN));
    expect(e.code).toBe("invalid_unit_name");
    expect(e.message).toBe('invalid unit name "backup.timer": flotilla runs .service units only');
  });

  it("tells templates and instances apart", () => {
    expect(isTemplate("foo@.service")).toBe(true);
    expect(isTemplate("foo@1.service")).toBe(false);
    expect(isTemplate("foo.service")).toBe(false);
    expect(instanceOf("foo@1.service")).toEqual({ template: "foo@.service", instance: "1", prefix: "foo" });
    expect(instanceOf("foo@a@b.service")).toEqual({ template: "foo@.service", instance: "a@b", prefix: "foo" });
    expect(instanceOf("foo@.service")).toBeUndefined();
    expect(instanceOf("foo.service")).toBeUndefined();
    expect(instanceOf("foo@2")).toEqual({ template: "foo@.service", instance: "2", prefix: "foo" });
    expect(isTemplate("foo@")).toBe(true);
    expect(unitNameInfo("web@3.service")).toEqual({
      fullName: "web@3.service",
      name: "web@3",
      prefix: "web",
      instance: "3",
      type: "service",
      template: "web@.service",
    });
  });

  it("parses the template itself with an empty %i and the instance with its own", () => {
    const contents = "[Service]\nExecStart=/bin/sleep %i\n";
    const t = parseUnitFile("sleep@.service", contents);
    expect(t.template).toBe("sleep@.service");
    expect(t.instance).toBeUndefined();
    expect(t.service.execStart[0]!.argv).toEqual(["/bin/sleep"]);
    const i = parseUnitFile("sleep@600", contents);
    expect(i.name).toBe("sleep@600.service");
    expect(i.template).toBe("sleep@.service");
    expect(i.instance).toBe("600");
    expect(i.service.execStart[0]!.argv).toEqual(["/bin/sleep", "600"]);
  });
});

describe("templates with instance-dependent values", () => {
  const tpl = "[Service]\nExecStart=/bin/sleep 1\nRestartSec=%i\n[X-Fleet]\nMachineMetadata=hostname=%i\nMachineID=%i\n";

  it("accepts the template, warning about values that need an instance", () => {
    const t = parseUnitFile("pinned@.service", tpl);
    expect(t.fleet.machineMetadata).toEqual({});
    expect(t.fleet.machineId).toBeUndefined();
    expect(t.service.restartSecMs).toBe(100);
    expect(t.warnings).toEqual([
      { line: 3, message: 'RestartSec=: "" is not a time span (examples: 10s, 500ms, 1min 30s, 2h) (ignored in the template, where %i is empty; checked again in each instance)' },
      { line: 5, message: 'MachineMetadata=: "hostname=" is not key=value (ignored in the template, where %i is empty; checked again in each instance)' },
    ]);
  });

  it("checks each instance with its own %i", () => {
    const i = parseUnitFile("pinned@7.service", tpl);
    expect(i.service.restartSecMs).toBe(7000);
    expect(i.fleet).toMatchObject({ machineId: "7", machineMetadata: { hostname: ["7"] } });
    expect(i.warnings).toEqual([]);
    const e = failure(() => parseUnitFile("pinned@soon.service", tpl));
    expect(e.message).toBe('line 3: RestartSec=: "soon" is not a time span (examples: 10s, 500ms, 1min 30s, 2h)');
  });

  it("still rejects a template whose error does not come from a specifier", () => {
    const e = failure(() => parseUnitFile("t@.service", "[Service]\nExecStart=/bin/true\nRestart=sometimes\n"));
    expect(e.line).toBe(3);
    const e2 = failure(() => parseUnitFile("t@.service", "[Service]\nExecStart=/bin/true\nRestartSec=never\n"));
    expect(e2.line).toBe(3);
  });
});

describe("hash and cache", () => {
  it("hashes contents with sha1; listings show 7 hex", () => {
    expect(unitHash("")).toBe("da39a3ee5e6b4b0d3255bfef95601890afd80709");
    expect(unitHash(RUN)).toMatch(/^[0-9a-f]{40}$/);
    expect(unitHash(RUN)).not.toBe(unitHash(RUN + "\n"));
    expect(shortHash(unitHash(""))).toBe("da39a3e");
  });

  it("returns the same frozen result for the same name and contents, and another for another name", () => {
    clearUnitCache();
    const a = parseUnitFileCached("s@1", "[Service]\nExecStart=/bin/sleep %i\n");
    const b = parseUnitFileCached("s@1", "[Service]\nExecStart=/bin/sleep %i\n");
    const c = parseUnitFileCached("s@2", "[Service]\nExecStart=/bin/sleep %i\n");
    expect(b).toBe(a);
    expect(Object.isFrozen(a.service.execStart[0]!.argv)).toBe(true);
    expect(c.service.execStart[0]!.argv).toEqual(["/bin/sleep", "2"]);
  });

  it("remembers a bad unit's error", () => {
    clearUnitCache();
    const bad = "[Service]\nRestart=sometimes\nExecStart=/bin/true\n";
    const e1 = failure(() => parseUnitFileCached("bad", bad));
    const e2 = failure(() => parseUnitFileCached("bad", bad, unitHash(bad)));
    expect(e2).toBe(e1);
    expect(e1.line).toBe(2);
  });
});
