// The unit state publisher against a recording KV: latest state only (coalesced), the systemd
// triple derived from the task state, re-put every TTL/2, failed writes retried, own records
// removed on a clean stop.
import { describe, expect, test } from "vitest";
import type { KV } from "@nats-io/kv";
import { UnitStatePublisher, stateRecord } from "../../src/agent/unit-state-publisher.js";
import { decode } from "../../src/protocol/codec.js";
import { keys } from "../../src/protocol/names.js";
import { silentLogger } from "../../src/log.js";
import { check } from "../helpers/check.js";
import type { TaskStatus } from "../../src/agent/worker-store.js";

function recordingKv(failFirst = 0) {
  const puts: { key: string; value: Record<string, unknown> }[] = [];
  const deletes: string[] = [];
  let failures = failFirst;
  const kv = {
    put: async (key: string, value: Uint8Array) => {
      if (failures > 0) {
        failures--;
        throw new Error("TIMEOUT");
      }
      puts.push({ key, value: decode(value) as Record<string, unknown> });
      return puts.length;
    },
    delete: async (key: string) => {
      deletes.push(key);
    },
  } as unknown as KV;
  return { kv, puts, deletes };
}

const st = (taskState: TaskStatus["taskState"], extra: Partial<TaskStatus> = {}): TaskStatus => ({ taskState, hash: "abc1234", restarts: 0, since: 1, ...extra });

describe("unit state publisher", () => {
  test("coalesces to the latest state and derives LOAD/ACTIVE/SUB", async () => {
    const { kv, puts } = recordingKv();
    const p = new UnitStatePublisher({ kv, machineId: "m1", ttlMs: 60_000, log: silentLogger });
    p.start();
    for (const s of ["preparing", "ready", "starting"] as const) p.update("a.service", st(s));
    p.update("a.service", st("running", { pid: 42 }));
    await check(() => puts.length >= 1, 2000, "a put");
    await p.flush();
    expect(puts).toHaveLength(1);
    expect(puts[0]!.key).toBe(keys.state("a.service", "m1"));
    expect(puts[0]!.value).toMatchObject({ unit: "a.service", machineId: "m1", taskState: "running", load: "loaded", active: "active", sub: "running", pid: 42 });
    await p.stop(false);
  });

  test("re-puts every TTL/2, retries failed writes, removes its records on a clean stop", async () => {
    const { kv, puts, deletes } = recordingKv(1);
    const p = new UnitStatePublisher({ kv, machineId: "m1", ttlMs: 400, log: silentLogger });
    p.start();
    p.update("a.service", st("failed", { exitCode: 3, error: "exited with status 3" }));
    p.update("b.service", st("running", { pid: 7 }));
    await check(() => puts.filter((x) => x.key === keys.state("a.service", "m1")).length >= 3, 3000, "a.service put again and again");
    expect(puts.some((x) => x.key === keys.state("b.service", "m1"))).toBe(true);
    p.remove("b.service");
    await check(() => deletes.includes(keys.state("b.service", "m1")), 2000, "b.service deleted");
    await p.stop(true);
    expect(deletes).toContain(keys.state("a.service", "m1"));
  });

  test("stateRecord carries exit code, signal and error only when set", () => {
    const r = stateRecord("x.service", "m1", st("shutdown", { signal: "SIGKILL" }), 5);
    expect(r).toEqual({ unit: "x.service", machineId: "m1", hash: "abc1234", taskState: "shutdown", load: "loaded", active: "inactive", sub: "dead", restarts: 0, since: 1, updatedAt: 5, signal: "SIGKILL" });
  });
});
