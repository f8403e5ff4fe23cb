// Unit files from fleet's own examples/ and functional/fixtures/units/ (and the CoreOS docs'
// fleet walkthrough), parsed as fleet would take them: proof that a fleet user's files work.
import { describe, expect, it } from "vitest";
import {
  conflictsWith,
  isGlobal,
  matchesMetadata,
  parseUnitFile,
  replaces,
  explainMetadata,
  formatMissing,
} from "../../src/unit/index.js";

const LOOP = `ExecStart=/bin/bash -c "while true; do echo Hello, World!; sleep 1; done"`;
const LOOP_ARGV = ["/bin/bash", "-c", "while true; do echo Hello, World!; sleep 1; done"];

const fixtures: Record<string, string> = {
  // fleet/examples
  "hello.service": `[Unit]\nDescription=Hello World\n\n[Service]\nExecStart=/bin/bash -c "while true; do echo \\"Hello, world\\"; sleep 1; done"\n`,
  "ping.service": `[Unit]\nDescription=PING\n\n[Service]\nExecStart=/bin/bash -c "while true; do echo \\"ping\\"; sleep 1; done"\n`,
  "pong.service": `[Unit]\nDescription=PONG\n\n[Service]\nExecStart=/bin/bash -c "while true; do echo \\"pong\\"; sleep 1; done"\n\n[X-Fleet]\nMachineOf=ping.service\n`,
  "simplehttp.service": `[Unit]\nDescription=Serves stuff over http\n\n[Service]\nExecStart=/usr/bin/python -m SimpleHTTPServer\n\n[Install]\nWantedBy=local.target\n`,
  "web@.service": `[Unit]\nDescription=Web Service\n\n[Service]\nExecStart=/usr/bin/python -m SimpleHTTPServer %I\n`,
  "socket-activated.service": `[Unit]\nDescription=Socket-Activated Web Service\n\n[Service]\nExecStart=/usr/bin/python -c "import socket; import os; fd = 3 + int(os.environ.get(\\"LISTEN_FDS\\")) -1; s = socket.fromfd(fd, socket.AF_INET, socket.SOCK_STREAM); s.listen(1); client, _ = s.accept(); client.send(\\"HTTP/1.1 200 OK\\\\r\\\\nContent-Length: 3\\\\r\\\\n\\\\r\\\\nXXX\\\\r\\\\n\\\\r\\\\n\\"); client.close()"\n`,
  // fleet/functional/fixtures/units
  "fixture-hello.service": `[Service]\n${LOOP}\n`,
  "hello@.service": `[Service]\nExecStart=/bin/bash -c "while true; do echo Hello, World %i!; sleep 1; done"\n`,
  "single@.service": `[Service]\nExecStart=/bin/bash -c "while true; do echo 'Hello, World (@%i)!'; sleep 1; done"\n`,
  "global.service": `[Service]\nExecStart=/bin/bash -c "while true; do echo Hello, Global World!; sleep 1; done"\n\n[X-Fleet]\nGlobal=true\n`,
  "global@.service": `[Service]\nExecStart=/bin/bash -c "while true; do echo 'Hello, Global World (@%i)!'; sleep 1; done"\n\n[X-Fleet]\nGlobal=true\n`,
  "conflict.0.service": `[Unit]\nDescription=Test Unit\n\n[Service]\n${LOOP}\n\n[X-Fleet]\nConflicts=conflict.*.service\n`,
  "conflict.multiple.1.service": `[Unit]\nDescription=Test Unit\n\n[Service]\n${LOOP}\n\n[X-Fleet]\nConflicts=conflict.2.service conflict.1.service conflict.0.service\n`,
  "conflict-global.1.service": `[Unit]\nDescription=Test Unit\n\n[Service]\n${LOOP}\n\n[X-Fleet]\nGlobal=true\nConflicts=conflict-global.*.service\n`,
  "conflicts-with-hello.service": `[Unit]\nDescription=Test Unit\n\n[Service]\n${LOOP}\n\n[X-Fleet]\nX-Conflicts=hello.service\n`,
  "ping.0.service": `[Unit]\nDescription=PING\n\n[Service]\nExecStart=/bin/bash -c "while true; do echo ping; sleep 1; done"\n`,
  "pong.0.service": `[Unit]\nDescription=PONG\n\n[Service]\nExecStart=/bin/bash -c "while true; do echo pong; sleep 1; done"\n\n[X-Fleet]\nMachineOf=ping.0.service\n`,
  "pong.2.service": `[Unit]\nDescription=PONG\n\n[Service]\nExecStart=/bin/bash -c "while true; do echo pong; sleep 1; done"\n\n[X-Fleet]\nX-ConditionMachineOf=ping.2.service\n`,
  "discovery.service": `[Unit]\nBindsTo=hello.service\n\n[Service]\nExecStart=/bin/bash -c "while true; do echo discovery.service unit file; sleep 1; done"\n\n[Install]\nWantedBy=hello.service\n\n[X-Fleet]\nMachineOf=hello.service\n`,
  "metadata@.service": `[Service]\nExecStart=/bin/bash -c "while true; do echo Hello, World %i!; sleep 1; done"\n\n[X-Fleet]\nMachineMetadata=hostname=%i\n`,
  "metadata-op.service": `[Service]\n${LOOP}\n\n[X-Fleet]\nMachineMetadata="ram>=1024"\n`,
  "pin@.service": `[Service]\n${LOOP}\n\n[X-Fleet]\nMachineID=%i\n`,
  "replace.0.service": `[Unit]\nDescription=Test Unit\n\n[Service]\n${LOOP}\n`,
  "replace-kick0.service": `[Unit]\nDescription=Test Unit\n\n[Service]\n${LOOP}\n\n[X-Fleet]\nReplaces=replace.0.service\n`,
  "replace-sync.service": `[Service]\nExecStartPre=/bin/bash -c "echo 'sync'"\n${LOOP}\nExecStop=/bin/bash -c "echo 'stopping'"\nExecStopPost=/bin/bash -c "sleep 3; touch /tmp/fleetSyncReplaceFile"\n`,
  // The CoreOS "launching containers with fleet" walkthrough: a docker unit and its sidekick.
  "apache@.service": `[Unit]
Description=My Apache Frontend
After=docker.service
Requires=docker.service

[Service]
TimeoutStartSec=0
ExecStartPre=-/usr/bin/docker kill apache%i
ExecStartPre=-/usr/bin/docker rm apache%i
ExecStartPre=/usr/bin/docker pull coreos/apache
ExecStart=/usr/bin/docker run --rm --name apache%i -p 80:80 coreos/apache /usr/sbin/apache2ctl -D FOREGROUND
ExecStop=/usr/bin/docker stop apache%i

[X-Fleet]
Conflicts=apache@*.service
`,
  "apache-discovery@.service": `[Unit]
Description=Announce Apache%i
BindsTo=apache@%i.service
After=apache@%i.service

[Service]
ExecStart=/bin/sh -c "while true; do etcdctl set /services/website/apache%i '{ \\"host\\": \\"%H\\", \\"port\\": 80, \\"version\\": \\"52c7248a14\\" }' --ttl 60;sleep 45;done"
ExecStop=/usr/bin/etcdctl rm /services/website/apache%i

[X-Fleet]
MachineOf=apache@%i.service
`,
};

