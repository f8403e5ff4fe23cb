// Issue 9: a running Global unit is never pushed off by a later one. Two real daemons run
// zeta.service (Global); alpha.service (Global, Conflicts=zeta.service) started after it waits,
// though its name sorts first, and says why; once zeta is destroyed alpha runs everywhere.
// Then the units store's arrival protocol (UnitRecord.activatedRevision) against a real bucket.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { NatsConnection } from "@nats-io/nats-core";
import { NatsServer, uniquePrefix } from "../helpers/nats-server.js";
import { check, holds } from "../helpers/check.js";
import { runCli } from "../helpers/cli.js";
import { startDaemon, stopAllDaemons } from "../helpers/daemon.js";
import { connectOnce } from "../../src/nats/connection.js";
import { ensureBuckets, openBuckets, type Buckets } from "../../src/nats/buckets.js";
import { keys, Names } from "../../src/protocol/names.js";
import { decodeAs, encode } from "../../src/protocol/codec.js";
import { UnitRecord, UnitStateRecord } from "../../src/protocol/messages.js";
import { UnitStore } from "../../src/unit/store.js";
import { unitHash } from "../../src/unit/index.js";

let server: NatsServer;
let nc: NatsConnection;
beforeAll(async () => {
  server = await NatsServer.start();
  nc = await connectOnce({ url: server.url });
});
afterAll(async () => {
  await stopAllDaemons();
  await nc?.close();
  await server?.dispose();
});

const MACHINES = ["fc1", "fc2"];

async function stateOf(b: Buckets, unit: string, machineId: string): Promise<UnitStateRecord | undefined> {
  const e = await b.states.get(keys.state(unit, machineId));
  return e?.operation === "PUT" ? decodeAs(UnitStateRecord, e.value, e.key) : undefined;
}

/** unit's pid on every machine when it runs on all of them, else undefined. */
async function pidsIfRunningEverywhere(b: Buckets, unit: string): Promise<Record<string, number> | undefined> {
  const out: Record<string, number> = {};
  for (const m of MACHINES) {
    const s = await stateOf(b, unit, m);
    if (s?.taskState !== "running" || s.pid === undefined) return undefined;
    out[m] = s.pid;
  }
  return out;
}

async function reportedNowhere(b: Buckets, unit: string): Promise<boolean> {
  for (const m of MACHINES) if (await stateOf(b, unit, m)) return false;
  return true;
}

