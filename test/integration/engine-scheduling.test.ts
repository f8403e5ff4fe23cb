// fleet's functional scheduling scenarios against a real nats-server: one in-process engine,
// simulated machines (records refreshed in `machines`), units written into `units`.
// Global units are run by the agents themselves (fleet's way), so "globals on every machine"
// is the agent's test; here only the engine's side of globals is checked.
import { afterEach, describe, expect, it } from "vitest";
import { useNatsServer } from "../helpers/fixture.js";
import { check } from "../helpers/check.js";
import { EngineCluster, unitFile } from "../helpers/engine-cluster.js";
import { decodeAs } from "../../src/protocol/codec.js";
import { UnplacedRecord } from "../../src/protocol/messages.js";
import { keys } from "../../src/protocol/names.js";

const nats = useNatsServer();
let c: EngineCluster | undefined;
afterEach(async () => {
  await c?.dispose();
  c = undefined;
});

async function cluster(machines: string[] | Record<string, Record<string, string>>): Promise<EngineCluster> {
  c = await EngineCluster.create(nats.server.url);
  if (Array.isArray(machines)) for (const m of machines) c.addMachine(m);
  else for (const [m, metadata] of Object.entries(machines)) c.addMachine(m, { metadata });
  await c.startEngine();
  await check(() => c!.leader(), 10_000, "an engine leader");
  return c;
}

