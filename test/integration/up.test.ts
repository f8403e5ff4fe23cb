// `flotilla up`: a whole one-machine cluster from nothing (its own nats-server from nats.conf
// and a daemon), reachable as it says, and gone without a trace of processes on Ctrl-C.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { NatsServer, uniquePrefix } from "../helpers/nats-server.js";
import { check } from "../helpers/check.js";
import { runCli, spawnCli, stopChild } from "../helpers/cli.js";
import { portFree } from "../../src/cli/up.js";
import { killStateDirWorkloads } from "../helpers/workloads.js";
import { readEnvFile } from "../../src/auth/users.js";
import { inboxPrefixFor } from "../../src/auth/roles.js";

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
  it("starts nats-server and a daemon with auth on, prints how the operator connects, passes the README quick start, and stops both on SIGINT", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "flotilla-up-"));
    const [port, http, ws] = await freePorts(3);
    const prefix = uniquePrefix("up");
    const child = spawnCli(["--prefix", prefix, "up", "--data-dir", dataDir, "--port", String(port), "--http-port", String(http), "--ws-port", String(ws), "--agent-ttl", "2s"]);
    let pids: number[] = [];
    try {
      await check(() => child.output().includes("Press Ctrl-C to stop.") || child.exitCode !== null, 30_000, "up to say it is up");
      expect(child.exitCode, child.output()).toBeNull();
      const out = child.output();
      const operatorEnv = join(dataDir, "auth", "operator.env");
      expect(out).toContain(`set -a; . ${operatorEnv}; set +a`);
      expect(out).toContain(`export NATS_URL=nats://127.0.0.1:${port}`);
      expect(out).toContain("flotilla list-machines");
      expect(out).toContain(`--user operator --password "$NATS_PASSWORD" --inbox-prefix _INBOX_operator req ${prefix}.api.list-machines ''`);
      const m = /nats-server pid (\d+), daemon pid (\d+)/.exec(out);
      expect(m).not.toBeNull();
      pids = [Number(m![1]), Number(m![2])];
      expect(pids.every(alive)).toBe(true);

      // The credential files: 0600, NATS_USER= and NATS_PASSWORD= lines.
      const id = readFileSync(join(dataDir, "state", "machine-id"), "utf8").trim();
      for (const f of ["operator.env", "viewer.env", `machine-${id}.env`]) {
        const path = join(dataDir, "auth", f);
        expect(statSync(path).mode & 0o777, f).toBe(0o600);
        expect(readFileSync(path, "utf8")).toMatch(/^NATS_USER=\S+\nNATS_PASSWORD=\S+\n/);
      }
      const op = readEnvFile(operatorEnv);
      const env = { NATS_URL: `nats://127.0.0.1:${port}`, NATS_USER: op.NATS_USER!, NATS_PASSWORD: op.NATS_PASSWORD! };

      // Without credentials nobody gets in.
      await expect(connect({ servers: `nats://127.0.0.1:${port}`, reconnect: false })).rejects.toThrow(/authorization/i);
      const anon = await runCli(["--prefix", prefix, "list-machines"], { env: { NATS_URL: env.NATS_URL, NATS_USER: "", NATS_PASSWORD: "" } });
      expect(anon.code).toBe(1);
      expect(anon.stderr).toContain("refused the credentials");

      // Reachable the way it says: the CLI with the operator's env, and a raw request.
      const r = await runCli(["--prefix", prefix, "list-machines", "-l"], { env });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(id);
      const nc = await connect({ servers: `nats://127.0.0.1:${port}`, user: op.NATS_USER, pass: op.NATS_PASSWORD, inboxPrefix: inboxPrefixFor(op.NATS_USER!) });
      const reply = await nc.request(`${prefix}.api.list-machines`, "", { timeout: 5000 });
      expect((JSON.parse(new TextDecoder().decode(reply.data)) as { id: string }[])[0]?.id).toBe(id);
      await nc.close();

      // The README quick start, as the operator.
      const unit = join(dataDir, "hello.service");
      writeFileSync(unit, '[Service]\nExecStart=/bin/sh -c "while true; do echo hello; sleep 1; done"\n');
      const started = await runCli(["--prefix", prefix, "start", unit], { env, timeoutMs: 60_000 });
      expect(started.code, started.stderr).toBe(0);
      expect(started.stdout).toContain("Unit hello.service launched on");
      const listed = await runCli(["--prefix", prefix, "list-units"], { env });
      expect(listed.stdout).toContain("hello.service");
      await check(async () => (await runCli(["--prefix", prefix, "journal", "-n", "5", "hello.service"], { env })).stdout.includes("hello"), 20_000, "hello in the journal");
      const destroyed = await runCli(["--prefix", prefix, "destroy", "hello.service"], { env, timeoutMs: 60_000 });
      expect(destroyed.code, destroyed.stderr).toBe(0);

      // Monitoring and WebSocket listen on loopback, as nats.conf says.
      const varz = (await (await fetch(`http://127.0.0.1:${http}/varz`)).json()) as { jetstream?: { config?: { store_dir?: string } } };
      expect(varz.jetstream?.config?.store_dir).toContain(dataDir);
      expect(await portFree(ws)).toBe(false);
      expect(existsSync(join(dataDir, "nats-server.log"))).toBe(true);
      expect(readFileSync(join(dataDir, "nats-server.log"), "utf8")).not.toMatch(/Publish Violation|Subscription Violation/);
    } finally {
      expect(await stopChild(child, "SIGINT", 20_000)).toBe(0);
      killStateDirWorkloads(join(dataDir, "state"));
    }
    expect(child.output()).toContain("stopping the tasks, the daemon and nats-server");
    // No leftover processes, ports released.
    await check(() => pids.every((p) => !alive(p)), 5000, "nats-server and the daemon to be gone");
    expect(await portFree(port)).toBe(true);
  });

  it("--no-auth: anyone who can connect can do anything, as before", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "flotilla-up-"));
    const [port, http, ws] = await freePorts(3);
    const prefix = uniquePrefix("up");
    const child = spawnCli(["--prefix", prefix, "up", "--no-auth", "--data-dir", dataDir, "--port", String(port), "--http-port", String(http), "--ws-port", String(ws), "--agent-ttl", "2s"]);
    try {
      await check(() => child.output().includes("Press Ctrl-C to stop.") || child.exitCode !== null, 30_000, "up to say it is up");
      expect(child.exitCode, child.output()).toBeNull();
      expect(child.output()).toContain(`nats --server nats://127.0.0.1:${port} req ${prefix}.api.list-machines ''`);
      expect(existsSync(join(dataDir, "auth"))).toBe(false);
      const nc = await connect({ servers: `nats://127.0.0.1:${port}` });
      const reply = await nc.request(`${prefix}.api.list-machines`, "", { timeout: 5000 });
      expect(JSON.parse(new TextDecoder().decode(reply.data))).toHaveLength(1);
      await nc.close();
    } finally {
      expect(await stopChild(child, "SIGINT", 20_000)).toBe(0);
    }
  });

  it("stops its tasks on Ctrl-C and starts them again at the next up", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "flotilla-up-"));
    const [port, http, ws] = await freePorts(3);
    const prefix = uniquePrefix("up");
    const env: Record<string, string> = { NATS_URL: `nats://127.0.0.1:${port}` };
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
    // Auth is on: the operator's credentials, which the second up keeps.
    Object.assign(env, readEnvFile(join(dataDir, "auth", "operator.env")));
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
