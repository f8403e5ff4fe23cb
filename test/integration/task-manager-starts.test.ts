// A unit restarted over and over (Restart=always, a start limit it never reaches) keeps a start
// history no longer than StartLimitBurst: the list used to grow by one entry per restart, for
// as long as the agent ran. A real TaskManager, real processes, a real worker store.
import { afterAll, describe, expect, test } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { check } from "../helpers/check.js";
import { killStateDirWorkloads, unitHash } from "../helpers/agent-host.js";
import { createLogger } from "../../src/log.js";
import { ProcessExecutor } from "../../src/exec/process-executor.js";
import { WorkerStore } from "../../src/agent/worker-store.js";
import { TaskManager } from "../../src/agent/task-manager.js";
import type { TaskStatus } from "../../src/agent/worker-store.js";
import { parseUnitFile } from "../../src/unit/index.js";

const dirs: string[] = [];
const stores: WorkerStore[] = [];
afterAll(async () => {
  for (const s of stores) await s.close();
  for (const d of dirs) {
    killStateDirWorkloads(d);
    rmSync(d, { recursive: true, force: true });
  }
});

describe("task manager", () => {
  test("40 restarts of a unit that exits at once: the start history stays within StartLimitBurst", async () => {
    const dir = mkdtempSync(join(tmpdir(), "flotilla-tm-"));
    dirs.push(dir);
    const store = new WorkerStore(dir);
    stores.push(store);
    store.open();
    const log = createLogger();
    const unit = "flap.service";
    // Starts come tens of ms apart (a spawn each); 3 within 5 ms never happens: no limit hit.
    const contents = "[Service]\nExecStart=/bin/true\nRestart=always\nRestartSec=0\nStartLimitBurst=3\nStartLimitIntervalSec=5ms\n";
    const statuses: TaskStatus[] = [];
    const tm = new TaskManager({
      entry: { unit, machineId: "m1", hash: unitHash(contents), desiredState: "launched", contents, epoch: 1, scheduledAt: Date.now() },
      target: "launched",
      machineId: "m1",
      executor: new ProcessExecutor({ stateDir: dir, log }),
      store,
      parse: (name, c) => parseUnitFile(name, c),
      report: (_u, s) => void statuses.push(s),
      log,
    });
    await tm.start();
    let longest = 0;
    await check(() => {
      longest = Math.max(longest, tm.startHistory.length);
      return (tm.status?.restarts ?? 0) >= 40;
    }, 40_000, "40 restarts", 5);
    await tm.stop();
    await tm.detach();
    expect(statuses.some((s) => s.error?.includes("start limit"))).toBe(false);
    expect(longest).toBeGreaterThan(0);
    expect(longest).toBeLessThanOrEqual(3);
    expect(tm.startHistory.length).toBeLessThanOrEqual(3);
  });
});

describe("a task recorded in another boot or PID namespace", () => {
  test("is started again, not reported failed: its process went with the host or container (a restarted agent container)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "flotilla-tm-"));
    dirs.push(dir);
    const log = createLogger();
    const unit = "boot.service";
    const contents = "[Service]\nExecStart=/bin/sleep 600\n";
    const entry = { unit, machineId: "m1", hash: unitHash(contents), desiredState: "launched" as const, contents, epoch: 1, scheduledAt: Date.now() };
    // What the worker store held when the container stopped: running, with a run record of a
    // PID namespace that is gone (its pid may well name another process here).
    const before = new WorkerStore(dir);
    before.open();
    await before.putTask({ entry, target: "launched", assigned: true });
    await before.putStatus(unit, { taskState: "running", hash: entry.hash, pid: 1, restarts: 0, since: Date.now() });
    await before.putRun(unit, { supervisorPid: 1, startTime: 1, mainPid: 1, startedAt: Date.now(), host: "another-boot/pid:[1]" });
    await before.close();
    const store = new WorkerStore(dir);
    stores.push(store);
    const { resume } = await store.init();
    const executor = new ProcessExecutor({ stateDir: dir, log });
    const statuses: TaskStatus[] = [];
    const tm = new TaskManager({
      entry,
      target: "launched",
      machineId: "m1",
      executor,
      store,
      parse: (name, c) => parseUnitFile(name, c),
      report: (_u, s) => void statuses.push(s),
      log,
      resume: resume.find((t) => t.entry.unit === unit),
    });
    await tm.start();
    const running = await check(() => statuses.find((s) => s.taskState === "running" && s.pid !== undefined && s.pid !== 1), 10_000, "running again");
    expect(running.restarts).toBe(0);
    expect(statuses.some((s) => s.taskState === "failed")).toBe(false);
    await tm.stop();
    await tm.detach();
  });
});