describe("first come, first served between conflicting globals (2 daemons)", () => {
  test("a running global keeps running when a conflicting one comes later; the newcomer waits, says why, and runs once the first is destroyed", async () => {
    const prefix = uniquePrefix("gfc");
    for (const id of MACHINES) await startDaemon({ server, prefix, machineId: id });
    const b = await openBuckets(nc, new Names(prefix));
    const cli = (...args: string[]) => runCli(["--nats", server.url, "--prefix", prefix, ...args], { timeoutMs: 60_000 });
    const dir = mkdtempSync(join(tmpdir(), "flotilla-gfc-"));
    const file = (name: string, fleet = "") => {
      writeFileSync(join(dir, name), `[Service]\nExecStart=/bin/sleep 600\n\n[X-Fleet]\nGlobal=true\n${fleet}`);
      return join(dir, name);
    };
    const ok = async (...args: string[]) => {
      const r = await cli(...args);
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(0);
      return r;
    };
    // A plain global started after a unit: once it runs on both machines, both agents have seen
    // that unit (one ordered watch of the units bucket) and decided about it.
    let markers = 0;
    const agentsHaveSeenEverything = async () => {
      const marker = `marker-${++markers}.service`;
      await ok("start", "--no-block", file(marker));
      await check(() => pidsIfRunningEverywhere(b, marker), 30_000, `${marker} running on both machines`);
    };

    // Submitted (inactive) before everything: it exists first, but is wanted only at the end.
    await ok("submit", file("omega.service", "Conflicts=alpha.service\n"));

    await ok("start", "--no-block", file("zeta.service"));
    const zeta = await check(() => pidsIfRunningEverywhere(b, "zeta.service"), 30_000, "zeta.service running on fc1 and fc2");

    await ok("start", "--no-block", file("alpha.service", "Conflicts=zeta.service\n"));
    await agentsHaveSeenEverything();
    // zeta keeps its processes (same PIDs, never restarted), alpha runs nowhere.
    await holds(
      async () => JSON.stringify(await pidsIfRunningEverywhere(b, "zeta.service")) === JSON.stringify(zeta) && (await reportedNowhere(b, "alpha.service")),
      2000,
      "zeta.service running with the same PIDs and alpha.service nowhere",
    );

    const status = await ok("status", "alpha.service");
    expect(status.stdout).toContain("Target: global, not placed: conflicts with zeta.service (Conflicts=zeta.service in alpha.service); zeta.service came first");
    const table = await ok("list-unit-files", "--full");
    expect(table.stdout).toMatch(/alpha\.service .*global \(waiting: conflicts with zeta\.service/);
    const rows = JSON.parse((await ok("list-unit-files", "--json")).stdout) as { unit: string; unplaced: string | null }[];
    expect(rows.find((r) => r.unit === "alpha.service")?.unplaced).toContain("conflicts with zeta.service");
    expect(rows.find((r) => r.unit === "zeta.service")?.unplaced).toBeNull();

    // zeta goes: alpha, the one that waited, starts on both machines.
    await ok("destroy", "zeta.service");
    const alpha = await check(() => pidsIfRunningEverywhere(b, "alpha.service"), 30_000, "alpha.service running on fc1 and fc2 after zeta is destroyed");
    expect(await reportedNowhere(b, "zeta.service")).toBe(true);
    expect((await ok("status", "alpha.service")).stdout).not.toContain("not placed");

    // Newcomers now: zeta created again (a new arrival), and omega, submitted before everything
    // but started only now. Neither pushes the running alpha off.
    await ok("start", "--no-block", file("zeta.service"), "omega.service");
    await agentsHaveSeenEverything();
    await holds(
      async () =>
        JSON.stringify(await pidsIfRunningEverywhere(b, "alpha.service")) === JSON.stringify(alpha) &&
        (await reportedNowhere(b, "zeta.service")) &&
        (await reportedNowhere(b, "omega.service")),
      2000,
      "alpha.service running with the same PIDs, zeta.service and omega.service nowhere",
    );
    expect((await ok("status", "zeta.service")).stdout).toContain("not placed: conflicts with alpha.service (Conflicts=zeta.service in alpha.service); alpha.service came first");
    expect((await ok("status", "omega.service")).stdout).toContain("not placed: conflicts with alpha.service (Conflicts=alpha.service in omega.service); alpha.service came first");
  });
});

describe("the units store records when a unit arrived (activatedRevision)", () => {
  const contents = "[Service]\nExecStart=/bin/sleep 600\n[X-Fleet]\nGlobal=true\n";
  const entry = async (b: Buckets, name: string) => {
    const e = (await b.units.get(keys.unit(name)))!;
    return { revision: e.revision, record: decodeAs(UnitRecord, e.value, e.key) };
  };

  test("the write that makes a unit wanted carries none (its own revision is the arrival); the next one pins it, later ones keep it", async () => {
    const b = await ensureBuckets(nc, new Names(uniquePrefix("arr")), { agentTtlMs: 10_000, leaseTtlMs: 5_000 });
    const store = new UnitStore(b.units);
    await store.start([{ name: "g.service", contents }]);
    const created = await entry(b, "g.service");
    expect(created.record.activatedRevision).toBeUndefined();

    await store.stop(["g.service"]);
    expect((await entry(b, "g.service")).record.activatedRevision).toBe(created.revision);
    await store.restart(["g.service"]);
    await store.start([{ name: "g.service", contents: contents + "Conflicts=x.service\n" }], true);
    const later = await entry(b, "g.service");
    expect(later.revision).toBeGreaterThan(created.revision + 2);
    expect(later.record.activatedRevision).toBe(created.revision);
    expect((await store.listWithArrival()).map((x) => x.arrival)).toEqual([created.revision]);
  });

  test("unload or destroy ends the arrival: wanted again, the unit is a newcomer", async () => {
    const b = await ensureBuckets(nc, new Names(uniquePrefix("arr")), { agentTtlMs: 10_000, leaseTtlMs: 5_000 });
    const store = new UnitStore(b.units);
    await store.load([{ name: "g.service", contents }]);
    const first = (await entry(b, "g.service")).revision;

    await store.unload(["g.service"]);
    expect((await entry(b, "g.service")).record.activatedRevision).toBeUndefined();
    await store.start(["g.service"].map((name) => ({ name })));
    const again = await entry(b, "g.service");
    expect(again.record.activatedRevision).toBeUndefined();
    expect(again.revision).toBeGreaterThan(first);
    await store.stop(["g.service"]);
    expect((await entry(b, "g.service")).record.activatedRevision).toBe(again.revision);

    await store.destroy(["g.service"]);
    await store.start([{ name: "g.service", contents }]);
    const recreated = await entry(b, "g.service");
    expect(recreated.record.activatedRevision).toBeUndefined();
    expect(recreated.revision).toBeGreaterThan(again.revision);
  });

  test("a record written before the field is pinned at the revision everyone already used for it", async () => {
    const b = await ensureBuckets(nc, new Names(uniquePrefix("arr")), { agentTtlMs: 10_000, leaseTtlMs: 5_000 });
    const store = new UnitStore(b.units);
    const now = Date.now();
    const legacy = { name: "old.service", contents, hash: unitHash(contents), desiredState: "launched", version: 3, createdAt: now, updatedAt: now };
    const rev = await b.units.put(keys.unit("old.service"), encode(legacy));
    expect((await store.listWithArrival())[0]!.arrival).toBe(rev);
    await store.stop(["old.service"]);
    expect((await entry(b, "old.service")).record.activatedRevision).toBe(rev);
    expect((await store.listWithArrival())[0]!.arrival).toBe(rev);
  });
});
