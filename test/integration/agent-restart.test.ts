// Tasks survive their agent: SIGKILL the agent (its own process) with units running, start it
// again on the same state dir → the same PIDs, no second copies; a unit unscheduled while the
// agent was dead is stopped at once; a workload that died meanwhile is reported truthfully.
// And NATS gone for longer than the TTL stops nothing; when it returns, states come back.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ChildProcess } from "node:child_process";
import { createServer, connect as tcpConnect, type Server, type Socket } from "node:net";
import { NatsServer, uniquePrefix } from "../helpers/nats-server.js";
import { check, holds } from "../helpers/check.js";
import { stopChild } from "../helpers/cli.js";
import {
  agentHost,
  hostContext,
  killStateDirWorkloads,
  pidAlive,
  readState,
  schedule,
  spawnAgentHost,
  unschedule,
  type AgentHost,
} from "../helpers/agent-host.js";
import type { Buckets } from "../../src/nats/buckets.js";

let server: NatsServer;
const children: ChildProcess[] = [];
const stateDirs: string[] = [];
const hosts: AgentHost[] = [];
/** Every workload pid a test saw, killed in afterAll even if its run directory is gone. */
const seenPids: number[] = [];

beforeAll(async () => {
  server = await NatsServer.start();
});

afterAll(async () => {
  for (const c of children) await stopChild(c, "SIGKILL").catch(() => undefined);
  for (const h of hosts) await h.close().catch(() => undefined);
  for (const d of stateDirs) killStateDirWorkloads(d);
  for (const pid of seenPids) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, "utf8").startsWith("/bin/sleep\0")) process.kill(pid, "SIGKILL");
    } catch {
      /* gone */
    }
  }
  await server?.dispose();
});

/** A TCP proxy to NATS that a test can cut and restore: the agent loses NATS, the cluster does not. */
async function natsProxy(port: number): Promise<{ url: string; cut(): void; restore(): void; close(): void }> {
  let open = true;
  const sockets = new Set<Socket>();
  const srv: Server = createServer((client) => {
    if (!open) {
      client.destroy();
      return;
    }
    const upstream = tcpConnect({ host: "127.0.0.1", port });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => undefined);
      s.on("close", () => sockets.delete(s));
    }
    client.pipe(upstream);
    upstream.pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
  const addr = srv.address() as { port: number };
  return {
    url: `nats://127.0.0.1:${addr.port}`,
    cut() {
      open = false;
      for (const s of sockets) s.destroy();
    },
    restore() {
      open = true;
    },
    close() {
      open = false;
      for (const s of sockets) s.destroy();
      srv.close();
    },
  };
}

/** PIDs of processes whose argv is exactly [/bin/sleep, arg] (counts copies of one workload). */
/** Waits until m1 reports the unit running; its state record. */
function runningOn(b: Buckets, unit: string, timeoutMs: number, what: string) {
  return check(async () => {
    const r = await readState(b, unit, "m1");
    return r?.taskState === "running" && r;
  }, timeoutMs, what);
}

function sleepsWithArg(arg: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const argv = readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0").filter(Boolean);
      if (argv.length === 2 && argv[0] === "/bin/sleep" && argv[1] === arg && pidAlive(Number(p))) out.push(Number(p));
    } catch {
      /* gone */
    }
  }
  return out;
}

