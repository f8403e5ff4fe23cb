// Listings at volume (issue 15): 20,000 units put straight into the buckets of a nats-server at
// its default max_payload (1 MB, where one JSON reply of every unit fails), listed through two
// real daemons (the requests spread over both) by the raw API and the CLI: plain requests are
// capped and say so, pages join to exactly the sorted set while units come and go, the filters
// keep what they should, and list-units --watch shows a start, a stop and a destroy.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/nats-core";
import { NatsServer, uniquePrefix } from "../helpers/nats-server.js";
import { startDaemon, type RunningDaemon } from "../helpers/daemon.js";
import { runCli, spawnCli, stopChild } from "../helpers/cli.js";
import { check } from "../helpers/check.js";
import { connectOnce } from "../../src/nats/connection.js";
import { ensureBuckets, type Buckets } from "../../src/nats/buckets.js";
import { Names, keys } from "../../src/protocol/names.js";
import { encode } from "../../src/protocol/codec.js";
import type { MachineRecord, UnitRecord, UnitStateRecord } from "../../src/protocol/messages.js";

const N = 20_000;
const WINDOW = 1024;
let server: NatsServer;
let nc: NatsConnection;
let names: Names;
let buckets: Buckets;
let d1: RunningDaemon;
const prefix = uniquePrefix("lst");

async function pipelined<T>(items: T[], f: (t: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += WINDOW) await Promise.all(items.slice(i, i + WINDOW).map(f));
}

const sha = (s: string) => createHash("sha1").update(s).digest("hex");
function unitRecord(name: string, contents: string, desiredState: UnitRecord["desiredState"]): UnitRecord {
  return { name, contents, hash: sha(contents), desiredState, version: 1, createdAt: Date.now(), updatedAt: Date.now() };
}
const PLAIN = "[Unit]\nDescription=volume\n\n[Service]\nExecStart=/bin/sleep 600\n";
const NOWHERE = "[Unit]\nDescription=nowhere\n\n[Service]\nExecStart=/bin/sleep 600\n\n[X-Fleet]\nMachineMetadata=region=nowhere\n";
const pad = (i: number) => String(i).padStart(5, "0");
/** web@00000 .. web@09999, api@00000 .. api@09799, 200 nowhere@: 20,000 in all. */
const volume: { name: string; contents: string; desired: UnitRecord["desiredState"] }[] = [
  ...Array.from({ length: 10_000 }, (_, i) => ({ name: `web@${pad(i)}.service`, contents: PLAIN, desired: "inactive" as const })),
  ...Array.from({ length: 9_800 }, (_, i) => ({ name: `api@${pad(i)}.service`, contents: PLAIN, desired: "inactive" as const })),
  ...Array.from({ length: 200 }, (_, i) => ({ name: `nowhere@${pad(i)}.service`, contents: NOWHERE, desired: "launched" as const })),
];
const sorted = (xs: string[]) => [...xs].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

function stateRecord(unit: string, machineId: string, failed: boolean): UnitStateRecord {
  return {
    unit,
    machineId,
    hash: sha(PLAIN),
    taskState: failed ? "failed" : "running",
    load: "loaded",
    active: failed ? "failed" : "active",
    sub: failed ? "failed" : "running",
    restarts: 0,
    since: 1,
    updatedAt: Date.now(),
    ...(failed ? { exitCode: 1 } : { pid: 4242 }),
  };
}
function fakeMachine(id: string): MachineRecord {
  return {
    id,
    hostname: id,
    publicIp: "10.9.9.9",
    metadata: {},
    capacity: { cpu: 1, memory: 1 },
    availability: "active",
    version: "test",
    startedAt: Date.now(),
    session: id,
    heartbeatAt: Date.now(),
  };
}

/** web@ units report on fake-a (every 10th failed), api@ units on fake-b: 19,800 rows. */
const FAKE_ROWS = 19_800;

