// Leadership against a real nats-server: several in-process engines on their own connections
// (a killed engine's connection is closed without releasing its lease, as SIGKILL would),
// lease TTL 1.5 s, agent TTL 2 s.
import { afterEach, describe, expect, it } from "vitest";
import { useNatsServer } from "../helpers/fixture.js";
import { check } from "../helpers/check.js";
import { EngineCluster, capturingLogger, unitFile } from "../helpers/engine-cluster.js";
import { keys, LEASE_KEY_ENGINE } from "../../src/protocol/names.js";
import { decodeAs, encode } from "../../src/protocol/codec.js";
import { LeaseRecord } from "../../src/protocol/messages.js";
import { jetstreamManager } from "@nats-io/jetstream";
import { ensureBuckets } from "../../src/nats/buckets.js";

const nats = useNatsServer();
let c: EngineCluster | undefined;
afterEach(async () => {
  await c?.dispose();
  c = undefined;
});

describe("engine leadership", () => {
  it("exactly one of three engines leads; when it is killed another leads and placements continue", async () => {
    c = await EngineCluster.create(nats.server.url);
    const cl = c;
    for (const m of ["m1", "m2", "m3"]) cl.addMachine(m);
    for (let i = 0; i < 3; i++) await cl.startEngine();
    const first = await check(() => cl.leader(), 10_000, "one leader");
    for (let i = 0; i < 6; i++) await cl.putUnit(`a${i}.service`, unitFile());
    await check(async () => (await cl.schedule()).size === 6, 10_000, "6 placed");
    const firstEpoch = first.term;

    const killedAt = Date.now();
    await cl.killEngine(first);
    for (let i = 0; i < 6; i++) await cl.putUnit(`b${i}.service`, unitFile());
    const second = await check(() => cl.leader(), 10_000, "a new leader");
    expect(second).not.toBe(first);
    expect(second.term).toBeGreaterThan(firstEpoch);
    await check(async () => (await cl.schedule()).size === 12, 10_000, "12 placed after failover");
    // The lease TTL bounds the failover (1.5 s here), plus a candidate's retry and a round.
    expect(second.stats.firstWriteAt - killedAt).toBeLessThan(1500 + 1500);
    const e = await cl.entry((await cl.schedule()).get("b0.service")![0]!, "b0.service");
    expect(e?.epoch).toBe(second.term);
    // The lease record names the leader and its epoch.
    const lease = decodeAs(LeaseRecord, (await cl.buckets.leases.get(keys.lease(LEASE_KEY_ENGINE)))!.value, "lease");
    expect(lease).toMatchObject({ holder: second.holder, epoch: second.term });
  });

  it("a stopped leader hands over at once (releases its lease) and can start again", async () => {
    c = await EngineCluster.create(nats.server.url, { leaseTtlMs: 10_000 });
    const cl = c;
    cl.addMachine("m1");
    const a = await cl.startEngine();
    const b = await cl.startEngine();
    const first = await check(() => cl.leader(), 10_000, "one leader");
    const other = first === a ? b : a;
    const t0 = Date.now();
    await first.stop();
    await check(() => other.isLeader, 5000, "the other engine leads");
    expect(Date.now() - t0).toBeLessThan(3000); // far less than the 10 s TTL
    await first.start();
    await cl.putUnit("x.service", unitFile());
    await check(async () => (await cl.schedule()).has("x.service"), 10_000, "placed");
    expect(first.isLeader).toBe(false);
  });

  it("a follower takes a released lease at once (it watches the lease key), not at its next retry", async () => {
    // Lease TTL 10 s: followers retry every 500 ms (leaseTimings). The leader stops just after
    // the follower's failed try: without the watch, the handover waits ~500 ms for its timer.
    c = await EngineCluster.create(nats.server.url, { leaseTtlMs: 10_000 });
    const cl = c;
    cl.addMachine("m1");
    await cl.startEngine();
    await cl.startEngine();
    const took: number[] = [];
    for (let i = 0; i < 4; i++) {
      const leader = await check(() => cl.leader(), 10_000, "one leader");
      const follower = cl.engines.map((e) => e.engine).find((e) => e !== leader)!;
      // The follower lost its last try and waits for its next: ~500 ms away.
      await check(() => follower.leaseState === "follower", 5000, "the other engine following", 1);
      // From the stop on (stop() itself returns later: it closes the lease's connection too).
      const t0 = performance.now();
      const stopped = leader.stop();
      await check(() => follower.isLeader, 5000, "the follower leads", 2);
      took.push(Math.round(performance.now() - t0));
      await stopped;
      await leader.start();
    }
    process.stderr.write(`lease handovers from the leader's stop: ${took.join(", ")} ms\n`);
    expect(Math.max(...took), `handovers from the leader's stop: ${took.join(", ")} ms`).toBeLessThan(200);
  });

  it("two engines never both write: no unit is ever on two machines under churn", async () => {
    c = await EngineCluster.create(nats.server.url);
    const cl = c;
    const violations = await cl.watchInvariant();
    for (const m of ["m1", "m2", "m3", "m4"]) cl.addMachine(m);
    for (let i = 0; i < 3; i++) await cl.startEngine();
    await check(() => cl.leader(), 10_000, "one leader");
    const units = Array.from({ length: 40 }, (_, i) => `u${i}.service`);
    for (const u of units.slice(0, 20)) await cl.putUnit(u, unitFile());
    // churn: kill leaders, drain/kill machines, add machines and units, start engines
    for (let round = 0; round < 3; round++) {
      const l = await check(() => cl.leader(), 10_000, "a leader");
      await cl.killEngine(l);
      await cl.startEngine();
      for (const u of units.slice(20 + round * 5, 25 + round * 5)) await cl.putUnit(u, unitFile());
      if (round === 0) cl.setAvailability("m1", "drain");
      if (round === 1) cl.killMachine("m2");
      if (round === 2) cl.addMachine("m5");
      expect(violations()).toEqual([]);
    }
    for (const u of units.slice(35)) await cl.putUnit(u, unitFile());
    await check(async () => {
      const s = await cl.schedule();
      return units.every((u) => s.get(u)?.length === 1 && !["m1", "m2"].includes(s.get(u)![0]!));
    }, 20_000, "every unit placed once, none on drained m1 or dead m2");
    expect(violations()).toEqual([]);
    const leaders = cl.engines.filter((e) => e.engine.isLeader);
    expect(leaders).toHaveLength(1);
  });

  it("holds its lease on a connection of its own: closed at stop, opened again at start", async () => {
    c = await EngineCluster.create(nats.server.url);
    const cl = c;
    cl.addMachine("m1");
    const engine = await cl.startEngine("e1");
    const opened = cl.engines[0]!.opened;
    await check(() => engine.isLeader, 10_000, "leader");
    expect(opened).toHaveLength(1);
    await check(() => engine.stats.renewals > 0, 10_000, "a renewal answered on the lease connection");
    const t0 = Date.now();
    await engine.stop();
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(opened[0]!.isClosed()).toBe(true);
    expect(engine.isLeader).toBe(false);
    // the monitor restarts components: start after stop must lead again, on a new connection
    await engine.start();
    await check(() => engine.isLeader, 10_000, "leader again after a restart");
    expect(opened).toHaveLength(2);
    expect(opened[1]!.isClosed()).toBe(false);
    await cl.putUnit("after-restart.service", unitFile());
    await check(async () => (await cl.schedule()).get("after-restart.service")?.[0] === "m1", 10_000, "placed after the restart");
  });

  it("starts and leads on the shared connection when the lease's own connection cannot be had", async () => {
    c = await EngineCluster.create(nats.server.url);
    const cl = c;
    cl.addMachine("m1");
    const { log, lines } = capturingLogger();
    const engine = await cl.startEngine("e1", log, {
      leaseConnect: () => Promise.reject(new Error("cannot reach NATS at nats://127.0.0.1:1: timeout")),
    });
    await check(() => engine.isLeader, 10_000, "the engine to lead on the shared connection");
    await cl.putUnit("still-placed.service", unitFile());
    await check(async () => (await cl.schedule()).get("still-placed.service")?.[0] === "m1", 10_000, "the unit placed");
    expect(lines.some((l) => /lease's own NATS connection is not available/.test(l))).toBe(true);
  });

  it("skips a garbage value in any bucket with a log line, and keeps working", async () => {
    c = await EngineCluster.create(nats.server.url);
    const cl = c;
    const junk = new Uint8Array([0xc1, 0xff, 0x00, 0x13]);
    // garbage lease first: the engine waits for it to expire (lease TTL), then leads
    await cl.buckets.leases.put(keys.lease(LEASE_KEY_ENGINE), junk);
    await cl.buckets.units.put(keys.unit("junk.service"), junk);
    await cl.buckets.units.put(keys.unit("half.service"), encode({ name: "half.service" }));
    await cl.buckets.machines.put(keys.machine("mjunk"), junk);
    await cl.buckets.schedule.put(keys.schedule("m1", "junk.service"), junk);
    await cl.buckets.schedule.put("nodot", encode({ hello: 1 }));
    await cl.buckets.schedule.put(keys.unplaced("junk.service"), junk);
    cl.addMachine("m1");
    await cl.putUnit("good.service", unitFile());
    const { log, lines } = capturingLogger();
    const engine = await cl.startEngine("e1", log);
    await check(() => engine.isLeader, 10_000, "leader once the garbage lease expired");
    await check(async () => (await cl.schedule()).get("good.service")?.[0] === "m1", 10_000, "good placed");
    // The machines bucket's TTL is the agent TTL (2 s), longer than the lease TTL (1.5 s) but not
    // by much: the junk machine key may expire before the new leader watches machines. Put it
    // again until the leader has seen (and skipped) it.
    await check(async () => {
      if (lines.join("").includes("skipping a garbage value in machines")) return true;
      await cl.buckets.machines.put(keys.machine("mjunk"), junk);
      return false;
    }, 10_000, "the junk machine record skipped with a log line");
    const text = lines.join("");
    expect(text).toContain("skipping an unreadable lease record");
    expect(text).toContain("skipping a garbage value in units");
    expect(text).toMatch(/units\/half\.service: field (hash|contents)/);
    expect(text).toContain("skipping a garbage value in machines");
    expect(text).toContain("skipping a garbage value in schedule");
    expect(text).toContain("skipping a schedule key that names no machine and unit");
    expect(text).toContain("skipping a garbage unplaced reason");
    expect(engine.isLeader).toBe(true);
  });

  it("a leader that cannot watch the cluster state stands again, and leads once it can", async () => {
    c = await EngineCluster.create(nats.server.url);
    const cl = c;
    cl.addMachine("m1");
    // Someone else's lease (unreadable) holds the engine back for a lease TTL; meanwhile the
    // units bucket goes, so the new leader cannot open its watch.
    await cl.buckets.leases.put(keys.lease(LEASE_KEY_ENGINE), new Uint8Array([0xc1]));
    const { log, lines } = capturingLogger();
    const engine = await cl.startEngine("e1", log);
    const jsm = await jetstreamManager(nats.nc);
    await jsm.streams.delete(`KV_${cl.names.bucket("units")}`);
    expect(engine.isLeader).toBe(false);
    await check(() => lines.some((l) => /cannot watch the cluster state.*standing again/.test(l)), 10_000, "the engine standing again").catch((e: Error) => {
      throw new Error(`${e.message}\n${lines.join("")}`);
    });
    // Before, it resigned for good: nothing was placed again until the daemon restarted.
    await ensureBuckets(nats.nc, cl.names, cl.o);
    await cl.putUnit("back.service", unitFile());
    await check(async () => (await cl.schedule()).get("back.service")?.[0] === "m1", 15_000, "placed once the bucket is back");
    expect(engine.isLeader).toBe(true);
  });

  it("notices a write into the schedule that is not its own, and repairs it", async () => {
    c = await EngineCluster.create(nats.server.url);
    const cl = c;
    cl.addMachine("m1");
    cl.addMachine("m2");
    const { log, lines } = capturingLogger();
    await cl.startEngine("e1", log);
    await check(() => cl.leader(), 10_000, "leader");
    await cl.putUnit("x.service", unitFile({ MachineID: "m1" }));
    const first = await check(async () => (await cl.entry("m1", "x.service")) ?? undefined, 10_000, "x on m1");
    // a stray copy on m2, as a hand edit or a deposed leader's late write would leave it
    await cl.buckets.schedule.put(keys.schedule("m2", "x.service"), encode({ ...first, machineId: "m2" }));
    await check(async () => {
      const s = await cl.schedule();
      return s.get("x.service")?.join() === "m1";
    }, 10_000, "the stray copy removed");
    expect(lines.join("")).toContain("the schedule changed behind our back; reloading it");
  });
});
