// NATS goes away and comes back (same port, same store): the daemon keeps running, logs the
// outage visibly, and its machine record returns by itself; the API answers again.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "@nats-io/transport-node";
import { openKv } from "../../src/nats/buckets.js";
import { NatsServer, uniquePrefix } from "../helpers/nats-server.js";
import { check } from "../helpers/check.js";
import { runCli } from "../helpers/cli.js";
import { startDaemon, type RunningDaemon } from "../helpers/daemon.js";
import { Names } from "../../src/protocol/names.js";
import { killStateDirWorkloads } from "../helpers/workloads.js";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decode } from "../../src/protocol/codec.js";

let server: NatsServer;
let d: RunningDaemon | undefined;

beforeAll(async () => {
  server = await NatsServer.start();
});

afterAll(async () => {
  await d?.stop();
  await server?.dispose();
});

describe("NATS restart", () => {
  it("the machine record returns without restarting the daemon", async () => {
    const prefix = uniquePrefix("restart");
    d = await startDaemon({ server, prefix, machineId: "survivor", agentTtl: "1s" });
    const pid = d.child.pid;

    await server.stop();
    // The daemon notices, says so, and keeps trying (no crash).
    await check(() => /disconnected from NATS|heartbeat failed/.test(d!.output()), 10_000, "a visible outage log line");
    await check(() => /stopping components/.test(d!.output()), 10_000, "the monitor stopping components").catch((e: Error) => {
      throw new Error(`${e.message}\ndaemon output:\n${d!.output().slice(-6000)}`);
    });
    expect(d.child.exitCode).toBeNull();

    await server.restart();
    const backAt = Date.now();

    const nc = await connect({ servers: server.url });
    try {
      const kv = await openKv(nc, new Names(prefix).bucket("machines"));
      await check(async () => {
        const e = await kv.get("survivor");
        // A fresh beat, not the record left in the store from before the outage.
        return e !== null && e.operation === "PUT" && (decode(e.value) as { heartbeatAt: number }).heartbeatAt >= backAt;
      }, 15_000, "a fresh machine record after the restart");
      expect(d.child.pid).toBe(pid);
      expect(d.child.exitCode).toBeNull();
      // The monitor restarted the components: the API answers again.
      await check(async () => {
        const r = await runCli(["--nats", server.url, "--prefix", prefix, "list-machines", "-l"]);
        return r.code === 0 && r.stdout.includes("survivor");
      }, 15_000, "list-machines to answer again");
      // The log line may reach us after the API already answers: wait for it, don't read once.
      await check(() => /heartbeat recovered; restarting components/.test(d!.output()), 10_000, "the recovery log line");
      // The engine leads again on fresh watches, and the agent runs what it places.
      const dir = mkdtempSync(join(tmpdir(), "flotilla-units-"));
      const file = join(dir, "after-outage.service");
      writeFileSync(file, "[Service]\nExecStart=/bin/sleep 600\n");
      const started = await runCli(["--nats", server.url, "--prefix", prefix, "start", "--no-block", file], { timeoutMs: 20_000 });
      expect(started.code, `${started.stderr}\ndaemon output:\n${d.output().slice(-4000)}`).toBe(0);
      await check(async () => {
        const r = await runCli(["--nats", server.url, "--prefix", prefix, "list-units", "--json"]);
        const rows = JSON.parse(r.stdout) as { unit?: string; name?: string; machine?: string; sub?: string }[];
        const row = rows.find((x) => (x.unit ?? x.name) === "after-outage.service");
        return row?.sub === "running" && row.machine?.startsWith("survivor");
      }, 20_000, "a unit started after the outage running on the daemon").catch((e: Error) => {
        throw new Error(`${e.message}\ndaemon output:\n${d!.output().slice(-8000)}`);
      });
    } finally {
      await nc.close();
    }
    expect(await d.stop()).toBe(0);
    killStateDirWorkloads(d.stateDir);
  });
});
