// The agent runs real processes: schedule entries written as the leader would, states read
// back from the states bucket, output through the journal CLI, exactly as a user sees them.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NatsServer, uniquePrefix } from "../helpers/nats-server.js";
import { check, holds } from "../helpers/check.js";
import { runCli, spawnCli, stopChild } from "../helpers/cli.js";
import { agentHost, killStateDirWorkloads, pidAlive, readState, schedule, unschedule, type AgentHost } from "../helpers/agent-host.js";
import { ApiService } from "../../src/api/service.js";
import { journalHandlers } from "../../src/api/journal.js";
import { keys } from "../../src/protocol/names.js";
import { encode } from "../../src/protocol/codec.js";
import { unitHash } from "../helpers/agent-host.js";

let server: NatsServer;
const hosts: AgentHost[] = [];
const services: ApiService[] = [];

beforeAll(async () => {
  server = await NatsServer.start();
});

afterAll(async () => {
  for (const h of hosts) {
    await h.close().catch(() => undefined);
    killStateDirWorkloads(h.stateDir);
  }
  for (const s of services) await s.stop();
  await server?.dispose();
});

async function host(machineId = "m1", prefix = uniquePrefix("agent"), metadata?: Record<string, string>): Promise<AgentHost> {
  const h = await agentHost({ url: server.url, prefix, machineId, metadata });
  hosts.push(h);
  return h;
}

