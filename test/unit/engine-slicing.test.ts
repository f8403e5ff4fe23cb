// Issue 10: the leader's long work gives the event loop turns (src/engine/slicer.ts) and parses a
// unit file shared by many units once, with the same decisions as before.
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import pino from "pino";
import { ScheduleWriter } from "../../src/engine/schedule-writer.js";
import { ClusterViews, toEngineUnit } from "../../src/engine/views.js";
import { Liveness } from "../../src/engine/liveness.js";
import { placeFresh, placeFreshSliced } from "../../src/engine/fast-path.js";
import { NO_FLEET_OPTIONS, type Action, type EngineMachine, type EngineUnit } from "../../src/engine/model.js";
import { MemoryEngineStore } from "../../src/store/memory-store.js";
import { decodeAs, encode } from "../../src/protocol/codec.js";
import { keys } from "../../src/protocol/names.js";
import { ScheduleEntry, type UnitRecord } from "../../src/protocol/messages.js";
import { clearUnitCache, parseUnitFileCached, unitCacheSize } from "../../src/unit/index.js";
import { describeError } from "../../src/protocol/errors.js";

const sha1 = (s: string) => createHash("sha1").update(s).digest("hex");
const record = (name: string, contents: string): UnitRecord => ({ name, contents, hash: sha1(contents), desiredState: "launched", version: 1, createdAt: 1, updatedAt: 1 });

/** Counts turns of the event loop (setImmediate) until stopped. */
function turns(): { count: () => number; stop: () => void } {
  let n = 0;
  let on = true;
  const tick = () => {
    if (!on) return;
    n++;
    setImmediate(tick);
  };
  setImmediate(tick);
  return { count: () => n, stop: () => (on = false) };
}

describe("the schedule writer at scale", () => {
  it("gives the event loop turns while it encodes and accounts 50,000 placements, each proven at its revision", async () => {
    const store = new MemoryEngineStore();
    const writer = new ScheduleWriter(store, pino({ level: "silent" }), store.schedulePublisher());
    const contents = "[Service]\nExecStart=/bin/sleep 600\n";
    const units = new Map<string, EngineUnit>();
    const actions: Action[] = [];
    for (let i = 0; i < 50_000; i++) {
      const name = `u${i}.service`;
      units.set(name, { name, hash: sha1(contents), desiredState: "launched", contents, fleet: NO_FLEET_OPTIONS });
      actions.push({ type: "schedule", unit: name, machineId: `m${i % 100}`, reason: "least loaded" });
    }
    const t = turns();
    const res = await writer.execute(actions, { epoch: 3, units, leading: () => true, leaseHeld: () => true, base: 0 });
    const during = t.count();
    t.stop();
    expect(res.failures).toBe(0);
    expect(res.aborted).toBeUndefined();
    expect(res.put).toHaveLength(50_000);
    // Before, the whole batch was encoded and accounted in one go: no turn at all.
    expect(during).toBeGreaterThan(0);
    res.put.forEach((p, i) => {
      expect(p.revision).toBe(i + 1);
      expect(p.key).toBe(keys.schedule(`m${i % 100}`, `u${i}.service`));
    });
    const live = store.schedule.live();
    const last = live.get(keys.schedule("m99", "u49999.service"))!;
    expect(decodeAs(ScheduleEntry, last, "test")).toMatchObject({ unit: "u49999.service", machineId: "m99", epoch: 3, contents });
  });
});

describe("the fast path, sliced", () => {
  it("decides what placeFresh decides for 60,000 fresh units, giving the event loop turns", async () => {
    const machines = new Map<string, EngineMachine>();
    for (let i = 0; i < 50; i++) machines.set(`m${i}`, { id: `m${i}`, metadata: {}, capacity: { cpu: 4, memory: 2 ** 30 }, availability: i % 7 ? "active" : "pause" });
    const units = new Map<string, EngineUnit>();
    const fresh: string[] = [];
    for (let i = 0; i < 60_000; i++) {
      const name = `f${(i * 7919) % 60_000}.service`;
      units.set(name, { name, hash: "h", desiredState: "launched", contents: "", fleet: NO_FLEET_OPTIONS });
      fresh.push(name);
    }
    const loads = new Map([...machines.keys()].map((id, i) => [id, i % 5]));
    const want = placeFresh({ fresh, units, loads, machines });
    const t = turns();
    const got = await placeFreshSliced({ fresh, units, loads, machines });
    const during = t.count();
    t.stop();
    expect(got).toEqual(want);
    expect(during).toBeGreaterThan(0);
  });
});

