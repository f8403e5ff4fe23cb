// The process executor on its own: real processes, no NATS. What a unit file asks for
// (ExecStartPre, Environment, EnvironmentFile, WorkingDirectory, '-' prefixes) reaches the
// workload; exit codes and signals are recorded; a reused pid is never adopted.
import { afterAll, describe, expect, test } from "vitest";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ProcessExecutor, logFileOf } from "../../src/exec/process-executor.js";
import type { Controller, RunInfo } from "../../src/exec/executor.js";
import type { ServiceOptions } from "../../src/unit/types.js";
import { parseUnitFile } from "../../src/unit/index.js";
import { silentLogger } from "../../src/log.js";
import { killStateDirWorkloads, pidAlive } from "../helpers/agent-host.js";
import { check } from "../helpers/check.js";

const dir = mkdtempSync(join(tmpdir(), "flotilla-exec-"));
const executor = new ProcessExecutor({ stateDir: dir, log: silentLogger, pollMs: 20 });
const running: RunInfo[] = [];

afterAll(() => {
  for (const r of running) {
    try {
      process.kill(-r.supervisorPid, "SIGKILL");
    } catch {
      /* gone */
    }
  }
  killStateDirWorkloads(dir);
  rmSync(dir, { recursive: true, force: true });
});

function controller(unit: string, contents: string): Controller {
  const service: ServiceOptions = parseUnitFile(unit, contents).service;
  return executor.controller({ unit, hash: "h", service, machineId: "m1" });
}

