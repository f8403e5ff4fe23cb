// The worker store on a real LMDB in a temp dir: what survives a reopen, and Init.
import { afterEach, describe, expect, test } from "vitest";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WorkerStore } from "../../src/agent/worker-store.js";
import type { ScheduleEntry } from "../../src/protocol/messages.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function entry(unit: string): ScheduleEntry {
  return { unit, machineId: "m1", hash: "abcdef0123", desiredState: "launched", contents: "[Service]\nExecStart=/bin/true\n", epoch: 1, scheduledAt: 1 };
}

describe("worker store", () => {
  test("tasks, statuses, runs and journal offsets survive a reopen; Init drops unassigned tasks", async () => {
    const dir = mkdtempSync(join(tmpdir(), "flotilla-store-"));
    dirs.push(dir);
    const s1 = new WorkerStore(dir);
    s1.open();
    await s1.putTask({ entry: entry("a.service"), target: "launched", assigned: true });
    await s1.putTask({ entry: entry("b.service"), target: "loaded", assigned: true });
    await s1.putStatus("a.service", { taskState: "running", hash: "abcdef0123", pid: 42, restarts: 1, since: 5 });
    await s1.putRun("a.service", { supervisorPid: 41, startTime: 777, mainPid: 42, startedAt: 5 });
    await s1.putJournalOffset("a.service", 1234);
    await s1.setAssigned("b.service", false);
    await s1.close();
    expect(existsSync(join(dir, "worker"))).toBe(true);

    const s2 = new WorkerStore(dir);
    const { resume, dropped } = await s2.init();
    expect(resume.map((t) => t.entry.unit)).toEqual(["a.service"]);
    expect(resume[0]).toMatchObject({
      target: "launched",
      assigned: true,
      status: { taskState: "running", pid: 42, restarts: 1 },
      run: { supervisorPid: 41, startTime: 777, mainPid: 42 },
      journalOffset: 1234,
    });
    expect(dropped.map((t) => t.entry.unit)).toEqual(["b.service"]);
    expect(s2.get("b.service")).toBeUndefined();
    expect(s2.units()).toEqual(["a.service"]);

    await s2.delete("a.service");
    expect(s2.get("a.service")).toBeUndefined();
    await s2.close();
  });

  test("drops writes that come once closing has begun, instead of throwing from a timer", async () => {
    const dir = mkdtempSync(join(tmpdir(), "flotilla-store-"));
    dirs.push(dir);
    const s = new WorkerStore(dir);
    s.open();
    await s.putTask({ entry: entry("a.service"), target: "launched", assigned: true });
    const uncaught: unknown[] = [];
    const onUncaught = (e: unknown) => void uncaught.push(e);
    process.on("uncaughtException", onUncaught);
    try {
      const closing = s.close();
      // a journal tail or a task finishing just as the agent stops
      expect(await s.putJournalOffset("a.service", 99)).toBe(false);
      await s.putStatus("a.service", { taskState: "complete", hash: "abcdef0123", restarts: 0, since: 6 });
      await s.delete("a.service");
      await closing;
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off("uncaughtException", onUncaught);
    }
    expect(uncaught).toEqual([]);
    // what was written before the close is all there is
    const again = new WorkerStore(dir);
    const { resume } = await again.init();
    expect(resume.map((t) => [t.entry.unit, t.status, t.journalOffset])).toEqual([["a.service", undefined, undefined]]);
    await again.close();
  });

  test("a journal position keeps its epoch across a reopen; a plain offset (older stores) still reads", async () => {
    const dir = mkdtempSync(join(tmpdir(), "flotilla-store-"));
    dirs.push(dir);
    const s1 = new WorkerStore(dir);
    s1.open();
    await s1.putTask({ entry: entry("a.service"), target: "launched", assigned: true });
    await s1.putTask({ entry: entry("old.service"), target: "launched", assigned: true });
    await s1.putJournalOffset("a.service", 4096, 1_700_000_000_123);
    await s1.putJournalOffset("old.service", 77); // as versions without epochs wrote it
    await s1.close();

    const s2 = new WorkerStore(dir);
    const { resume } = await s2.init();
    const byUnit = new Map(resume.map((t) => [t.entry.unit, t]));
    expect(byUnit.get("a.service")).toMatchObject({ journalOffset: 4096, journalEpoch: 1_700_000_000_123 });
    expect(byUnit.get("old.service")?.journalOffset).toBe(77);
    expect(byUnit.get("old.service")?.journalEpoch).toBeUndefined();
    expect(s2.journalPosition("a.service")).toEqual({ offset: 4096, epoch: 1_700_000_000_123 });
    expect(s2.journalPosition("old.service")).toEqual({ offset: 77 });
    expect(s2.journalPosition("none.service")).toBeUndefined();
    await s2.close();
  });
});
