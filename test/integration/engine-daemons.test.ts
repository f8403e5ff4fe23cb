// The engine inside real `flotilla daemon` processes: the leader is SIGKILLed and another
// daemon takes over; `flotilla machine drain|pause|activate` through the API and the CLI.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/nats-core";
import { NatsServer, uniquePrefix } from "../helpers/nats-server.js";
import { check } from "../helpers/check.js";
import { runCli } from "../helpers/cli.js";
import { startDaemon, type RunningDaemon } from "../helpers/daemon.js";
import { connectOnce } from "../../src/nats/connection.js";
import { openBuckets, type Buckets } from "../../src/nats/buckets.js";
import { listKeys } from "../../src/nats/kv-keys.js";
import { keys, LEASE_KEY_ENGINE, Names } from "../../src/protocol/names.js";
import { decodeAs, encode } from "../../src/protocol/codec.js";
import { LeaseRecord, ScheduleEntry, type UnitRecord } from "../../src/protocol/messages.js";
import { unitHash } from "../../src/unit/index.js";

let server: NatsServer;
let nc: NatsConnection;
const daemons: RunningDaemon[] = [];
beforeAll(async () => {
  server = await NatsServer.start();
  nc = await connectOnce({ url: server.url });
});
afterEach(async () => {
  for (const d of daemons.splice(0)) await d.stop("SIGTERM");
});
afterAll(async () => {
  await nc?.close();
  await server?.dispose();
});

// Short-lived tasks: a SIGKILLed daemon cannot stop what its agent started.
const CONTENTS = "[Service]\nExecStart=/bin/sleep 30\n";

async function putUnit(b: Buckets, name: string): Promise<void> {
  const rec: UnitRecord = { name, contents: CONTENTS, hash: unitHash(CONTENTS), desiredState: "launched", version: 1, createdAt: Date.now(), updatedAt: Date.now() };
  await b.units.put(keys.unit(name), encode(rec));
}

async function where(b: Buckets, unit: string): Promise<string[]> {
  const out: string[] = [];
  for await (const k of await b.schedule.keys()) {
    const p = keys.parseSchedule(k);
    if (p && p.unit === unit && keys.parseUnplaced(k) === undefined) {
      const e = await b.schedule.get(k);
      if (e?.operation === "PUT") {
        decodeAs(ScheduleEntry, e.value, k);
        out.push(p.machineId);
      }
    }
  }
  return out.sort();
}

/** Machines on which the agent reports a state for this unit (states bucket). */
// states is a TTL bucket: list with listKeys, since kv.keys() can hang forever when a key
// expires mid-listing (and a hung read would outlive check()'s deadline).
async function runningOn(prefix: string, unit: string): Promise<string[]> {
  const out: string[] = [];
  for (const k of await listKeys(nc, new Names(prefix).bucket("states"), keys.statesOfUnit(unit))) {
    const p = keys.parseState(k);
    if (p) out.push(p.machineId);
  }
  return out.sort();
}

async function putGlobal(b: Buckets, name: string, extra = ""): Promise<void> {
  const contents = `[Service]\nExecStart=/bin/sleep 30\n\n[X-Fleet]\nGlobal=true\n${extra}`;
  const rec: UnitRecord = { name, contents, hash: unitHash(contents), desiredState: "launched", version: 1, createdAt: Date.now(), updatedAt: Date.now() };
  await b.units.put(keys.unit(name), encode(rec));
}

async function holder(b: Buckets): Promise<string | undefined> {
  const e = await b.leases.get(keys.lease(LEASE_KEY_ENGINE));
  return e?.operation === "PUT" ? decodeAs(LeaseRecord, e.value, "lease").holder : undefined;
}