describe("agent restarts and lost connections", () => {
  test("SIGKILL the agent with 3 units running, restart it: same 3 PIDs, no second copies", async () => {
    const prefix = uniquePrefix("restart");
    const stateDir = mkdtempSync(join(tmpdir(), "flotilla-agent-"));
    stateDirs.push(stateDir);
    const { ctx, nc } = await hostContext({ url: server.url, prefix, machineId: "m1" });
    const b = ctx.buckets;
    const args = ["7001", "7002", "7003"];
    const units = args.map((a) => `keep${a}.service`);
    const first = spawnAgentHost({ url: server.url, prefix, machineId: "m1", stateDir });
    children.push(first);
    for (const [i, u] of units.entries()) await schedule(b, "m1", u, `[Service]\nExecStart=/bin/sleep ${args[i]}\n`);
    await schedule(b, "m1", "dies.service", "[Service]\nExecStart=/bin/sleep 7004\n");
    await schedule(b, "m1", "moved.service", "[Service]\nExecStart=/bin/sleep 7005\n");
    const before = new Map<string, number>();
    for (const u of [...units, "dies.service", "moved.service"]) {
      const s = await runningOn(b, u, 20_000, `${u} running`);
      before.set(u, s.pid!);
      seenPids.push(s.pid!);
    }

    await stopChild(first, "SIGKILL");
    for (const pid of before.values()) expect(pidAlive(pid)).toBe(true);
    // While the agent is away: one workload dies, one unit moves to another machine.
    process.kill(before.get("dies.service")!, "SIGKILL");
    await check(() => !pidAlive(before.get("dies.service")!), 5000, "dies.service gone");
    await unschedule(b, "m1", "moved.service");

    const restartedAt = Date.now();
    const second = spawnAgentHost({ url: server.url, prefix, machineId: "m1", stateDir });
    children.push(second);
    for (const u of units) {
      const s = await check(async () => {
        const r = await readState(b, u, "m1");
        return r?.taskState === "running" && r.updatedAt >= restartedAt && r;
      }, 20_000, `${u} reported by the restarted agent`);
      expect(s.pid).toBe(before.get(u));
      expect(s.restarts).toBe(0);
    }
    for (const a of args) expect(sleepsWithArg(a)).toHaveLength(1);
    const dead = await check(async () => {
      const r = await readState(b, "dies.service", "m1");
      return r?.taskState === "failed" && r.updatedAt >= restartedAt && r;
    }, 10_000, "dies.service reported failed");
    expect(dead.signal).toBe("SIGKILL");
    expect(dead.pid).toBeUndefined();
    await check(() => !pidAlive(before.get("moved.service")!), 10_000, "moved.service stopped after the resync");
    await check(async () => (await readState(b, "moved.service", "m1")) === undefined, 10_000, "moved.service state removed");
    expect(sleepsWithArg("7004")).toHaveLength(0);
    await nc.close();
  });

  test("NATS stopped for longer than the TTL: nothing is stopped; when it returns, states come back", async () => {
    const h = await agentHost({ url: server.url, prefix: uniquePrefix("natsdown"), machineId: "m1", agentTtlMs: 1000 });
    hosts.push(h);
    stateDirs.push(h.stateDir);
    const b = h.ctx.buckets;
    const units = ["a.service", "b.service"];
    const pids = new Map<string, number>();
    for (const u of units) await schedule(b, "m1", u, "[Service]\nExecStart=/bin/sleep 600\n");
    for (const u of units) {
      const s = await runningOn(b, u, 10_000, `${u} running`);
      pids.set(u, s.pid!);
      seenPids.push(s.pid!);
    }

    await server.stop();
    // Watch the workloads for three TTLs without NATS: every check must hold every time.
    await holds(
      () => [...pids.values()].every(pidAlive) && h.agent.snapshot().every((t) => t.target === "launched"),
      3000,
      "every workload alive and launched while NATS is down",
    );
    await server.restart();

    for (const u of units) {
      const s = await runningOn(b, u, 15_000, `${u} state back after NATS returned`);
      expect(s.pid).toBe(pids.get(u));
      expect(s.restarts).toBe(0);
    }
    // The tasks were never restarted: still the first attempt's statuses.
    for (const t of h.agent.snapshot()) expect((t.status as { restarts: number }).restarts).toBe(0);
  });

  test("cut off from NATS while its unit moves elsewhere: on reconnect that unit is stopped at once, the rest untouched", async () => {
    const proxy = await natsProxy(server.port);
    const prefix = uniquePrefix("moved");
    const h = await agentHost({ url: proxy.url, prefix, machineId: "m1", agentTtlMs: 1000 });
    hosts.push(h);
    stateDirs.push(h.stateDir);
    const { ctx, nc } = await hostContext({ url: server.url, prefix, machineId: "leader" });
    const b = ctx.buckets;
    await schedule(b, "m1", "stays.service", "[Service]\nExecStart=/bin/sleep 600\n");
    await schedule(b, "m1", "moves.service", "[Service]\nExecStart=/bin/sleep 600\n");
    const pids = new Map<string, number>();
    for (const u of ["stays.service", "moves.service"]) {
      const s = await runningOn(b, u, 10_000, `${u} running`);
      pids.set(u, s.pid!);
      seenPids.push(s.pid!);
    }
    proxy.cut();
    // The leader moves moves.service to another machine while m1 cannot hear it.
    await unschedule(b, "m1", "moves.service");
    await schedule(b, "m2", "moves.service", "[Service]\nExecStart=/bin/sleep 600\n");
    // Longer than the TTL: nothing may happen to m1's tasks.
    await holds(() => [...pids.values()].every(pidAlive), 2500, "m1's workloads alive while it is cut off");
    const back = Date.now();
    proxy.restore();
    await check(() => !pidAlive(pids.get("moves.service")!), 10_000, "moves.service stopped after the resync");
    const took = Date.now() - back;
    expect(took).toBeLessThan(5000);
    expect(pidAlive(pids.get("stays.service")!)).toBe(true);
    const s = await runningOn(b, "stays.service", 10_000, "stays.service state back");
    expect(s.pid).toBe(pids.get("stays.service"));
    await check(async () => (await readState(b, "moves.service", "m1")) === undefined, 10_000, "moves.service state gone from m1");
    await h.close();
    await nc.close();
    proxy.close();
  });
});
