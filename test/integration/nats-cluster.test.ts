// The documented multi-host path: a 3-node JetStream cluster, daemons with `--replicas 3` and
// the full list of NATS URLs. Three daemons started at the same moment all come up (creating
// the R3 buckets concurrently times out now and then: they wait and retry). One NATS node is
// SIGKILLed: within 10 s every API verb answers again (listings read with STREAM.INFO + direct
// gets, no consumers), a newly started unit runs, and when the node comes back nothing was lost
// or duplicated.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/nats-core";
import { jetstreamManager } from "@nats-io/jetstream";
import { NatsCluster } from "../helpers/nats-cluster.js";
import { uniquePrefix } from "../helpers/nats-server.js";
import { check, pace } from "../helpers/check.js";
import { runCli } from "../helpers/cli.js";
import { startDaemon, type RunningDaemon } from "../helpers/daemon.js";
import { openKv } from "../../src/nats/buckets.js";
import { listKeys } from "../../src/nats/kv-keys.js";
import { readBucket } from "../../src/nats/kv-read.js";
import { Names, keys } from "../../src/protocol/names.js";
import { decode } from "../../src/protocol/codec.js";

let cluster: NatsCluster;
let nc: NatsConnection;
const prefix = uniquePrefix("r3");
const names = new Names(prefix);
let daemons: RunningDaemon[] = [];
/** Connections a test opened besides nc, closed in afterAll. */
const extra: NatsConnection[] = [];

beforeAll(async () => {
  cluster = await NatsCluster.start(3);
  nc = await connect({ servers: cluster.urls.split(","), maxReconnectAttempts: -1, reconnectTimeWait: 250 });
}, 60_000);

afterAll(async () => {
  await Promise.all(daemons.map((d) => d.stop()));
  for (const c of extra) await c.close().catch(() => undefined);
  await nc?.close();
  await cluster?.dispose();
});

interface ApiReply {
  ok: boolean;
  error?: string;
  body?: unknown;
}

/** One raw API request, as `nats req` sends it (on `via`, default the test's connection). */
async function api(verb: string, body: unknown = {}, timeoutMs = 10_000, via: NatsConnection = nc): Promise<ApiReply> {
  try {
    const m = await via.request(names.apiSubject(verb), JSON.stringify(body), { timeout: timeoutMs });
    const text = new TextDecoder().decode(m.data);
    const parsed = text ? (JSON.parse(text) as unknown) : undefined;
    const err = m.headers?.get("Nats-Service-Error") || (parsed as { error?: { message?: string } })?.error?.message;
    return err ? { ok: false, error: String(err) } : { ok: true, body: parsed };
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
}

function unitFile(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), "flotilla-r3-units-"));
  const file = join(dir, name);
  writeFileSync(file, "[Service]\nExecStart=/bin/sleep 600\n");
  return file;
}

async function stateOf(unit: string): Promise<{ machineId: string; taskState: string }[]> {
  const kv = await openKv(nc, names.bucket("states"));
  const out: { machineId: string; taskState: string }[] = [];
  for (const k of await listKeys(nc, names.bucket("states"), keys.statesOfUnit(unit))) {
    const e = await kv.get(k);
    if (e?.operation === "PUT" && e.value.length > 0) out.push(decode(e.value) as { machineId: string; taskState: string });
  }
  return out;
}