describe("agent", () => {
  test("hello.service launched on one machine: one unit active, its output in the journal", async () => {
    const h = await host();
    const svc = new ApiService({ nc: h.nc, names: h.ctx.names, handlers: journalHandlers(h.ctx), log: h.ctx.log, version: "0.0.0", machineId: "m1" });
    services.push(svc);
    await svc.start();
    await schedule(h.ctx.buckets, "m1", "hello.service", '[Service]\nExecStart=/bin/sh -c "echo hello from flotilla; exec sleep 600"\n');
    const st = await check(async () => {
      const s = await readState(h.ctx.buckets, "hello.service", "m1");
      return s?.taskState === "running" && s;
    }, 10_000, "hello.service running");
    expect([st.load, st.active, st.sub]).toEqual(["loaded", "active", "running"]);
    expect(pidAlive(st.pid!)).toBe(true);
    const states = [];
    for await (const k of await h.ctx.buckets.states.keys()) states.push(k);
    expect(states).toEqual([keys.state("hello.service", "m1")]);
    const out = await check(async () => {
      const r = await runCli(["--nats", server.url, "--prefix", h.ctx.names.prefix, "journal", "-n", "5", "hello.service"]);
      return r.stdout.includes("hello from flotilla") && r;
    }, 15_000, "hello output in the journal");
    expect(out.code).toBe(0);
  });

  test("load, start, stop, unload: each step in the states bucket", async () => {
    const h = await host();
    const b = h.ctx.buckets;
    const unit = "cycle.service";
    const contents = "[Service]\nExecStart=/bin/sleep 600\n";
    const state = () => readState(b, unit, "m1");
    await schedule(b, "m1", unit, contents, "loaded");
    let s = await check(async () => (await state())?.taskState === "ready" && state(), 10_000, "loaded");
    expect([s!.load, s!.active, s!.sub]).toEqual(["loaded", "inactive", "dead"]);
    expect(s!.pid).toBeUndefined();

    await schedule(b, "m1", unit, contents, "launched");
    s = await check(async () => (await state())?.taskState === "running" && state(), 10_000, "launched");
    const pid = s!.pid!;
    expect(pidAlive(pid)).toBe(true);

    await schedule(b, "m1", unit, contents, "loaded");
    s = await check(async () => (await state())?.taskState === "shutdown" && state(), 10_000, "stopped");
    expect([s!.load, s!.active, s!.sub]).toEqual(["loaded", "inactive", "dead"]);
    expect(s!.signal).toBe("SIGTERM");
    await check(() => !pidAlive(pid), 5000, "process gone after stop");

    await schedule(b, "m1", unit, contents, "launched");
    s = await check(async () => (await state())?.taskState === "running" && state(), 10_000, "started again");
    const pid2 = s!.pid!;
    expect(pid2).not.toBe(pid);

    await unschedule(b, "m1", unit);
    await check(async () => (await state()) === undefined, 10_000, "state record removed after unload");
    await check(() => !pidAlive(pid2), 5000, "process gone after unload");
  });

  test("a changed unit (new hash) is shut down and started again", async () => {
    const h = await host();
    const b = h.ctx.buckets;
    await schedule(b, "m1", "chg.service", "[Service]\nExecStart=/bin/sleep 600\n");
    const s1 = await check(async () => {
      const s = await readState(b, "chg.service", "m1");
      return s?.taskState === "running" && s;
    }, 10_000, "v1 running");
    const e2 = await schedule(b, "m1", "chg.service", "[Service]\nExecStart=/bin/sleep 601\n");
    const s2 = await check(async () => {
      const s = await readState(b, "chg.service", "m1");
      return s?.taskState === "running" && s.hash === e2.hash && s;
    }, 10_000, "v2 running");
    expect(s2.pid).not.toBe(s1.pid);
    await check(() => !pidAlive(s1.pid!), 5000, "v1 gone");
  });

  test("a crashing unit is restarted per policy, then stopped by the start limit", async () => {
    const h = await host();
    const b = h.ctx.buckets;
    await schedule(
      b,
      "m1",
      "crash.service",
      '[Unit]\nStartLimitBurst=3\nStartLimitIntervalSec=30s\n[Service]\nExecStart=/bin/sh -c "echo crashing; exit 3"\nRestart=on-failure\nRestartSec=100ms\n',
    );
    const s = await check(async () => {
      const r = await readState(b, "crash.service", "m1");
      return r?.taskState === "failed" && r.error?.includes("start limit") && r;
    }, 15_000, "failed by the start limit");
    expect(s.restarts).toBe(2);
    expect(s.exitCode).toBe(3);
    expect([s.active, s.sub]).toEqual(["failed", "failed"]);
    // It stays failed: no further attempt after the limit (RestartSec is 100 ms, so 6 chances).
    await holds(async () => {
      const r = await readState(b, "crash.service", "m1");
      return r?.taskState === "failed" && r.restarts === 2;
    }, 600, "crash.service staying failed after 2 restarts");
  });

  test("a unit ignoring SIGTERM is killed after TimeoutStopSec", async () => {
    const h = await host();
    const b = h.ctx.buckets;
    // The marker says the shell has set its trap: a stop before that would end it by SIGTERM.
    const marker = join(mkdtempSync(join(tmpdir(), "stubborn-")), "trapped");
    const contents = `[Service]\nExecStart=/bin/sh -c "trap '' TERM; touch ${marker}; while :; do sleep 0.2; done"\nTimeoutStopSec=1s\n`;
    await schedule(b, "m1", "stubborn.service", contents);
    const s = await check(async () => {
      const r = await readState(b, "stubborn.service", "m1");
      return r?.taskState === "running" && existsSync(marker) && r;
    }, 10_000, "running, its trap set");
    const t0 = Date.now();
    await schedule(b, "m1", "stubborn.service", contents, "loaded");
    const stopped = await check(async () => {
      const r = await readState(b, "stubborn.service", "m1");
      return r?.taskState === "shutdown" && r;
    }, 10_000, "stopped");
    const took = Date.now() - t0;
    expect(stopped.signal).toBe("SIGKILL");
    expect(took).toBeGreaterThanOrEqual(1000);
    expect(took).toBeLessThan(5000);
    expect(pidAlive(s.pid!)).toBe(false);
  });

  test("a missing binary: failed, with the error in the state record", async () => {
    const h = await host();
    const b = h.ctx.buckets;
    await schedule(b, "m1", "missing.service", "[Service]\nExecStart=/nonexistent/bin/daemon --flag\n");
    const s = await check(async () => {
      const r = await readState(b, "missing.service", "m1");
      return r?.taskState === "failed" && r;
    }, 10_000, "failed");
    expect(s.error).toMatch(/\/nonexistent\/bin\/daemon.*no such executable/);
    expect([s.load, s.active, s.sub]).toEqual(["loaded", "failed", "failed"]);
  });

  test("a garbage schedule entry is skipped; the agent keeps working", async () => {
    const h = await host();
    const b = h.ctx.buckets;
    await b.schedule.put(keys.schedule("m1", "garbage.service"), new Uint8Array([0xc1, 0xff, 0x00]));
    await b.schedule.put(keys.schedule("m1", "nofields.service"), new TextEncoder().encode("{}"));
    await schedule(b, "m1", "fine.service", "[Service]\nExecStart=/bin/sleep 600\n");
    await check(async () => (await readState(b, "fine.service", "m1"))?.taskState === "running", 10_000, "fine.service running");
    expect(await readState(b, "garbage.service", "m1")).toBeUndefined();
  });

  test("Global units run on every machine whose metadata matches, unless they conflict with its units", async () => {
    const prefix = uniquePrefix("global");
    const us = await host("mus", prefix, { region: "us" });
    const eu = await host("meu", prefix, { region: "eu" });
    const b = us.ctx.buckets;
    const putUnit = async (name: string, contents: string) => {
      const now = Date.now();
      await b.units.put(keys.unit(name), encode({ name, contents, hash: unitHash(contents), desiredState: "launched", version: 1, createdAt: now, updatedAt: now }));
    };
    await schedule(b, "mus", "blocker.service", "[Service]\nExecStart=/bin/sleep 600\n[X-Fleet]\nConflicts=other-*.service\n");
    await putUnit("everywhere-us.service", "[Service]\nExecStart=/bin/sleep 600\n[X-Fleet]\nGlobal=true\nMachineMetadata=region=us\n");
    await putUnit("other-global.service", "[Service]\nExecStart=/bin/sleep 600\n[X-Fleet]\nGlobal=true\n");
    await check(async () => (await readState(b, "everywhere-us.service", "mus"))?.taskState === "running", 10_000, "global on the us machine");
    await check(async () => (await readState(b, "other-global.service", "meu"))?.taskState === "running", 10_000, "other-global on the eu machine");
    await check(async () => (await readState(b, "blocker.service", "mus"))?.taskState === "running", 10_000, "blocker running");
    // Give both agents a reconcile round more, then: nothing where it must not be.
    await check(() => us.agent.snapshot().length === 2 && eu.agent.snapshot().length === 1, 5000, "task counts settle");
    expect(await readState(b, "everywhere-us.service", "meu")).toBeUndefined();
    expect(await readState(b, "other-global.service", "mus")).toBeUndefined();
    // Destroyed (deleted from units): gone everywhere.
    await b.units.delete(keys.unit("other-global.service"));
    await check(async () => (await readState(b, "other-global.service", "meu")) === undefined, 10_000, "other-global removed");
  });

  test("a clean stop removes this machine's states and leaves the workload; start() again adopts it", async () => {
    const h = await host();
    const b = h.ctx.buckets;
    await schedule(b, "m1", "steady.service", "[Service]\nExecStart=/bin/sleep 600\n");
    const s1 = await check(async () => {
      const r = await readState(b, "steady.service", "m1");
      return r?.taskState === "running" && r;
    }, 10_000, "running");
    await h.agent.stop();
    expect(await readState(b, "steady.service", "m1")).toBeUndefined();
    expect(pidAlive(s1.pid!)).toBe(true);
    await h.agent.start();
    const s2 = await check(async () => {
      const r = await readState(b, "steady.service", "m1");
      return r?.taskState === "running" && r;
    }, 10_000, "running again after start()");
    expect(s2.pid).toBe(s1.pid);
  });

  test("journal -f follows new lines", async () => {
    const h = await host();
    const svc = new ApiService({ nc: h.nc, names: h.ctx.names, handlers: journalHandlers(h.ctx), log: h.ctx.log, version: "0.0.0", machineId: "m1" });
    services.push(svc);
    await svc.start();
    await schedule(h.ctx.buckets, "m1", "ticker.service", '[Service]\nExecStart=/bin/sh -c "i=0; while :; do i=$$((i+1)); echo tick $$i; sleep 0.2; done"\n');
    const child = spawnCli(["--nats", server.url, "--prefix", h.ctx.names.prefix, "journal", "-f", "-n", "1", "ticker.service"]);
    try {
      await check(() => (child.output().match(/tick \d+/g) ?? []).length >= 4, 15_000, "four tick lines followed").catch((e) => {
        throw new Error(`${(e as Error).message}\n${child.output()}`);
      });
    } finally {
      await stopChild(child);
    }
  });

  test("a unit file that cannot be parsed is rejected, with the parser's message", async () => {
    const h = await host();
    await schedule(h.ctx.buckets, "m1", "broken.service", "[Service]\nRestart=sometimes\n");
    const s = await check(async () => {
      const r = await readState(h.ctx.buckets, "broken.service", "m1");
      return r?.taskState === "rejected" && r;
    }, 10_000, "rejected");
    expect(s.error).toMatch(/invalid unit file/);
    expect([s.load, s.active, s.sub]).toEqual(["error", "failed", "failed"]);
  });
});
