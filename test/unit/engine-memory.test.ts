// The engine's logic on the in-memory store (src/store/memory-store.ts): the same Engine, rounds,
// schedule writer and lease effects as on NATS, without a server, in milliseconds.
import { createHash } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import pino from "pino";
import { Engine } from "../../src/engine/engine.js";
import { MemoryEngineStore } from "../../src/store/memory-store.js";
import { decodeAs, encode } from "../../src/protocol/codec.js";
import { keys, LEASE_KEY_ENGINE } from "../../src/protocol/names.js";
import { ScheduleEntry, UnplacedRecord, type LeaseRecord, type MachineRecord, type UnitRecord } from "../../src/protocol/messages.js";
import { check, holds } from "../helpers/check.js";

const engines: Engine[] = [];
afterEach(async () => {
  for (const e of engines.splice(0)) await e.stop();
});

function machine(id: string, metadata: Record<string, string> = {}): MachineRecord {
  const now = Date.now();
  return { id, hostname: id, publicIp: "", metadata, capacity: { cpu: 4, memory: 2 ** 33 }, availability: "active", version: "t", startedAt: now, session: id, heartbeatAt: now };
}

function unit(name: string, contents = "[Service]\nExecStart=/bin/sleep 600\n"): UnitRecord {
  return { name, contents, hash: createHash("sha1").update(contents).digest("hex"), desiredState: "launched", version: 1, createdAt: 1, updatedAt: 1 };
}

async function leader(store: MemoryEngineStore, o: { agentTtlMs?: number; leaseTtlMs?: number } = {}): Promise<Engine> {
  const e = new Engine({ store, log: pino({ level: "silent" }), machineId: "e1", leaseTtlMs: o.leaseTtlMs ?? 3000, agentTtlMs: o.agentTtlMs ?? 5000, reconcileIntervalMs: 200 });
  engines.push(e);
  await e.start();
  await check(() => e.isLeader, 5000, "leading");
  return e;
}

/** unit -> machines, from the schedule as the store holds it. */
function placements(store: MemoryEngineStore): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [k, v] of store.schedule.live()) {
    const p = keys.parseSchedule(k);
    if (!p || keys.parseUnplaced(k) !== undefined) continue;
    decodeAs(ScheduleEntry, v, k);
    out.set(p.unit, [...(out.get(p.unit) ?? []), p.machineId]);
  }
  return out;
}

describe("the engine on the in-memory store", () => {
  it("places units least loaded, and says per machine why one cannot be placed", async () => {
    const store = new MemoryEngineStore();
    for (const m of ["m1", "m2", "m3"]) store.machines.write(keys.machine(m), encode(machine(m, { region: "us" })));
    for (let i = 0; i < 9; i++) store.units.write(keys.unit(`u${i}.service`), encode(unit(`u${i}.service`)));
    store.units.write(keys.unit("eu.service"), encode(unit("eu.service", "[Service]\nExecStart=/bin/true\n[X-Fleet]\nMachineMetadata=region=eu\n")));
    const e = await leader(store);
    await check(() => placements(store).size === 9, 5000, "9 placed");
    const per = new Map<string, number>();
    for (const [, ms] of placements(store)) for (const m of ms) per.set(m, (per.get(m) ?? 0) + 1);
    expect([...per.values()]).toEqual([3, 3, 3]);
    const why = await check(() => store.schedule.live().get(keys.unplaced("eu.service")), 5000, "eu's reason");
    expect(decodeAs(UnplacedRecord, why, "unplaced")).toMatchObject({ reason: "3 machines lack region=eu", refusals: [{ why: "lacks region=eu", count: 3, machines: ["m1", "m2", "m3"] }] });
    expect(e.state).toMatchObject({ leading: expect.any(String) });
  });

  it("repairs a write into the schedule that is not its own", async () => {
    const store = new MemoryEngineStore();
    store.machines.write(keys.machine("m1"), encode(machine("m1")));
    store.units.write(keys.unit("a.service"), encode(unit("a.service")));
    await leader(store);
    await check(() => placements(store).get("a.service")?.[0] === "m1", 5000, "a on m1");
    // Someone else puts a.service on a machine that does not exist as well.
    const u = unit("a.service");
    store.schedule.write(keys.schedule("ghost", "a.service"), encode({ unit: u.name, machineId: "ghost", hash: u.hash, desiredState: "launched", contents: u.contents, epoch: 1, scheduledAt: 1 } satisfies ScheduleEntry));
    await check(() => JSON.stringify(placements(store).get("a.service")) === '["m1"]', 5000, "the foreign entry removed");
  });

  it("moves the units of a machine that stopped beating, after the agent TTL", async () => {
    const store = new MemoryEngineStore();
    store.machines.write(keys.machine("m1"), encode(machine("m1")));
    store.machines.write(keys.machine("m2"), encode(machine("m2")));
    for (let i = 0; i < 4; i++) store.units.write(keys.unit(`u${i}.service`), encode(unit(`u${i}.service`)));
    await leader(store, { agentTtlMs: 400 });
    // m1 keeps beating; m2 falls silent.
    const beat = setInterval(() => store.machines.write(keys.machine("m1"), encode(machine("m1"))), 100);
    try {
      // First spread over both (m2 is live for one TTL of grace), then all moved to m1.
      const first = await check(() => (placements(store).size === 4 ? [...placements(store).values()].map((ms) => ms[0]) : undefined), 5000, "4 placed");
      expect(first.filter((m) => m === "m2")).toHaveLength(2);
      await check(() => [...placements(store).values()].every((ms) => ms.length === 1 && ms[0] === "m1"), 5000, "all on m1");
    } finally {
      clearInterval(beat);
    }
  });

  it("stops writing once someone else holds the lease", async () => {
    const store = new MemoryEngineStore();
    store.machines.write(keys.machine("m1"), encode(machine("m1")));
    const e = await leader(store, { leaseTtlMs: 600 });
    store.leases.write(keys.lease(LEASE_KEY_ENGINE), encode({ holder: "thief/1", epoch: 1e9, expiresAt: Date.now() + 60_000 } satisfies LeaseRecord));
    await check(() => !e.isLeader, 5000, "stepped down");
    store.units.write(keys.unit("late.service"), encode(unit("late.service")));
    await holds(() => !placements(store).has("late.service"), 500, "nothing placed by a deposed leader");
  });
});