describe("engine in daemons", () => {
  it("the leader daemon is SIGKILLed: another daemon leads and placements continue", async () => {
    const prefix = uniquePrefix("ed");
    for (const id of ["d1", "d2", "d3"]) daemons.push(await startDaemon({ server, prefix, machineId: id, leaseTtl: "1500ms", agentTtl: "2s" }));
    const b = await openBuckets(nc, new Names(prefix));
    const first = await check(() => holder(b), 15_000, "a lease holder");
    const leaderId = first.split("/")[0]!;
    const leader = daemons.find((d) => d.machineId === leaderId)!;
    await putUnit(b, "before.service");
    await check(async () => (await where(b, "before.service")).length === 1, 15_000, "before placed");

    await leader.stop("SIGKILL");
    daemons.splice(daemons.indexOf(leader), 1);
    await putUnit(b, "after.service");
    const second = await check(async () => {
      const h = await holder(b);
      return h && h !== first ? h : undefined;
    }, 10_000, "a new lease holder");
    expect(second.split("/")[0]).not.toBe(leaderId);
    const placed = await check(async () => {
      const w = await where(b, "after.service");
      return w.length === 1 ? w[0] : undefined;
    }, 10_000, "after placed by the new leader");
    expect(placed).not.toBe(leaderId);
    // a unit that was on the dead machine moves to a live one after the agent TTL
    await check(async () => {
      const w = await where(b, "before.service");
      return w.length === 1 && w[0] !== leaderId;
    }, 15_000, "before on a live machine");
  });

  it("flotilla machine drain | pause | activate, by short ID, through the API", async () => {
    const prefix = uniquePrefix("ea");
    daemons.push(await startDaemon({ server, prefix, machineId: "aaaaaaaa11111111", agentTtl: "2s", leaseTtl: "1500ms" }));
    daemons.push(await startDaemon({ server, prefix, machineId: "bbbbbbbb22222222", agentTtl: "2s", leaseTtl: "1500ms", extraArgs: ["--no-engine"] }));
    const b = await openBuckets(nc, new Names(prefix));
    const cli = (...args: string[]) => runCli(["--nats", server.url, "--prefix", prefix, ...args]);
    for (const u of ["x1.service", "x2.service"]) await putUnit(b, u);
    await check(async () => (await where(b, "x1.service")).length === 1 && (await where(b, "x2.service")).length === 1, 15_000, "both placed");

    const drain = await cli("machine", "drain", "aaaaaaaa");
    expect(drain.stderr).toBe("");
    expect(drain.stdout).toBe("Machine aaaaaaaa11111111 is draining: its units move to other machines\n");
    expect(drain.code).toBe(0);
    await check(async () => {
      const a = await where(b, "x1.service");
      const c = await where(b, "x2.service");
      return a[0] === "bbbbbbbb22222222" && c[0] === "bbbbbbbb22222222";
    }, 15_000, "both units off the drained machine");

    const act = await cli("machine", "activate", "aaaaaaaa11111111", "--json");
    expect(act.code).toBe(0);
    expect(JSON.parse(act.stdout)).toMatchObject({ id: "aaaaaaaa11111111", availability: "active" });

    const pause = await cli("machine", "pause", "bbbbbbbb");
    expect(pause.stdout).toBe("Machine bbbbbbbb22222222 is paused: it keeps its units and takes no new ones\n");
    await putUnit(b, "x3.service");
    await check(async () => (await where(b, "x3.service"))[0] === "aaaaaaaa11111111", 15_000, "x3 on the active machine");
    expect(await where(b, "x1.service")).toEqual(["bbbbbbbb22222222"]);

    const unknown = await cli("machine", "drain", "zzz");
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe('Error: no live machine "zzz" (see flotilla list-machines) [unknown_machine]\n');
    const bad = await nc.request(`${prefix}.api.machine-availability`, JSON.stringify({ machine: "aaaaaaaa", availability: "off" }));
    expect(JSON.parse(new TextDecoder().decode(bad.data))).toEqual({
      error: { code: "bad_request", field: "availability", message: 'availability "off" is not one of active, pause, drain' },
    });
  });

  // "A conflicting second global never runs" is the agent's to enforce (it picks the globals that
  // fit its machine, in name order): agent-daemon.test.ts. The engine's side is checked here: it
  // writes no schedule entry for a global unit, and places plain units beside them.
  it("global units run on every machine (the agents run them; the engine writes no entry)", async () => {
    const prefix = uniquePrefix("eg");
    for (const id of ["g1", "g2"]) daemons.push(await startDaemon({ server, prefix, machineId: id, leaseTtl: "1500ms", agentTtl: "2s" }));
    const b = await openBuckets(nc, new Names(prefix));
    await putGlobal(b, "everywhere.service");
    await check(async () => (await runningOn(prefix, "everywhere.service")).join() === "g1,g2", 20_000, "the global unit on both machines");
    await putUnit(b, "plain.service");
    await check(async () => (await where(b, "plain.service")).length === 1, 15_000, "a plain unit placed beside the globals");
    await check(async () => (await runningOn(prefix, "plain.service")).length === 1, 20_000, "plain runs");
    expect(await where(b, "everywhere.service")).toEqual([]);
  });
});