async function req(verb: string, body: unknown): Promise<{ body: unknown; headers: Record<string, string>; bytes: number }> {
  const m = await nc.request(names.apiSubject(verb), body === "" ? "" : JSON.stringify(body), { timeout: 20_000 });
  const h: Record<string, string> = {};
  for (const k of m.headers?.keys() ?? []) h[k] = m.headers!.get(k);
  return { body: JSON.parse(new TextDecoder().decode(m.data)), headers: h, bytes: m.data.length };
}

interface V2<T> {
  v: 2;
  items: T[];
  more: boolean;
  next?: string;
}
async function allPages<T>(verb: string, filters: Record<string, unknown>, limit: number, between?: (i: number) => Promise<void>): Promise<T[]> {
  const out: T[] = [];
  let after: string | undefined;
  for (let i = 0; ; i++) {
    const r = (await req(verb, { ...filters, v: 2, limit, ...(after !== undefined ? { after } : {}) })).body as V2<T>;
    out.push(...r.items);
    if (!r.more) return out;
    after = r.next;
    await between?.(i);
  }
}

const cli = (...args: string[]) => runCli(["--nats", server.url, "--prefix", prefix, ...args], { timeoutMs: 60_000 });

beforeAll(async () => {
  server = await NatsServer.start({ defaultMaxPayload: true });
  names = new Names(prefix);
  nc = await connectOnce({ url: server.url });
  // A long agent TTL: the fake machines' states and records outlive the file. The volume goes in
  // before the daemons start (the puts do not compete with an engine taking them in).
  buckets = await ensureBuckets(nc, names, { agentTtlMs: 300_000, leaseTtlMs: 2000 });
  await pipelined(volume, (u) => buckets.units.put(keys.unit(u.name), encode(unitRecord(u.name, u.contents, u.desired))));
  await buckets.machines.put(keys.machine("fake-a"), encode(fakeMachine("fake-a")));
  await buckets.machines.put(keys.machine("fake-b"), encode(fakeMachine("fake-b")));
  const rows = volume.filter((u) => !u.name.startsWith("nowhere@"));
  await pipelined(rows, (u) => {
    const m = u.name.startsWith("web@") ? "fake-a" : "fake-b";
    const failed = u.name.startsWith("web@") && Number(u.name.slice(4, 9)) % 10 === 0;
    return buckets.states.put(keys.state(u.name, m), encode(stateRecord(u.name, m, failed)));
  });
  d1 = await startDaemon({ server, prefix, machineId: "real-1", agentTtl: "300s" });
  await startDaemon({ server, prefix, machineId: "real-2", agentTtl: "300s", extraArgs: ["--no-engine"] });
}, 120_000);

afterAll(async () => {
  await nc?.close();
  await server?.dispose();
});

