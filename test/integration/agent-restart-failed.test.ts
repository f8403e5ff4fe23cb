// A unit that ended `failed` stays failed across an agent restart: the worker store keeps its
// last status, and the restarted agent reports it as it was instead of running the unit again
// (systemd does not re-run a failed unit either; `start` does). The unit's command appends to a
// marker file, so "ran once" is read from the disk, not from anything the agent says.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { mkdtempSync, readFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ChildProcess } from "node:child_process";
import { NatsServer, uniquePrefix } from "../helpers/nats-server.js";
import { check, holds } from "../helpers/check.js";
import { stopChild } from "../helpers/cli.js";
import { hostContext, killStateDirWorkloads, readState, schedule, spawnAgentHost } from "../helpers/agent-host.js";

let server: NatsServer;
const children: ChildProcess[] = [];
const stateDirs: string[] = [];

beforeAll(async () => {
  server = await NatsServer.start();
});

afterAll(async () => {
  for (const c of children) await stopChild(c, "SIGKILL").catch(() => undefined);
  for (const d of stateDirs) killStateDirWorkloads(d);
  await server?.dispose();
});

const runs = (marker: string) => (existsSync(marker) ? readFileSync(marker, "utf8").split("\n").filter(Boolean).length : 0);

describe("agent restart", () => {
  test.each(["SIGKILL", "SIGTERM"] as const)(
    "a Restart=no unit that exited 1 is still failed after the agent restarts (%s), and did not run again",
    async (signal) => {
      const prefix = uniquePrefix("failed");
      const stateDir = mkdtempSync(join(tmpdir(), "flotilla-agent-"));
      stateDirs.push(stateDir);
      const marker = join(mkdtempSync(join(tmpdir(), "flotilla-marker-")), "runs");
      const { ctx, nc } = await hostContext({ url: server.url, prefix, machineId: "m1" });
      const b = ctx.buckets;
      const unit = "fails.service";

      const first = spawnAgentHost({ url: server.url, prefix, machineId: "m1", stateDir });
      children.push(first);
      await schedule(b, "m1", unit, `[Service]\nExecStart=/bin/sh -c "echo ran >> ${marker}; exit 1"\nRestart=no\n`);
      const failed = await check(async () => {
        const r = await readState(b, unit, "m1");
        return r?.taskState === "failed" && r;
      }, 20_000, `${unit} failed`);
      expect(failed.exitCode).toBe(1);
      expect(runs(marker)).toBe(1);

      await stopChild(first, signal);
      const restartedAt = Date.now();
      const second = spawnAgentHost({ url: server.url, prefix, machineId: "m1", stateDir });
      children.push(second);
      const after = await check(async () => {
        const r = await readState(b, unit, "m1");
        return r && r.updatedAt >= restartedAt && r;
      }, 20_000, `${unit} reported by the restarted agent`).catch((e) => {
        throw new Error(`${(e as Error).message}\n${second.output()}`);
      });
      expect(after.taskState).toBe("failed");
      expect(after.exitCode).toBe(1);
      // Long enough for a re-run (a /bin/sh that exits at once) to have shown up several times over.
      await holds(async () => runs(marker) === 1 && (await readState(b, unit, "m1"))?.taskState === "failed", 1500, "ran once and still failed");
      await stopChild(second, "SIGKILL");
      await nc.close();
    },
  );
});