describe("process executor", () => {
  test("ExecStartPre, Environment, EnvironmentFile and WorkingDirectory reach the workload", async () => {
    const envFile = join(dir, "env");
    writeFileSync(envFile, "# comment\nFROM_FILE='file value'\nBOTH=file\n");
    const c = controller(
      "env.service",
      `[Service]\nEnvironment="GREETING=hello there" BOTH=unit\nEnvironmentFile=${envFile}\nEnvironmentFile=-/nonexistent/env\nWorkingDirectory=${dir}\n` +
        `ExecStartPre=/bin/sh -c "echo pre ran in $$PWD"\nExecStartPre=-/bin/false\n` +
        `ExecStart=/bin/sh -c 'echo "$GREETING|$FROM_FILE|$BOTH|$FLOTILLA_UNIT|$$PWD"; exit 7'\n`,
    );
    await c.prepare();
    const run = await c.start();
    running.push(run);
    expect(run.mainPid).toBeGreaterThan(0);
    const exit = await c.wait();
    expect(exit).toEqual({ exitCode: 7 });
    const log = readFileSync(logFileOf(dir, "env.service"), "utf8");
    expect(log).toContain(`pre ran in ${dir}`);
    expect(log).toContain(`hello there|file value|unit|env.service|${dir}`);
  });

  test("a failing ExecStartPre is fatal; a missing EnvironmentFile or WorkingDirectory is fatal at prepare", async () => {
    const pre = controller("pre.service", "[Service]\nExecStartPre=/bin/false\nExecStart=/bin/sleep 5\n");
    await pre.prepare();
    await expect(pre.start()).rejects.toMatchObject({ temporary: false, message: expect.stringMatching(/ExecStartPre=\/bin\/false exited with status 1/) });
    const env = controller("envf.service", "[Service]\nEnvironmentFile=/nonexistent/env\nExecStart=/bin/sleep 5\n");
    await expect(env.prepare()).rejects.toMatchObject({ temporary: false, message: expect.stringMatching(/EnvironmentFile=\/nonexistent\/env/) });
    const wd = controller("wd.service", "[Service]\nWorkingDirectory=/nonexistent/dir\nExecStart=/bin/sleep 5\n");
    await expect(wd.prepare()).rejects.toMatchObject({ message: expect.stringMatching(/WorkingDirectory=\/nonexistent\/dir/) });
  });

  test("shutdown: SIGTERM to the group, recorded as the signal; ExecStop runs with MAINPID", async () => {
    const c = controller("term.service", "[Service]\nExecStart=/bin/sleep 600\n");
    await c.prepare();
    const run = await c.start();
    running.push(run);
    expect(await c.shutdown()).toEqual({ signal: "SIGTERM" });
    expect(pidAlive(run.mainPid)).toBe(false);

    const s = controller("stop.service", '[Service]\nExecStart=/bin/sleep 600\nExecStop=/bin/sh -c "echo stopping $$MAINPID; kill -INT $$MAINPID"\n');
    await s.prepare();
    const r2 = await s.start();
    running.push(r2);
    expect(await s.shutdown()).toEqual({ signal: "SIGINT" });
    expect(readFileSync(logFileOf(dir, "stop.service"), "utf8")).toContain(`stopping ${r2.mainPid}`);
  });

  test("a stop right after the start still stops by SIGTERM / ExecStop, without waiting TimeoutStopSec", async () => {
    // The signal used to land on the supervisor's fork before it exec'd the workload, where
    // the supervisor's TERM trap swallowed it (or the env step ignored SIGINT): SIGKILL after
    // TimeoutStopSec, about one stop in four. One at a time, as `start` then `stop` would.
    const results: { unit: string; exit: unknown; alive: boolean }[] = [];
    const expected: typeof results = [];
    for (let i = 0; i < 16; i++) {
      const unit = `quick${i}.service`;
      const viaExecStop = i % 4 === 3;
      const stop = viaExecStop ? 'ExecStop=/bin/sh -c "kill -INT $$MAINPID"\n' : "";
      const c = controller(unit, `[Service]\nExecStart=/bin/sleep 600\nTimeoutStopSec=2\n${stop}`);
      await c.prepare();
      const run = await c.start();
      running.push(run);
      results.push({ unit, exit: await c.shutdown(), alive: pidAlive(run.mainPid) });
      expected.push({ unit, exit: { signal: viaExecStop ? "SIGINT" : "SIGTERM" }, alive: false });
    }
    expect(results).toEqual(expected);
  });

  test("adopt: alive by pid + start time; a reused pid (other start time) is not adopted; the exit file tells how it ended", async () => {
    const c = controller("adopt.service", "[Service]\nExecStart=/bin/sleep 600\n");
    await c.prepare();
    const run = await c.start();
    running.push(run);
    const fresh = controller("adopt.service", "[Service]\nExecStart=/bin/sleep 600\n");
    expect(await fresh.adopt(run)).toEqual({ alive: true, run });
    const impostor = controller("adopt.service", "[Service]\nExecStart=/bin/sleep 600\n");
    expect((await impostor.adopt({ ...run, startTime: run.startTime + 1 })).alive).toBe(false);
    process.kill(run.mainPid, "SIGKILL");
    expect(await fresh.wait()).toEqual({ signal: "SIGKILL" });
  });

  test("EnvironmentFile= and $VAR reach the workload as systemd reads them; '@' sets its argv[0]", async () => {
    // src/unit/env.ts is the one reading of both: escapes in double quotes, continuation
    // lines, a lone $VAR split into words, ${VAR} inside a word.
    const envFile = join(dir, "env-systemd");
    writeFileSync(envFile, 'QUOTED="say \\"hi\\""\nCONT=one \\\ntwo\nOPTS=-a  -b\nexport BAD=1\n');
    const c = controller(
      "argv.service",
      `[Service]\nEnvironmentFile=${envFile}\n` +
        `ExecStart=/bin/sh -c 'for a in "$0" "$@"; do echo "<$a>"; done; echo "q=$QUOTED c=$CONT"' $OPTS \${CONT}x\n`,
    );
    await c.prepare();
    await c.start();
    expect(await c.wait()).toEqual({ exitCode: 0 });
    expect(readFileSync(logFileOf(dir, "argv.service"), "utf8")).toBe('<-a>\n<-b>\n<one twox>\nq=say "hi" c=one two\n');

    const named = controller("named.service", "[Service]\nExecStart=@/bin/sleep napper 600\n");
    await named.prepare();
    const run = await named.start();
    running.push(run);
    await check(() => readFileSync(`/proc/${run.mainPid}/cmdline`, "utf8") === "napper\0" + "600\0", 5000, "argv[0] is napper");
    expect(await named.shutdown()).toEqual({ signal: "SIGTERM" });
  });
});
