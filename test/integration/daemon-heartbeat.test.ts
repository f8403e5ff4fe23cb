// A daemon's machine record lives as long as its heartbeat: it appears at start, expires one
// TTL after a SIGKILL, vanishes at once on a clean stop, and an ID that is alive elsewhere is
// refused. Real nats-server, real daemon processes.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/nats-core";
import { openKv } from "../../src/nats/buckets.js";
import { NatsServer, uniquePrefix } from "../helpers/nats-server.js";
import { check } from "../helpers/check.js";
import { runCli } from "../helpers/cli.js";
import { startDaemon, type RunningDaemon } from "../helpers/daemon.js";
import { Names } from "../../src/protocol/names.js";
import { decode } from "../../src/protocol/codec.js";

let server: NatsServer;
let nc: NatsConnection;
const running: RunningDaemon[] = [];

beforeAll(async () => {
  server = await NatsServer.start();
  nc = await connect({ servers: server.url });
});

afterAll(async () => {
  for (const d of running) await d.stop("SIGKILL");
  await nc?.close();
  await server?.dispose();
});

async function record(prefix: string, id: string): Promise<Record<string, unknown> | null> {
  const kv = await openKv(nc, new Names(prefix).bucket("machines"));
  const e = await kv.get(id);
  return e && e.operation === "PUT" && e.value.length ? (decode(e.value) as Record<string, unknown>) : null;
}

async function start(o: Parameters<typeof startDaemon>[0]): Promise<RunningDaemon> {
  const d = await startDaemon(o);
  running.push(d);
  return d;
}

describe("daemon heartbeat", () => {
  it("registers with a generated machine ID, keeps beating, and expires one TTL after SIGKILL", async () => {
    const prefix = uniquePrefix("hb");
    const d = await start({ server, prefix, agentTtl: "1s", metadata: "region=us-west" });
    expect(d.machineId).toMatch(/^[0-9a-f]{32}$/);
    const first = await record(prefix, d.machineId);
    expect(first?.metadata).toEqual({ region: "us-west" });
    // Beats keep coming (every TTL/2): heartbeatAt moves forward.
    await check(async () => ((await record(prefix, d.machineId))?.heartbeatAt as number) > (first!.heartbeatAt as number), 3000, "a second heartbeat");
    await d.stop("SIGKILL");
    const killedAt = Date.now();
    await check(async () => (await record(prefix, d.machineId)) === null, 5000, "the record to expire");
    // Not removed by anyone: it lived on until the TTL ran out.
    expect(Date.now() - killedAt).toBeGreaterThan(300);
  });

  it("a clean stop (SIGTERM) removes the record at once, long before its TTL", async () => {
    const prefix = uniquePrefix("clean");
    const d = await start({ server, prefix, agentTtl: "30s" });
    expect(await record(prefix, d.machineId)).not.toBeNull();
    const t0 = Date.now();
    const code = await d.stop("SIGTERM");
    expect(code).toBe(0);
    expect(await record(prefix, d.machineId)).toBeNull();
    expect(Date.now() - t0).toBeLessThan(8000);
    expect(d.output()).toContain("machine record removed");
  });

  it("refuses a second daemon with a machine ID that is alive, naming the ID", async () => {
    const prefix = uniquePrefix("dup");
    const a = await start({ server, prefix, machineId: "dup-machine-1", agentTtl: "2s" });
    const r = await runCli([
      "--nats", server.url, "--prefix", prefix, "daemon",
      "--machine-id", "dup-machine-1", "--state-dir", mkdtempSync(join(tmpdir(), "flotilla-state-")), "--agent-ttl", "2s",
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("machine ID dup-machine-1 is already in use");
    expect(r.stderr).toContain("[duplicate_machine_id]");
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    // The first daemon is untouched and still owns the record.
    const rec = await record(prefix, "dup-machine-1");
    expect(rec).not.toBeNull();
    expect(a.child.exitCode).toBeNull();
  });

  it("a daemon restarted on the same state dir after SIGKILL takes its machine over at once", async () => {
    const prefix = uniquePrefix("takeover");
    const a = await start({ server, prefix, agentTtl: "30s" });
    const before = await record(prefix, a.machineId);
    await a.stop("SIGKILL");
    const t0 = Date.now();
    const b = await start({ server, prefix, stateDir: a.stateDir, agentTtl: "30s" });
    expect(b.machineId).toBe(a.machineId);
    await check(async () => (await record(prefix, b.machineId))?.session !== before?.session, 5000, "the new session's record");
    expect(Date.now() - t0).toBeLessThan(15_000); // far less than the 30 s TTL
    expect(await b.stop()).toBe(0);
  });

  it("publishes its statecharts' transitions on <prefix>.inspect.<machineId>.<actor>", async () => {
    const prefix = uniquePrefix("inspect");
    const names = new Names(prefix);
    const seen: { actor: string; value: unknown; event: string }[] = [];
    const sub = nc.subscribe(names.inspectAll(), {
      callback: (_e, m) => {
        seen.push({ ...JSON.parse(new TextDecoder().decode(m.data)), subject: m.subject });
      },
    });
    await nc.flush();
    const d = await start({ server, prefix, machineId: "inspected", agentTtl: "1s", extraArgs: ["--no-engine"] });
    await check(() => seen.some((x) => x.actor === "heart" && x.value === "waiting"), 5000, "a heart transition");
    expect(seen.some((x) => x.actor === "heart" && x.value === "beating")).toBe(true);
    expect(seen.some((x) => x.actor === "monitor" && x.value === "healthy")).toBe(true);
    expect(seen.some((x) => x.actor === "machine")).toBe(true);
    expect((seen.find((x) => x.actor === "heart") as unknown as { subject: string }).subject).toBe(names.inspectSubject("inspected", "heart"));
    sub.unsubscribe();
    await d.stop();
  });

  it("two daemons started at the same moment with one machine ID: exactly one wins", async () => {
    const prefix = uniquePrefix("race");
    const results = await Promise.allSettled([
      startDaemon({ server, prefix, machineId: "contested", extraArgs: ["--no-engine"] }),
      startDaemon({ server, prefix, machineId: "contested", extraArgs: ["--no-engine"] }),
    ]);
    const won = results.filter((r): r is PromiseFulfilledResult<RunningDaemon> => r.status === "fulfilled").map((r) => r.value);
    running.push(...won);
    // Both may see the record appear (the loser checks the bucket too), but only one lives on.
    await check(() => won.filter((d) => d.child.exitCode === null).length === 1, 10_000, "one daemon left");
    const all = [...won.map((d) => d.output()), ...results.filter((r) => r.status === "rejected").map((r) => String((r as PromiseRejectedResult).reason))];
    expect(all.join("\n")).toContain("machine ID contested is already in use");
  });
});