function parse(file: string, as?: string) {
  const name = as ?? file.replace(/^fixture-/, "");
  return parseUnitFile(name, fixtures[file]!);
}

describe("fleet's examples and functional fixtures parse", () => {
  it.each(Object.keys(fixtures))("%s", (file) => {
    const name = file.replace(/^fixture-/, "").replace("@.service", "@1.service");
    const u = parseUnitFile(name, fixtures[file]!);
    expect(u.name).toBe(name);
    expect(u.service.execStart).toHaveLength(1);
    expect(u.service.execStart[0]!.argv[0]).toMatch(/^\/usr\/bin\/|^\/bin\//);
  });

  it.each(Object.keys(fixtures).filter((f) => f.endsWith("@.service")))("the template %s itself can be submitted", (file) => {
    const t = parseUnitFile(file, fixtures[file]!);
    expect(t.template).toBe(file);
    expect(t.instance).toBeUndefined();
  });

  it("hello.service: the quoted bash loop becomes exactly three arguments", () => {
    expect(parse("hello.service").service.execStart[0]!.argv).toEqual([
      "/bin/bash",
      "-c",
      'while true; do echo "Hello, world"; sleep 1; done',
    ]);
    expect(parse("fixture-hello.service").service.execStart[0]!.argv).toEqual(LOOP_ARGV);
    expect(parse("hello.service").description).toBe("Hello World");
  });

  it("socket-activated.service: escaped quotes and \\\\r\\\\n reach python untouched", () => {
    const argv = parse("socket-activated.service").service.execStart[0]!.argv;
    expect(argv.slice(0, 2)).toEqual(["/usr/bin/python", "-c"]);
    expect(argv).toHaveLength(3);
    expect(argv[2]).toContain('os.environ.get("LISTEN_FDS")');
    expect(argv[2]).toContain('client.send("HTTP/1.1 200 OK\\r\\nContent-Length: 3\\r\\n\\r\\nXXX\\r\\n\\r\\n")');
  });

  it("web@8000.service: %I is the instance", () => {
    expect(parse("web@.service", "web@8000.service").service.execStart[0]!.argv).toEqual([
      "/usr/bin/python",
      "-m",
      "SimpleHTTPServer",
      "8000",
    ]);
  });

  it("hello@N / single@N: each instance gets its own %i", () => {
    for (const n of ["1", "2", "9"]) {
      expect(parse("hello@.service", `hello@${n}.service`).service.execStart[0]!.argv[2]).toBe(
        `while true; do echo Hello, World ${n}!; sleep 1; done`,
      );
      expect(parse("single@.service", `single@${n}`).service.execStart[0]!.argv[2]).toBe(
        `while true; do echo 'Hello, World (@${n})!'; sleep 1; done`,
      );
    }
  });

  it("simplehttp.service and discovery.service: [Install] and BindsTo are ignored with warnings", () => {
    expect(parse("simplehttp.service").warnings).toEqual([
      { line: 7, message: "[Install] is ignored: flotilla decides where and when units run" },
    ]);
    const d = parse("discovery.service");
    expect(d.fleet.machineOf).toEqual(["hello.service"]);
    expect(d.warnings.map((w) => w.line)).toEqual([7, 2]);
  });

  it("replace-sync.service: ExecStartPre and ExecStop run; ExecStopPost is reported as unsupported", () => {
    const u = parse("replace-sync.service");
    expect(u.service.execStartPre[0]!.argv).toEqual(["/bin/bash", "-c", "echo 'sync'"]);
    expect(u.service.execStop[0]!.argv).toEqual(["/bin/bash", "-c", "echo 'stopping'"]);
    expect(u.warnings).toEqual([{ line: 5, message: "[Service] ExecStopPost= is ignored: not supported by flotilla" }]);
  });
});

describe("fleet's scheduling fixtures mean the same here", () => {
  it("global.service and global@N are global; hello is not", () => {
    expect(isGlobal(parse("global.service"))).toBe(true);
    expect(isGlobal(parse("global@.service", "global@3.service"))).toBe(true);
    expect(isGlobal(parse("fixture-hello.service"))).toBe(false);
  });

  it("conflict.*: every pair of conflict.N units conflicts, through one glob", () => {
    const units = [0, 1, 2].map((n) => parse("conflict.0.service", `conflict.${n}.service`));
    expect(conflictsWith(units[0]!, units[1]!)).toBe(true);
    expect(conflictsWith(units[1]!, units[2]!)).toBe(true);
    expect(conflictsWith(units[0]!, parse("fixture-hello.service"))).toBe(false);
  });

  it("conflict.multiple.1: several names on one Conflicts= line", () => {
    const u = parse("conflict.multiple.1.service", "conflict.multiple.1.service");
    expect(u.fleet.conflicts).toEqual(["conflict.2.service", "conflict.1.service", "conflict.0.service"]);
    const plain = (name: string) => ({ name, fleet: { conflicts: [] } });
    expect(conflictsWith(u, plain("conflict.1.service"))).toBe(true);
    expect(conflictsWith(u, plain("conflict.3.service"))).toBe(false);
  });

  it("conflict-global.1: a global unit may declare Conflicts (fleet accepts it)", () => {
    const u = parse("conflict-global.1.service", "conflict-global.1.service");
    expect(u.fleet.global).toBe(true);
    expect(u.fleet.conflicts).toEqual(["conflict-global.*.service"]);
  });

  it("conflicts-with-hello: the deprecated X-Conflicts still conflicts, with a warning", () => {
    const u = parse("conflicts-with-hello.service");
    expect(conflictsWith(u, parse("fixture-hello.service"))).toBe(true);
    expect(u.warnings).toEqual([{ line: 8, message: "X-Conflicts= is deprecated; write Conflicts=" }]);
  });

  it("ping/pong: MachineOf pairs (also the deprecated X-ConditionMachineOf)", () => {
    expect(parse("pong.service").fleet.machineOf).toEqual(["ping.service"]);
    expect(parse("pong.0.service").fleet.machineOf).toEqual(["ping.0.service"]);
    expect(parse("pong.2.service").fleet.machineOf).toEqual(["ping.2.service"]);
  });

  it("pin@<machine>: MachineID from the instance", () => {
    expect(parse("pin@.service", "pin@2c0e0ba1.service").fleet.machineId).toBe("2c0e0ba1");
  });

  it("metadata@<host>: metadata from the instance", () => {
    const u = parse("metadata@.service", "metadata@smoke1.service");
    expect(u.fleet.machineMetadata).toEqual({ hostname: ["smoke1"] });
    expect(matchesMetadata(u.fleet.machineMetadata, { hostname: "smoke1" })).toBe(true);
    expect(matchesMetadata(u.fleet.machineMetadata, { hostname: "smoke2" })).toBe(false);
  });

  it("metadata-op: ram>=1024 compares numbers", () => {
    const u = parse("metadata-op.service");
    expect(u.fleet.machineMetadata).toEqual({ "ram>": ["1024"] });
    expect(matchesMetadata(u.fleet.machineMetadata, { ram: "2048" })).toBe(true);
    expect(matchesMetadata(u.fleet.machineMetadata, { ram: "1024" })).toBe(true);
    expect(matchesMetadata(u.fleet.machineMetadata, { ram: "512" })).toBe(false);
    expect(matchesMetadata(u.fleet.machineMetadata, {})).toBe(false);
    expect(explainMetadata(u.fleet.machineMetadata, { ram: "512" }).map(formatMissing)).toEqual(["ram>=1024"]);
  });

  it("replace-kick0 replaces replace.0", () => {
    const u = parse("replace-kick0.service");
    expect(replaces(u, "replace.0.service")).toBe(true);
    expect(replaces(u, "replace.1.service")).toBe(false);
  });

  it("apache@N and its sidekick: conflicts between instances, the sidekick follows its instance", () => {
    const a1 = parse("apache@.service", "apache@1.service");
    const a2 = parse("apache@.service", "apache@2.service");
    const side = parse("apache-discovery@.service", "apache-discovery@1.service");
    expect(conflictsWith(a1, a2)).toBe(true);
    expect(conflictsWith(a1, side)).toBe(false);
    expect(side.fleet.machineOf).toEqual(["apache@1.service"]);
    expect(a1.service.execStartPre.map((c) => [c.argv.join(" "), c.ignoreFailure])).toEqual([
      ["/usr/bin/docker kill apache1", true],
      ["/usr/bin/docker rm apache1", true],
      ["/usr/bin/docker pull coreos/apache", false],
    ]);
    expect(a1.service.execStop[0]!.argv).toEqual(["/usr/bin/docker", "stop", "apache1"]);
    // %H is the host's name: left for the agent, which knows it.
    expect(side.service.execStart[0]!.argv[2]).toBe(
      `while true; do etcdctl set /services/website/apache1 '{ "host": "%H", "port": 80, "version": "52c7248a14" }' --ttl 60;sleep 45;done`,
    );
    const onHost = parseUnitFile("apache-discovery@1.service", fixtures["apache-discovery@.service"]!, { host: { hostname: "core-01" } });
    expect(onHost.service.execStart[0]!.argv[2]).toContain(`"host": "core-01"`);
    expect(a1.warnings.map((w) => w.message.split(":")[0])).toEqual([
      "[Unit] After= is ignored",
      "[Unit] Requires= is ignored",
      "[Service] TimeoutStartSec= is ignored",
    ]);
  });

  it("a misspelt [X-Flt] section (as in some fleet fixtures) is reported, not silently dropped", () => {
    const u = parseUnitFile("pong.service", `[Service]\n${LOOP}\n\n[X-Flt]\nMachineOf=ping.service\n`);
    expect(u.fleet.machineOf).toEqual([]);
    expect(u.warnings).toEqual([{ line: 4, message: "unknown section [X-Flt] is ignored" }]);
  });
});