describe("[X-Fleet] options by contents", () => {
  it("parses a file shared by 1,000 units once, and gives each unit what its own parse gives", () => {
    clearUnitCache();
    const shared = "[Service]\nExecStart=/bin/sleep 600\n[X-Fleet]\nMachineMetadata=region=r1\nConflicts=web-*\n";
    const first = toEngineUnit("web-0.service", record("web-0.service", shared));
    for (let i = 1; i < 1000; i++) expect(toEngineUnit(`web-${i}.service`, record(`web-${i}.service`, shared)).fleet).toBe(first.fleet);
    // Before, each name was parsed (and frozen, and kept) on its own: 1,000 entries.
    expect(unitCacheSize()).toBeLessThanOrEqual(1);
    expect(first.fleet.machineMetadata).toEqual({ region: ["r1"] });

    // Where the name matters, the answer is the name's own parse: MachineOf naming the unit
    // itself, a bad name, specifiers, a file that does not parse.
    const follow = "[Service]\nExecStart=/bin/true\n[X-Fleet]\nMachineOf=a.service\n";
    const spec = "[Service]\nExecStart=/bin/true\n[X-Fleet]\nMachineMetadata=host=%i\n";
    const broken = "[Service]\n[X-Fleet]\nMachineOf=a.service\n";
    const cases: [string, string][] = [
      ["b.service", follow],
      ["a.service", follow],
      ["c.service", follow],
      ["bad name.service", follow],
      ["x.timer", follow],
      ["h@1.service", spec],
      ["h@2.service", spec],
      ["p.service", broken],
      ["q.service", broken],
    ];
    for (const [name, contents] of cases) {
      const u = toEngineUnit(name, record(name, contents));
      let want: { fleet?: unknown; invalid?: string };
      try {
        want = { fleet: parseUnitFileCached(name, contents).fleet };
      } catch (e) {
        want = { invalid: describeError(e) };
      }
      if (want.invalid !== undefined) expect(u.invalid, name).toBe(want.invalid);
      else {
        expect(u.invalid, name).toBeUndefined();
        expect(u.fleet, name).toEqual(want.fleet);
      }
    }
    expect(toEngineUnit("a.service", record("a.service", follow)).invalid).toMatch(/names the unit itself/);
    expect(toEngineUnit("h@2.service", record("h@2.service", spec)).fleet.machineMetadata).toEqual({ host: ["2"] });
    expect(toEngineUnit("q.service", record("q.service", broken)).invalid).toMatch(/q\.service has no command/);
  });
});

describe("the intake", () => {
  it("takes units in without parsing their files: the options are parsed when first read, in the round's sliced pass", () => {
    clearUnitCache();
    const v = new ClusterViews(pino({ level: "silent" }), new Liveness(1000));
    // Files that do not parse: their errors are what the per-name cache keeps, once parsed.
    for (let i = 0; i < 100; i++) {
      const name = `b${i}.service`;
      expect(v.onUnit({ key: name, operation: "PUT", value: encode(record(name, `[Service]\n[X-Fleet]\nMachineOf=b${i + 1}.service\n`)), revision: i + 1 })).toBe(true);
    }
    expect(v.notPlain.size).toBe(100);
    // New units of any kind are "fresh" (the incremental rounds take them); "other" is the first round's.
    expect(v.takeChanges()).toEqual({ fresh: Array.from({ length: 100 }, (_, i) => `b${i}.service`), other: true });
    // Before, each was parsed in the watch callback.
    expect(unitCacheSize()).toBe(0);
    expect(v.units.get("b7.service")!.invalid).toMatch(/b7\.service has no command/);
    expect(v.units.get("b7.service")!.fleet).toBe(NO_FLEET_OPTIONS);
    expect(unitCacheSize()).toBe(1);
  });

  it("counts as fresh the units first seen and those made active with the same file; any other change calls for a full pass", () => {
    const v = new ClusterViews(pino({ level: "silent" }), new Liveness(1000));
    v.takeChanges();
    let rev = 0;
    const put = (name: string, contents: string, desiredState: UnitRecord["desiredState"]) =>
      v.onUnit({ key: name, operation: "PUT", value: encode({ ...record(name, contents), desiredState }), revision: ++rev });
    const file = "[Service]\nExecStart=/bin/true\n[X-Fleet]\nConflicts=web-*\n";
    put("web-1.service", file, "launched");
    put("web-2.service", file, "inactive");
    expect(v.takeChanges()).toEqual({ fresh: ["web-1.service", "web-2.service"], other: false });
    put("web-2.service", file, "launched"); // fleetctl start of a submitted unit
    expect(v.takeChanges()).toEqual({ fresh: ["web-2.service"], other: false });
    put("web-1.service", file, "loaded"); // a stop: the placement is rewritten
    expect(v.takeChanges()).toEqual({ fresh: [], other: true });
    put("web-3.service", file, "inactive");
    v.takeChanges();
    put("web-3.service", `${file}MachineOf=web-1.service\n`, "launched"); // made active with a new file
    expect(v.takeChanges()).toEqual({ fresh: [], other: true });
  });
});
