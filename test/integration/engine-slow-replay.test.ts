// A new leader must not decide before it has seen every machine: over a slow link the replay of
// the machines bucket takes seconds, and a first round on half of it would unschedule the units
// of every machine not yet seen (the mass eviction the grace period exists to prevent). The
// engine's watches and writes go through a proxy that carries 32 KB/s; the lease is direct.
import { createHash } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { useNatsServer } from "../helpers/fixture.js";
import { check } from "../helpers/check.js";
import { EngineCluster, unitFile } from "../helpers/engine-cluster.js";
import { ThrottleProxy } from "../helpers/throttle-proxy.js";
import { encode } from "../../src/protocol/codec.js";
import { keys } from "../../src/protocol/names.js";
import type { MachineRecord, ScheduleEntry } from "../../src/protocol/messages.js";

const nats = useNatsServer();
let c: EngineCluster | undefined;
let proxy: ThrottleProxy | undefined;
const timers: NodeJS.Timeout[] = [];
afterEach(async () => {
  for (const t of timers.splice(0)) clearInterval(t);
  await c?.dispose();
  await proxy?.stop();
  c = undefined;
  proxy = undefined;
});

function machine(id: string, pad: string): MachineRecord {
  const now = Date.now();
  return {
    id,
    hostname: id,
    publicIp: "",
    metadata: { pad },
    capacity: { cpu: 4, memory: 8 * 2 ** 30 },
    availability: "active",
    version: "test",
    startedAt: now,
    session: id,
    heartbeatAt: now,
  };
}

describe("a new leader over a slow link", () => {
  it("waits for the whole machines replay before its first round: no unit of a live machine moves", async () => {
    // Agent TTL 8 s: the old code ended the machines replay by a timer at TTL/2 = 4 s.
    c = await EngineCluster.create(nats.server.url, { agentTtlMs: 8000, leaseTtlMs: 3000, reconcileIntervalMs: 1000 });
    const cl = c;
    const pad = "x".repeat(400);
    // 500 idle machines first (about 250 KB: 8 s at 32 KB/s), then the 10 machines that hold
    // the units, beating every second, so that their records come last in the replay.
    await Promise.all(Array.from({ length: 500 }, (_, i) => cl.buckets.machines.put(keys.machine(`idle${String(i).padStart(3, "0")}`), encode(machine(`idle${i}`, pad)))));
    const busy = Array.from({ length: 10 }, (_, i) => `busy${i}`);
    const beat = () => {
      for (const id of busy) void cl.buckets.machines.put(keys.machine(id), encode(machine(id, "")));
    };
    beat();
    timers.push(setInterval(beat, 1000));
    // The schedule as a previous leader left it: one unit on each busy machine.
    const contents = unitFile();
    const hash = createHash("sha1").update(contents).digest("hex");
    for (let i = 0; i < 10; i++) {
      const unit = `u${i}.service`;
      await cl.putUnit(unit, contents);
      const entry: ScheduleEntry = { unit, machineId: busy[i]!, hash, desiredState: "launched", contents, epoch: 1, scheduledAt: Date.now() };
      await cl.buckets.schedule.put(keys.schedule(busy[i]!, unit), encode(entry));
    }
    proxy = await ThrottleProxy.start(nats.server.port, 32 * 1024);
    const engine = await cl.startEngine("e1", undefined, { url: proxy.url });
    await check(() => engine.isLeader && engine.stats.rounds >= 1, 40_000, "the first round");
    expect(engine.stats.unscheduled).toBe(0);
    const placed = await cl.schedule();
    for (let i = 0; i < 10; i++) expect(placed.get(`u${i}.service`)).toEqual([busy[i]]);
  }, 60_000);
});