describe("a 3-node NATS cluster with --replicas 3", () => {
  // The default TTLs (agent 10 s, lease 5 s): a stream's election after a node loss took 5-6 s
  // here, longer than a 3 s agent TTL, so shorter TTLs would expire machine records meanwhile.
  it("three daemons started at the same moment all come up", async () => {
    daemons = await Promise.all(
      ["r3-a", "r3-b", "r3-c"].map((machineId) =>
        startDaemon({ server: cluster.urls, prefix, machineId, agentTtl: "10s", leaseTtl: "5s", extraArgs: ["--replicas", "3"], timeoutMs: 60_000 }),
      ),
    );
    for (const d of daemons) expect(d.child.exitCode, d.output()).toBeNull();
    const waits = daemons.map((d) => (d.output().match(/waiting for JetStream/g) ?? []).length);
    console.log(`[nats-cluster] 3 daemons up; "waiting for JetStream" lines per daemon: ${waits.join(", ")}`);
    const r = await api("list-machines");
    expect(r.ok, r.error).toBe(true);
    expect((r.body as { id: string }[]).map((m) => m.id)).toEqual(["r3-a", "r3-b", "r3-c"]);
  }, 90_000);

  it("a NATS node is SIGKILLed: within 10 s every API verb answers, a new unit runs; when it is back nothing is lost or duplicated", async () => {
    expect(daemons).toHaveLength(3);
    const before = await api("start", { units: [{ name: "before.service", contents: "[Service]\nExecStart=/bin/sleep 600\n" }] });
    expect(before.ok, before.error).toBe(true);
    await check(async () => (await stateOf("before.service")).some((s) => s.taskState === "running"), 30_000, "before.service running");

    // Kill the node that leads both the units stream (the API's writes) and the machines stream
    // (heartbeats, list-machines): the worst one to lose. Step the machines leader down until
    // one node leads both.
    const jsm = await jetstreamManager(nc);
    const leaderOf = async (role: "units" | "machines") => (await jsm.streams.info(`KV_${names.bucket(role)}`)).cluster?.leader;
    for (let i = 0; i < 30 && (await leaderOf("machines")) !== (await leaderOf("units")); i++) {
      await nc.request(`$JS.API.STREAM.LEADER.STEPDOWN.KV_${names.bucket("machines")}`, "", { timeout: 5000 }).catch(() => undefined);
      await check(async () => (await leaderOf("machines")) !== undefined, 15_000, "a new machines stream leader", 100);
    }
    const leader = (await leaderOf("units")) ?? "n1";
    expect(await leaderOf("machines")).toBe(leader);
    const victim = cluster.indexOf(leader);
    // Requests go through a connection to the surviving nodes: what is measured is the daemons'
    // side (a client connected to the dead node loses what it had in flight, then reconnects).
    const survivors = [0, 1, 2].filter((i) => i !== victim).map((i) => cluster.url(i));
    const client = await connect({ servers: survivors, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
    extra.push(client);
    await cluster.kill(victim);
    const killedAt = Date.now();

    // The cost of the loss: list-machines at 10/s and a submit (a unit write) at 2/s from the
    // kill on, for 15 s; each request may take 10 s (the CLI's timeout).
    type Sample = { at: number; ms: number; ok: boolean; error?: string };
    const samples: Sample[] = [];
    const writes: Sample[] = [];
    const timed = (into: Sample[], verb: string, body: unknown) => {
      const at = Date.now() - killedAt;
      return api(verb, body, 10_000, client).then((r) => void into.push({ at, ms: Date.now() - killedAt - at, ok: r.ok, error: r.error }));
    };
    const loop = (async () => {
      const pending: Promise<void>[] = [];
      for (let i = 0; Date.now() - killedAt < 15_000; i++) {
        pending.push(timed(samples, "list-machines", {}));
        if (i % 5 === 0) pending.push(timed(writes, "submit", { units: [{ name: `probe-${i}.service`, contents: "[Service]\nExecStart=/bin/true\n" }] }));
        await pace(100); // 10 requests a second
      }
      await Promise.all(pending);
    })();

    // Within 10 s of the kill, 20 of 20 requests of each listing succeed.
    const twenty = async (verb: string) => {
      const rs = await Promise.all(Array.from({ length: 20 }, () => api(verb, {}, 5000, client)));
      const bad = rs.filter((r) => !r.ok);
      if (bad.length > 0) throw new Error(`${verb}: ${bad.length} of 20 failed: ${bad[0]!.error}`);
      return true;
    };
    const logs = () => daemons.map((d) => `--- ${d.machineId}\n${d.output().slice(-6000)}`).join("\n");
    await check(() => twenty("list-machines"), 10_000, "20 of 20 list-machines", 200).catch((e: Error) => {
      throw new Error(`${e.message}\n${logs()}`);
    });
    const recoveredAt = Date.now() - killedAt;
    await twenty("list-machines");
    await twenty("list-units");
    await twenty("list-unit-files");

    // A unit started now is placed and runs (engine and agent watches survived the loss).
    const after = await api("start", { units: [{ name: "after.service", contents: "[Service]\nExecStart=/bin/sleep 600\n" }] }, 10_000, client);
    expect(after.ok, after.error).toBe(true);
    await check(async () => (await stateOf("after.service")).some((s) => s.taskState === "running"), 30_000, "after.service running").catch(
      (e: Error) => {
        throw new Error(`${e.message}\n${daemons.map((d) => `--- ${d.machineId}\n${d.output().slice(-4000)}`).join("\n")}`);
      },
    );
    await loop;
    const figures = (what: string, xs: Sample[]) => {
      const failed = xs.filter((x) => !x.ok);
      const ms = xs.map((x) => x.ms).sort((a, b) => a - b);
      const slow = xs.filter((x) => x.ms > 1000);
      return (
        `${what}: ${failed.length} of ${xs.length} failed` +
        (failed.length ? ` (the last sent ${Math.max(...failed.map((x) => x.at))} ms after the kill: ${failed[0]!.error})` : "") +
        `; latency p50 ${ms[Math.floor(ms.length / 2)]} ms, max ${ms[ms.length - 1]} ms; ${slow.length} took over 1 s` +
        (slow.length ? ` (sent ${Math.min(...slow.map((x) => x.at))}-${Math.max(...slow.map((x) => x.at))} ms after the kill)` : "")
      );
    };
    console.log(
      `[nats-cluster] killed ${leader} (the units and machines streams' leader); ${figures("list-machines at 10/s", samples)}; ` +
        `${figures("submit at 2/s", writes)}; 20 of 20 of each listing from ${recoveredAt} ms on`,
    );
    if (Math.max(...samples.map((x) => x.ms)) > 3000 && process.env.FLOTILLA_TEST_DEBUG) {
      for (const d of daemons) {
        const lines = d.output().split("\n").filter((l) => /"level":(40|50)/.test(l)).map((l) => l.slice(0, 300));
        console.log(`[nats-cluster] ${d.machineId} warnings:\n${lines.slice(-25).join("\n")}`);
      }
    }
    console.log(
      `[nats-cluster] watch re-creations per daemon: ${daemons.map((d) => (d.output().match(/lost its consumer/g) ?? []).length).join(", ")}`,
    );
    // At most the requests in flight at the kill are lost (on a route to the dead node); every
    // request sent from 1 s after the kill on succeeds (writes wait out the election).
    expect(samples.filter((x) => x.at > 1000 && !x.ok)).toEqual([]);
    expect(writes.filter((x) => x.at > 1000 && !x.ok)).toEqual([]);

    // The node comes back: nothing lost, nothing duplicated.
    await cluster.restart(victim);
    await cluster.waitForJetStream();
    try {
      await check(async () => {
        const r = await api("list-unit-files");
        if (!r.ok) throw new Error(r.error);
        const rows = (r.body as { unit: string; currentState: string; machines: string[] }[]).filter((x) => !x.unit.startsWith("probe-"));
        expect(rows.map((x) => x.unit)).toEqual(["after.service", "before.service"]);
        for (const row of rows) {
          expect(row.machines, row.unit).toHaveLength(1);
          expect(row.currentState, row.unit).toBe("launched");
        }
        // The schedule's live entries (listKeys would also show the markers of deleted ones).
        const schedule = await readBucket(nc, names.bucket("schedule"));
        const placed = schedule
          .filter((e) => keys.parseUnplaced(e.key) === undefined)
          .map((e) => keys.parseSchedule(e.key)?.unit ?? e.key)
          .filter((u) => !u.startsWith("probe-"));
        expect(placed.sort()).toEqual(["after.service", "before.service"]);
        for (const u of ["before.service", "after.service"]) {
          const states = await stateOf(u);
          expect(states.filter((x) => x.taskState === "running"), u).toHaveLength(1);
        }
        return true;
      }, 20_000, "both units, each scheduled once and running once");
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${logs()}`);
    }
    const m = await api("list-machines");
    expect((m.body as { id: string }[]).map((x) => x.id)).toEqual(["r3-a", "r3-b", "r3-c"]);
  }, 120_000);
});
