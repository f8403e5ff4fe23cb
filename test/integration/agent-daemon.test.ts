// The whole path as a user walks it: a real `flotilla daemon` (engine + agent), the real CLI.
// start → list-units shows it active/running → journal shows its output → stop → inactive →
// destroy → gone, and the process is gone with it.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NatsServer, uniquePrefix } from "../helpers/nats-server.js";
import { check } from "../helpers/check.js";
import { runCli } from "../helpers/cli.js";
import { startDaemon, stopAllDaemons, type RunningDaemon } from "../helpers/daemon.js";
import { killStateDirWorkloads, pidAlive } from "../helpers/agent-host.js";

let server: NatsServer;
let daemon: RunningDaemon | undefined;
const others: RunningDaemon[] = [];

beforeAll(async () => {
  server = await NatsServer.start();
});

afterAll(async () => {
  for (const d of [daemon, ...others]) {
    if (!d) continue;
    await d.stop();
    killStateDirWorkloads(d.stateDir);
  }
  await server?.dispose();
});

type ListedUnit = { unit?: string; name?: string; machine?: string; active?: string; sub?: string; pid?: number };

describe("agent in a real daemon", () => {
  test("start, list-units, journal, stop, destroy through the CLI", async () => {
    const prefix = uniquePrefix("e2e");
    daemon = await startDaemon({ server, prefix, machineId: "e2e1" });
    const cli = (...args: string[]) => runCli(["--nats", server.url, "--prefix", prefix, ...args], { timeoutMs: 60_000 });
    const dir = mkdtempSync(join(tmpdir(), "flotilla-units-"));
    const file = join(dir, "hello.service");
    writeFileSync(file, '[Service]\nExecStart=/bin/sh -c "echo hello from the daemon; exec sleep 600"\n');

    const started = await cli("start", file);
    expect(started.code, started.stderr).toBe(0);
    const listed = await check(async () => {
      const r = await cli("list-units", "--json");
      const rows = JSON.parse(r.stdout) as { unit?: string; name?: string; active?: string; sub?: string; pid?: number }[];
      const row = rows.find((x) => (x.unit ?? x.name) === "hello.service");
      return row?.active === "active" && row.sub === "running" && row;
    }, 20_000, "hello.service active/running in list-units --json");
    expect(listed).toBeTruthy();
    const table = await cli("list-units");
    expect(table.stdout).toMatch(/hello\.service\s+\S+\s+active\s+running/);

    const journal = await check(async () => {
      const r = await cli("journal", "hello.service");
      return r.stdout.includes("hello from the daemon") && r;
    }, 15_000, "output in the journal");
    expect(journal.code).toBe(0);

    const stopped = await cli("stop", "hello.service");
    expect(stopped.code, stopped.stderr).toBe(0);
    await check(async () => {
      const r = await cli("list-units");
      return /hello\.service\s+\S+\s+inactive\s+dead/.test(r.stdout);
    }, 20_000, "hello.service inactive/dead");

    const destroyed = await cli("destroy", "hello.service");
    expect(destroyed.code, destroyed.stderr).toBe(0);
    await check(async () => !(await cli("list-units")).stdout.includes("hello.service"), 20_000, "hello.service gone from list-units");
    const ps = await cli("list-units", "--json");
    expect(ps.stdout).not.toContain("hello.service");
    // No process of it is left.
    const pid = (listed as { pid?: number }).pid;
    if (pid) await check(() => !pidAlive(pid), 10_000, "process gone");
  });

  test("a chatty task's output file is rotated past --task-log-max-size, and its output still reaches the journal", async () => {
    const prefix = uniquePrefix("rot");
    const d = await startDaemon({ server, prefix, machineId: "rot1", extraArgs: ["--task-log-max-size", "64K"] });
    others.push(d);
    const cli = (...args: string[]) => runCli(["--nats", server.url, "--prefix", prefix, ...args], { timeoutMs: 60_000 });
    const dir = mkdtempSync(join(tmpdir(), "flotilla-units-"));
    const file = join(dir, "chatty.service");
    // About 600 KB of numbered lines (nine times the limit), then quiet.
    writeFileSync(file, '[Service]\nExecStart=/bin/sh -c \'i=0; while [ $i -lt 20000 ]; do echo "line $i of the chatty unit"; i=$((i+1)); done; exec sleep 600\'\n');
    const started = await cli("start", file);
    expect(started.code, started.stderr).toBe(0);
    await check(async () => (await cli("journal", "-n", "1", "chatty.service")).stdout.includes("line 19999 of the chatty unit"), 30_000, "the last line in the journal");
    const log = join(d.stateDir, "logs", "chatty.service.log");
    // Once everything is sent, what is left in the file is under the limit; the part before is .1.
    const sizes = await check(() => {
      const now = statSync(log).size;
      return now < 64 * 1024 && { now, old: statSync(`${log}.1`).size };
    }, 10_000, "the log file cut back under 64K");
    expect(sizes.old).toBeGreaterThanOrEqual(64 * 1024);
    expect(readFileSync(`${log}.1`, "utf8")).toMatch(/^line \d+ of the chatty unit\n/);
    expect(d.output()).toContain("task log rotated");
  });

  test("global units on every machine, and a conflicting second global never placed", async () => {
    const prefix = uniquePrefix("glob");
    for (const id of ["ga", "gb", "gc"]) others.push(await startDaemon({ server, prefix, machineId: id }));
    const cli = (...args: string[]) => runCli(["--nats", server.url, "--prefix", prefix, ...args], { timeoutMs: 60_000 });
    const dir = mkdtempSync(join(tmpdir(), "flotilla-globals-"));
    const file = (name: string, fleet: string) => {
      writeFileSync(join(dir, name), `[Service]\nExecStart=/bin/sleep 600\n\n[X-Fleet]\nGlobal=true\n${fleet}`);
      return join(dir, name);
    };
    // Each names the other: whichever an agent looked at first used to run, and both did.
    const first = file("first-global.service", "Conflicts=second-global.service\n");
    const second = file("second-global.service", "Conflicts=first-global.service\n");
    // Submitted after the second: once it runs everywhere, every agent has seen the second.
    const last = file("third-global.service", "");
    const started = await cli("start", "--no-block", first, second, last);
    expect(started.code, started.stderr).toBe(0);

    const rows = async () => JSON.parse((await cli("list-units", "--json")).stdout) as ListedUnit[];
    const on = (list: ListedUnit[], unit: string, running = true) =>
      list
        .filter((r) => (r.unit ?? r.name) === unit && (!running || (r.active === "active" && r.sub === "running")))
        .map((r) => r.machine)
        .sort()
        .join();
    const settled = await check(async () => {
      const list = await rows();
      return on(list, "first-global.service") === "ga,gb,gc" && on(list, "third-global.service") === "ga,gb,gc" && list;
    }, 30_000, "first-global and third-global running on ga, gb, gc");
    expect(on(settled, "second-global.service", false)).toBe("");
    const running = await cli("status", "first-global.service");
    expect(running.stdout).toMatch(/Target: global \(ga\S*, gb\S*, gc\S*\)\n/);
    // status says why.
    const status = await cli("status", "second-global.service");
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain(
      "Target: global, not placed: conflicts with first-global.service (Conflicts=first-global.service in second-global.service); " +
        "first-global.service came first and keeps running",
    );

    // The workloads outlive their daemons by design; the helper stops the daemons this file
    // started and kills what they ran (the afterAll it registers does the same).
    const pids = settled.map((r) => r.pid).filter((p): p is number => typeof p === "number" && p > 0);
    expect(pids.length).toBe(6);
    expect(pids.every(pidAlive)).toBe(true);
    await stopAllDaemons();
    expect([daemon, ...others].every((d) => !d || d.child.exitCode !== null || d.child.signalCode !== null)).toBe(true);
    await check(() => !pids.some(pidAlive), 5000, "no workload of these daemons left");
  });
});