describe("a large pass on the in-memory store", () => {
  it("yields to the event loop while it decides (reconcileSliced), and places every unit within its constraints", async () => {
    const store = new MemoryEngineStore();
    for (let m = 0; m < 20; m++) store.machines.write(keys.machine(`m${m}`), encode(machine(`m${m}`)));
    // 6,000 units in groups of 10, each unit conflicting with its group (fleet's replica spread).
    for (let g = 0; g < 600; g++) {
      for (let i = 0; i < 10; i++) {
        const name = `grp${g}-${i}.service`;
        store.units.write(keys.unit(name), encode(unit(name, `[Service]\nExecStart=/bin/true\n[X-Fleet]\nConflicts=grp${g}-*\n`)));
      }
    }
    let seenDeciding = 0;
    let ticking = true;
    const tick = () => {
      if (!ticking) return;
      const st = engines[0]?.state as { leading?: string } | undefined;
      if (st?.leading === "deciding") seenDeciding++;
      setImmediate(tick);
    };
    const e = await leader(store);
    tick();
    await check(() => placements(store).size === 6000, 60_000, "6,000 placed", 20);
    ticking = false;
    expect(e.isLeader).toBe(true);
    // Other work ran while the pass decided: it gave the event loop turns.
    expect(seenDeciding).toBeGreaterThan(0);
    const byGroup = new Map<string, Set<string>>();
    for (const [u, ms] of placements(store)) {
      expect(ms).toHaveLength(1);
      const g = u.split("-")[0]!;
      const set = byGroup.get(g) ?? new Set<string>();
      set.add(ms[0]!);
      byGroup.set(g, set);
    }
    for (const [g, set] of byGroup) expect(set.size, g).toBe(10);
  }, 90_000);

  it("places a stream of constrained units in incremental rounds, as the full pass would (it never undoes one)", async () => {
    const store = new MemoryEngineStore();
    for (let m = 0; m < 20; m++) store.machines.write(keys.machine(`m${m}`), encode(machine(`m${m}`, { region: `r${m % 2}` })));
    // Groups of 10: 9 replicas that conflict with each other, in one region, and a sidecar that follows the first.
    const wave = (w: number) => {
      for (let g = w * 20; g < (w + 1) * 20; g++) {
        for (let i = 0; i < 9; i++) {
          const name = `grp${g}-${i}.service`;
          store.units.write(keys.unit(name), encode(unit(name, `[Service]\nExecStart=/bin/true\n[X-Fleet]\nConflicts=grp${g}-*\nMachineMetadata=region=r${g % 2}\n`)));
        }
        const side = `side${g}.service`;
        store.units.write(keys.unit(side), encode(unit(side, `[Service]\nExecStart=/bin/true\n[X-Fleet]\nMachineOf=grp${g}-0.service\n`)));
      }
    };
    const e = await leader(store);
    for (let w = 0; w < 10; w++) {
      wave(w);
      await check(() => placements(store).size === (w + 1) * 200, 30_000, `wave ${w} placed`, 5);
    }
    expect(e.stats.incrementalRounds).toBeGreaterThanOrEqual(5);
    const all = placements(store);
    for (let g = 0; g < 200; g++) {
      const ms = new Set<string>();
      for (let i = 0; i < 9; i++) {
        const m = all.get(`grp${g}-${i}.service`)![0]!;
        expect(Number(m.slice(1)) % 2, `grp${g} in region r${g % 2}`).toBe(g % 2);
        ms.add(m);
      }
      expect(ms.size, `grp${g} spread`).toBe(9);
      expect(all.get(`side${g}.service`), `side${g} beside grp${g}-0`).toEqual(all.get(`grp${g}-0.service`));
    }
    // The timer's full passes ran meanwhile and found nothing to undo.
    const rounds = e.stats.rounds;
    await check(() => e.stats.rounds > rounds, 5000, "a timer round after the last wave");
    expect(e.stats.unscheduled).toBe(0);
  }, 90_000);
});