describe("listings at 20,000 units, default max_payload", () => {
  it("the first listing starts the daemon's index; it is ready within seconds", async () => {
    const t0 = Date.now();
    // Several at once: the queue group spreads them, so both daemons most likely start theirs.
    await Promise.all(Array.from({ length: 10 }, () => req("list-machines", { v: 2, limit: 1 })));
    expect(Date.now() - t0).toBeLessThan(40_000);
  }, 60_000);

  it("a plain request of every listing verb is capped below max_payload and says where to go on", async () => {
    const lf = await req("list-unit-files", "");
    const rows = lf.body as { unit: string }[];
    expect(Array.isArray(rows)).toBe(true);
    expect(rows.length).toBeGreaterThan(100);
    expect(rows.length).toBeLessThan(N);
    expect(lf.bytes).toBeLessThan(1024 * 1024);
    expect(lf.headers["Flotilla-More"]).toBe("true");
    expect(lf.headers["Flotilla-Next"]).toBe(rows.at(-1)!.unit);
    expect(rows.map((r) => r.unit)).toEqual(sorted(volume.map((u) => u.name)).slice(0, rows.length));

    const lu = await req("list-units", "");
    expect((lu.body as unknown[]).length).toBeLessThan(FAKE_ROWS);
    expect(lu.headers["Flotilla-More"]).toBe("true");

    const lm = await req("list-machines", "");
    expect((lm.body as { id: string }[]).map((m) => m.id)).toEqual(["fake-a", "fake-b", "real-1", "real-2"]);
    expect(lm.headers["Flotilla-More"]).toBe("false");
  });

  it("pages join to exactly the sorted set while units are added and removed", async () => {
    const churn = Array.from({ length: 300 }, (_, i) => `churn@${pad(i)}.service`);
    await pipelined(churn, (n) => buckets.units.put(keys.unit(n), encode(unitRecord(n, PLAIN, "inactive"))));
    const added: string[] = [];
    const got = await allPages<{ unit: string }>("list-unit-files", {}, 700, async (i) => {
      // Between pages: new units before and after the cursor, and churn units removed.
      const fresh = [`aaa@${pad(i)}.service`, `zzz@${pad(i)}.service`, `web@${pad(i)}x.service`];
      added.push(...fresh);
      await Promise.all(fresh.map((n) => buckets.units.put(keys.unit(n), encode(unitRecord(n, PLAIN, "inactive")))));
      await Promise.all(churn.slice(i * 10, i * 10 + 10).map((n) => buckets.units.delete(keys.unit(n))));
    });
    const units = got.map((r) => r.unit);
    // Sorted and no duplicates: strictly increasing.
    for (let i = 1; i < units.length; i++) expect(units[i - 1]! < units[i]!, `${units[i - 1]} before ${units[i]}`).toBe(true);
    // None missing: every unit that stayed throughout.
    const have = new Set(units);
    const missing = volume.filter((u) => !have.has(u.name)).map((u) => u.name);
    expect(missing).toEqual([]);
    // Nothing that never was.
    const ever = new Set([...volume.map((u) => u.name), ...churn, ...added]);
    expect(units.filter((u) => !ever.has(u))).toEqual([]);
    // Added after the cursor passed: the zzz@ ones are in (they sort after every page).
    expect(added.filter((n) => n.startsWith("zzz@")).every((n) => have.has(n))).toBe(true);
    await Promise.all([...churn, ...added].map((n) => buckets.units.delete(keys.unit(n))));

    const states = await allPages<{ unit: string; machine: string }>("list-units", {}, 1500);
    expect(states).toHaveLength(FAKE_ROWS);
    const keysOf = states.map((r) => `${r.unit} ${r.machine}`);
    expect(keysOf).toEqual(sorted(keysOf));
    expect(new Set(keysOf).size).toBe(FAKE_ROWS);
  }, 120_000);

  it("filters: glob, machine, state, desired, unplaced (raw API)", async () => {
    const web1 = await allPages<{ unit: string }>("list-unit-files", { glob: "web@01*" }, 5000);
    expect(web1.map((r) => r.unit)).toEqual(Array.from({ length: 1000 }, (_, i) => `web@${pad(1000 + i)}.service`));
    const launched = await allPages<{ unit: string }>("list-unit-files", { desired: "launched" }, 5000);
    expect(launched.map((r) => r.unit)).toEqual(volume.filter((u) => u.desired === "launched").map((u) => u.name));
    await check(
      async () => (await allPages<{ unit: string; unplaced: string | null }>("list-unit-files", { unplaced: true }, 5000)).filter((r) => r.unplaced !== null).length === 200,
      30_000,
      "the engine's reasons for the 200 nowhere@ units",
    );
    const unplaced = await allPages<{ unit: string; unplaced: string | null }>("list-unit-files", { unplaced: true }, 5000);
    expect(unplaced.map((r) => r.unit)).toEqual(volume.filter((u) => u.desired === "launched").map((u) => u.name));
    expect(unplaced[0]!.unplaced).toMatch(/region=nowhere/);
    const failedA = await allPages<{ unit: string; machine: string; active: string }>("list-units", { machine: "fake-a", state: "failed" }, 5000);
    expect(failedA).toHaveLength(1000);
    expect(failedA.every((r) => r.machine === "fake-a" && r.active === "failed" && /^web@\d{4}0\.service$/.test(r.unit))).toBe(true);
    const onB = await allPages<{ machine: string }>("list-units", { machine: "fake-b", glob: "api@0000*" }, 5000);
    expect(onB).toHaveLength(10);
    // list-unit-files STATE from the states: every 10th web@ unit reports failed.
    const failedFiles = await allPages<{ unit: string }>("list-unit-files", { state: "failed" }, 5000);
    expect(failedFiles).toHaveLength(1000);
    const onFakeA = await allPages<{ unit: string }>("list-unit-files", { machine: "fake-a" }, 5000);
    expect(onFakeA).toHaveLength(0); // scheduled nowhere: the fake states are not a schedule
    const bad = await nc.request(names.apiSubject("list-units"), JSON.stringify({ glob: "web[" }), { timeout: 5000 });
    expect(JSON.parse(new TextDecoder().decode(bad.data)).error.code).toBe("bad_request");
  }, 120_000);

  it("the CLI pages through every listing: table, --json, --ndjson, filters", async () => {
    const t = await cli("list-unit-files", "--no-legend", "--fields", "unit");
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout.trim().split("\n")).toEqual(sorted(volume.map((u) => u.name)));
    const j = await cli("list-unit-files", "--json");
    const rows = JSON.parse(j.stdout) as { unit: string }[];
    expect(rows.map((r) => r.unit)).toEqual(sorted(volume.map((u) => u.name)));
    const nd = await cli("list-units", "--ndjson");
    const lines = nd.stdout.trim().split("\n").map((l) => JSON.parse(l) as { unit: string });
    expect(lines).toHaveLength(FAKE_ROWS);
    const f = await cli("list-units", "--machine", "fake-a", "--state", "failed", "--no-legend", "--fields", "unit,active", "web@000*");
    expect(f.stdout.trim().split("\n")).toEqual(Array.from({ length: 10 }, (_, i) => `web@000${i}0.service\tfailed`));
    const un = await cli("list-unit-files", "--unplaced", "--json", "nowhere@0001*");
    expect((JSON.parse(un.stdout) as { unit: string }[]).map((r) => r.unit)).toEqual(Array.from({ length: 10 }, (_, i) => `nowhere@0001${i}.service`));
    const lm = await cli("list-machines", "--no-legend", "--fields", "machine", "-l");
    expect(lm.stdout.trim().split("\n")).toEqual(["fake-a", "fake-b", "real-1", "real-2"]);
  }, 120_000);

  it("list-units --watch shows a start, a stop and a destroy as they happen", async () => {
    const dir = mkdtempSync(join(tmpdir(), "flotilla-lst-"));
    const file = join(dir, "hello.service");
    writeFileSync(file, "[Service]\nExecStart=/bin/sleep 600\n\n[X-Fleet]\nMachineID=real-1\n");
    const watch = spawnCli(["--nats", server.url, "--prefix", prefix, "list-units", "--watch", "--no-legend", "hello*"]);
    try {
      // The listing done (a cold daemon takes seconds to start its index on a busy machine).
      await check(() => watch.output().includes("-- watching for changes"), 60_000, `the watch's listing:\n${watch.output()}`, 100);
      const s = await cli("start", file);
      expect(s.code, s.stderr).toBe(0);
      await check(() => /^(added|changed)\s+hello\.service\s+real-1\S*\s+active\s+running$/m.test(watch.output()), 20_000, `start in the watch:\n${watch.output()}\ndaemon real-1:\n${d1.output().slice(-3000)}`, 250);
      const st = await cli("stop", "hello.service");
      expect(st.code, st.stderr).toBe(0);
      await check(() => /^changed\s+hello\.service\s+real-1\S*\s+inactive/m.test(watch.output()), 20_000, `stop in the watch:\n${watch.output()}`);
      const d = await cli("destroy", "hello.service");
      expect(d.code, d.stderr).toBe(0);
      await check(() => /^removed\s+hello\.service\s+real-1/m.test(watch.output()), 20_000, `destroy in the watch:\n${watch.output()}`);
      // Nothing of the 19,800 other rows: the glob filters the watch too.
      expect(watch.output()).not.toMatch(/web@|api@/);
    } finally {
      await stopChild(watch);
    }
    void d1;
  }, 90_000);
});