describe("engine scheduling (fleet's functional scenarios)", () => {
  it("MachineOf pairs are colocated and migrate together when their machine dies", async () => {
    const c = await cluster(["m1", "m2", "m3"]);
    await c.putUnit("ping.service", unitFile());
    await c.putUnit("pong.service", unitFile({ MachineOf: "ping.service" }));
    const first = await check(async () => {
      const s = await c.schedule();
      const a = s.get("ping.service");
      const b = s.get("pong.service");
      return a?.length === 1 && b?.length === 1 && a[0] === b[0] ? a[0] : undefined;
    }, 10_000, "ping and pong together");
    c.killMachine(first);
    await check(async () => {
      const s = await c.schedule();
      const a = s.get("ping.service");
      const b = s.get("pong.service");
      return a?.length === 1 && b?.length === 1 && a[0] === b[0] && a[0] !== first;
    }, 10_000, "ping and pong moved together off the dead machine");
  });

  it("5 units with Conflicts=conflict.* on 3 machines: exactly 3 placed, on distinct machines", async () => {
    const c = await cluster(["m1", "m2", "m3"]);
    for (let i = 0; i < 5; i++) await c.putUnit(`conflict.${i}.service`, unitFile({ Conflicts: "conflict.*" }));
    await check(async () => {
      const s = await c.schedule();
      const machines = [...s.values()].flat();
      return s.size === 3 && new Set(machines).size === 3 && machines.length === 3;
    }, 10_000, "3 placed on distinct machines");
    const s = await c.schedule();
    const unplaced = [0, 1, 2, 3, 4].map((i) => `conflict.${i}.service`).filter((u) => !s.has(u));
    expect(unplaced).toHaveLength(2);
    for (const u of unplaced) {
      const reason = await check(() => c.unplacedReason(u), 5000, `reason for ${u}`);
      expect(reason).toMatch(/^3 machines conflict with conflict\.\d\.service|^1 machine conflicts with/);
    }
  });

  it("a one-way conflict blocks until the other unit is destroyed", async () => {
    const c = await cluster(["m1"]);
    await c.putUnit("b.service", unitFile());
    await check(async () => (await c.schedule()).has("b.service"), 10_000, "b placed");
    await c.putUnit("a.service", unitFile({ Conflicts: "b.service" }));
    expect(await check(() => c.unplacedReason("a.service"), 10_000, "a's reason")).toBe("1 machine conflicts with b.service");
    expect((await c.schedule()).has("a.service")).toBe(false);
    await c.destroyUnit("b.service");
    await check(async () => {
      const s = await c.schedule();
      return s.get("a.service")?.[0] === "m1" && !s.has("b.service");
    }, 10_000, "a placed once b is destroyed");
    await check(async () => (await c.unplacedReason("a.service")) === undefined, 5000, "a's reason cleared");
  });

  it("Replaces moves the replaced unit to another machine", async () => {
    const c = await cluster({ m1: { slot: "a" }, m2: { slot: "b" } });
    await c.putUnit("old.service", unitFile({ MachineMetadata: "slot=a" }));
    await c.putUnit("filler.service", unitFile({ MachineMetadata: "slot=b" }));
    await check(async () => (await c.schedule()).get("old.service")?.[0] === "m1", 10_000, "old on m1");
    // old can only run on m1, so once replaced it has nowhere to go: it waits, and says why.
    await c.putUnit("new.service", unitFile({ Replaces: "old.service" }));
    await check(async () => {
      const s = await c.schedule();
      return s.get("new.service")?.[0] === "m1" && !s.has("old.service");
    }, 10_000, "new took m1, old moved off");
    expect(await check(() => c.unplacedReason("old.service"), 5000, "old's reason")).toBe(
      "1 machine lacks slot=a; 1 runs new.service, which replaces it",
    );
    // an unconstrained replaced unit moves to the other machine
    await c.putUnit("old2.service", unitFile());
    const where = await check(async () => (await c.schedule()).get("old2.service")?.[0], 10_000, "old2 placed");
    const slot = where === "m1" ? "a" : "b";
    await c.putUnit("new2.service", unitFile({ Replaces: "old2.service", MachineMetadata: `slot=${slot}` }));
    await check(async () => {
      const s = await c.schedule();
      return s.get("new2.service")?.[0] === where && s.get("old2.service")?.length === 1 && s.get("old2.service")![0] !== where;
    }, 10_000, "old2 moved away from new2");
  });

  it("two units replacing each other: only one is placed", async () => {
    const c = await cluster(["m1"]);
    await c.putUnit("a.service", unitFile({ Replaces: "b.service" }));
    await c.putUnit("b.service", unitFile({ Replaces: "a.service" }));
    await check(async () => (await c.schedule()).size === 1, 10_000, "one placed");
    const s = await c.schedule();
    const other = s.has("a.service") ? "b.service" : "a.service";
    expect(await check(() => c.unplacedReason(other), 5000, "the other's reason")).toMatch(/which replaces it$/);
    expect((await c.schedule()).size).toBe(1);
  });

  it("MachineID is honoured, by full or short ID", async () => {
    const c = await cluster(["0123456789abcdef", "fedcba9876543210", "aaaaaaaaaaaaaaaa"]);
    await c.putUnit("full.service", unitFile({ MachineID: "fedcba9876543210" }));
    await c.putUnit("short.service", unitFile({ MachineID: "01234567" }));
    await c.putUnit("nowhere.service", unitFile({ MachineID: "ffffffffffffffff" }));
    await check(async () => {
      const s = await c.schedule();
      return s.get("full.service")?.[0] === "fedcba9876543210" && s.get("short.service")?.[0] === "0123456789abcdef";
    }, 10_000, "pinned units on their machines");
    expect(await check(() => c.unplacedReason("nowhere.service"), 5000, "reason")).toBe("3 machines are not MachineID=ffffffffffffffff");
  });

  it("on 4 machines, killing one moves only its unit, to the free machine", async () => {
    const c = await cluster(["m1", "m2", "m3", "m4"]);
    for (const u of ["a", "b", "c"]) await c.putUnit(`${u}.service`, unitFile());
    const before = await check(async () => {
      const s = await c.schedule();
      return s.size === 3 ? new Map([...s].map(([u, ms]) => [u, ms[0]!])) : undefined;
    }, 10_000, "3 placed");
    const used = new Set(before.values());
    const free = ["m1", "m2", "m3", "m4"].find((m) => !used.has(m))!;
    const [victimUnit, victim] = [...before].find(([, m]) => m !== free)!;
    c.killMachine(victim);
    await check(async () => (await c.schedule()).get(victimUnit)?.[0] === free, 10_000, `${victimUnit} moved to ${free}`);
    const after = await c.schedule();
    for (const [u, m] of before) if (u !== victimUnit) expect(after.get(u)).toEqual([m]);
  });

  it("metadata constraints: placed only where the metadata matches, or says why", async () => {
    const c = await cluster({ m1: { region: "us" }, m2: { region: "eu", disk: "ssd" }, m3: { region: "eu" } });
    await c.putUnit("eu-ssd.service", unitFile({ MachineMetadata: ["region=eu", "disk=ssd"] }));
    await c.putUnit("ap.service", unitFile({ MachineMetadata: "region=ap" }));
    await check(async () => (await c.schedule()).get("eu-ssd.service")?.[0] === "m2", 10_000, "eu-ssd on m2");
    expect(await check(() => c.unplacedReason("ap.service"), 5000, "ap's reason")).toBe("3 machines lack region=ap");
    // The same, structured per machine, in the stored record (status and the UI show it).
    const rec = decodeAs(UnplacedRecord, (await c.buckets.schedule.get(keys.unplaced("ap.service")))!.value, "unplaced");
    expect(rec.refusals).toEqual([{ why: "lacks region=ap", count: 3, machines: ["m1", "m2", "m3"] }]);
  });

  it("drain moves units away; pause takes no new units but keeps its own", async () => {
    const c = await cluster(["m1", "m2"]);
    await c.putUnit("a.service", unitFile({ MachineID: "m1" }));
    await c.putUnit("b.service", unitFile());
    await check(async () => (await c.schedule()).size === 2, 10_000, "both placed");
    c.setAvailability("m1", "pause");
    await c.putUnit("c.service", unitFile());
    await check(async () => (await c.schedule()).get("c.service")?.[0] === "m2", 10_000, "c avoids the paused m1");
    expect((await c.schedule()).get("a.service")).toEqual(["m1"]);
    c.setAvailability("m1", "drain");
    await check(async () => !(await c.schedule()).has("a.service"), 10_000, "a drained off m1");
    expect(await check(() => c.unplacedReason("a.service"), 5000, "a's reason")).toBe("1 machine is draining; 1 is not MachineID=m1");
    await c.putUnit("d.service", unitFile());
    await check(async () => (await c.schedule()).get("d.service")?.[0] === "m2", 10_000, "d avoids the draining m1");
    c.setAvailability("m1", "active");
    await check(async () => (await c.schedule()).get("a.service")?.[0] === "m1", 10_000, "a back on m1 once active");
  });

  it("writes desired-state changes into the entry and removes entries of inactive units", async () => {
    const c = await cluster(["m1"]);
    await c.putUnit("x.service", unitFile(), "loaded");
    await check(async () => (await c.entry("m1", "x.service"))?.desiredState === "loaded", 10_000, "loaded entry");
    await c.putUnit("x.service", unitFile(), "launched");
    const e = await check(async () => {
      const e = await c.entry("m1", "x.service");
      return e?.desiredState === "launched" ? e : undefined;
    }, 10_000, "launched entry");
    expect(e.epoch).toBe(c.leader()!.term);
    expect(e.contents).toContain("ExecStart=/bin/sleep 600");
    await c.putUnit("x.service", unitFile(), "inactive");
    await check(async () => !(await c.schedule()).has("x.service"), 10_000, "entry removed");
  });

  it("bursts of plain units take the fast path and still land least loaded across pauses, deletes and new machines", async () => {
    const c = await cluster(["m1", "m2", "m3"]);
    const engine = c.leader()!;
    const counts = async () => {
      const per: Record<string, number> = {};
      for (const [, on] of await c.schedule()) for (const m of on) per[m] = (per[m] ?? 0) + 1;
      return per;
    };
    const settle = (want: Record<string, number>, what: string) =>
      check(async () => JSON.stringify(await counts()) === JSON.stringify(want) && want, 10_000, what).catch(async (e: Error) => {
        throw new Error(`${e.message}: have ${JSON.stringify(await counts())}`);
      });
    const put = (from: number, to: number) => Promise.all(Array.from({ length: to - from }, (_, i) => c.putUnit(`p${from + i}.service`, unitFile())));
    /**
     * Waits until the engine has seen a machine change: a probe unit with MachineID= is placed
     * there (or refused for a pause), then it is destroyed again, so the counts stay plain.
     */
    let probes = 0;
    const seen = async (machine: string, takesUnits: boolean) => {
      const name = `probe${++probes}.service`;
      await c.putUnit(name, unitFile({ MachineID: machine }));
      if (takesUnits) await check(async () => (await c.schedule()).get(name)?.[0] === machine, 10_000, `${name} on ${machine}`);
      else await check(async () => /paused/.test((await c.unplacedReason(name)) ?? ""), 10_000, `${name} refused by paused ${machine}`);
      await c.destroyUnit(name);
      await check(async () => !(await c.schedule()).has(name) && (await c.unplacedReason(name)) === undefined, 10_000, `${name} gone`);
    };
    // Least loaded first, ties by machine ID, whatever the rounds: the counts below are the
    // full reconciler's answer at each step.
    await put(0, 30);
    await settle({ m1: 10, m2: 10, m3: 10 }, "30 plain units spread 10/10/10");
    expect(engine.stats.fastRounds).toBeGreaterThan(0);
    // paused m1 takes nothing new (the ties would otherwise go to m1)
    c.setAvailability("m1", "pause");
    await seen("m1", false);
    await put(30, 37);
    await settle({ m1: 10, m2: 14, m3: 13 }, "7 more on m2 and m3 only");
    // 5 removed from m2: the per-machine counts must follow (else the next ones go to m3)
    const onM2 = [...(await c.schedule())].filter(([, on]) => on[0] === "m2").map(([u]) => u).slice(0, 5);
    for (const u of onM2) await c.destroyUnit(u);
    await settle({ m1: 10, m2: 9, m3: 13 }, "5 removed from m2");
    await put(37, 39);
    await settle({ m1: 10, m2: 11, m3: 13 }, "2 more, both on m2");
    c.setAvailability("m1", "active");
    await seen("m1", true);
    await put(39, 40);
    await settle({ m1: 11, m2: 11, m3: 13 }, "the next one on m1, active again");
    c.addMachine("m4");
    await seen("m4", true);
    const fastBefore = engine.stats.fastRounds;
    await put(40, 51);
    await settle({ m1: 11, m2: 11, m3: 13, m4: 11 }, "11 more, all on the new m4");
    expect(engine.stats.fastRounds).toBeGreaterThan(fastBefore);
  });
});
