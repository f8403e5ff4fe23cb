// `flotilla up`: a whole one-machine cluster from nothing (its own nats-server from nats.conf
// and a daemon), reachable as it says, and gone without a trace of processes on Ctrl-C.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { NatsServer, uniquePrefix } from "../helpers/nats-server.js";
import { check } from "../helpers/check.js";
import { runCli, spawnCli, stopChild } from "../helpers/cli.js";
import { portFree } from "../../src/cli/up.js";
import { killStateDirWorkloads } from "../helpers/workloads.js";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function freePorts(n: number): Promise<number[]> {
  const out: number[] = [];
  for (let p = 20_000 + Math.floor(Math.random() * 20_000); out.length < n; p++) if (await portFree(p)) out.push(p);
  return out;
}

let other: NatsServer;
beforeAll(async () => {
  other = await NatsServer.start();
});
afterAll(async () => {
  await other?.dispose();
});

describe("flotilla up", () => {
  it("starts nats-server and a daemon, prints how to reach them, and stops both on SIGINT", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "flotilla-up-"));
    const [port, http, ws] = await freePorts(3);
    const prefix = uniquePrefix("up");
    const child = spawnCli(["--prefix", prefix, "up", "--data-dir", dataDir, "--port", String(port), "--http-port", String(http), "--ws-port", String(ws), "--agent-ttl", "2s"]);
    let pids: number[] = [];
    try {
      await check(() => child.output().includes("Press Ctrl-C to stop.") || child.exitCode !== null, 30_000, "up to say it is up");
      expect(child.exitCode, child.output()).toBeNull();
      const out = child.output();
      expect(out).toContain(`export NATS_URL=nats://127.0.0.1:${port}`);
      expect(out).toContain("flotilla list-machines");
      expect(out).toContain(`req ${prefix}.api.list-machines ''`);
      const m = /nats-server pid (\d+), daemon pid (\d+)/.exec(out);
      expect(m).not.toBeNull();
      pids = [Number(m![1]), Number(m![2])];
      expect(pids.every(alive)).toBe(true);

      // Reachable the way it says: the CLI with NATS_URL, and a raw request.
      const r = await runCli(["--prefix", prefix, "list-machines", "-l"], { env: { NATS_URL: `nats://127.0.0.1:${port}` } });
      expect(r.code).toBe(0);
      const id = readFileSync(join(dataDir, "state", "machine-id"), "utf8").trim();
      expect(r.stdout).toContain(id);
      const nc = await connect({ servers: `nats://127.0.0.1:${port}` });
      const reply = await nc.request(`${prefix}.api.list-machines`, "", { timeout: 5000 });
      expect((JSON.parse(new TextDecoder().decode(reply.data)) as { id: string }[])[0]?.id).toBe(id);
      await nc.close();
      // Monitoring and WebSocket listen on loopback, as nats.conf says.
      const varz = (await (await fetch(`http://127.0.0.1:${http}/varz`)).json()) as { jetstream?: { config?: { store_dir?: string } } };
      expect(varz.jetstream?.config?.store_dir).toContain(dataDir);
      expect(await portFree(ws)).toBe(false);
      expect(existsSync(join(dataDir, "nats-server.log"))).toBe(true);
    } finally {
      expect(await stopChild(child, "SIGINT", 20_000)).toBe(0);
    }
    expect(child.output()).toContain("stopping the tasks, the daemon and nats-server");
    // No leftover processes, ports released.
    await check(() => pids.every((p) => !alive(p)), 5000, "nats-server and the daemon to be gone");
    expect(await portFree(port)).toBe(true);
  });

  it("stops its tasks on Ctrl-C and starts them again at the next up", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "flotilla-up-"));
    const [port, http, ws] = await freePorts(3);
    const prefix = uniquePrefix("up");
    const env = { NATS_URL: `nats://127.0.0.1:${port}` };
    const up = () => {
      const child = spawnCli(["--prefix", prefix, "up", "--data-dir", dataDir, "--port", String(port), "--http-port", String(http), "--ws-port", String(ws), "--agent-ttl", "2s"]);
      return check(() => child.output().includes("Press Ctrl-C to stop.") || child.exitCode !== null, 30_000, "up to say it is up").then(() => {
        expect(child.exitCode, child.output()).toBeNull();
        return child;
      });
    };
    const runningPid = async (): Promise<number> => {
      const r = await runCli(["--prefix", prefix, "list-units", "--json"], { env });
      const row = (JSON.parse(r.stdout || "[]") as { unit: string; sub: string; pid?: number }[]).find((u) => u.unit === "idle.service");
      return row?.sub === "running" && row.pid ? row.pid : 0;
    };
    const unitFile = join(dataDir, "idle.service");
    writeFileSync(unitFile, "[Service]\nExecStart=/bin/sleep 600\n");
    let child = await up();
    try {
      const started = await runCli(["--prefix", prefix, "start", unitFile], { env, timeoutMs: 60_000 });
      expect(started.code, started.stderr).toBe(0);
      const first = await check(runningPid, 15_000, "idle.service running");
      expect(await stopChild(child, "SIGINT", 20_000)).toBe(0);
      expect(child.output()).toContain("stopping the tasks, the daemon and nats-server");
      // Ctrl-C stopped the task too: nothing of the cluster is left running.
      expect(alive(first)).toBe(false);

      child = await up();
      // The unit is still desired launched: the next up starts it again, as a new process.
      const second = await check(runningPid, 30_000, "idle.service running again after the second up");
      expect(second).not.toBe(first);
      expect(await stopChild(child, "SIGINT", 20_000)).toBe(0);
      expect(alive(second)).toBe(false);
    } finally {
      await stopChild(child, "SIGINT", 20_000);
      killStateDirWorkloads(join(dataDir, "state"));
    }
  });

  it("says clearly when the NATS port is busy", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "flotilla-up-"));
    const [http, ws] = await freePorts(2);
    const r = await runCli(["up", "--data-dir", dataDir, "--port", String(other.port), "--http-port", String(http), "--ws-port", String(ws)]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`port ${other.port} is already in use`);
    expect(r.stderr).toContain("--port");
  });
});
