import { describe, expect, it } from "vitest";
import { reconcile, reconcileSliced } from "../../src/engine/reconciler.js";
import { ClusterState, combine, globMatches } from "../../src/engine/scheduler.js";
import { NO_FLEET_OPTIONS, type Action, type EngineMachine, type EngineUnit, type Placement } from "../../src/engine/model.js";
import type { FleetOptions } from "../../src/unit/types.js";

function unit(name: string, fleet: Partial<FleetOptions> = {}, desiredState: EngineUnit["desiredState"] = "launched"): EngineUnit {
  return {
    name,
    hash: "h-" + name,
    desiredState,
    contents: "",
    fleet: { machineOf: [], machineMetadata: {}, conflicts: [], global: false, replaces: [], ...fleet },
  };
}
function machine(id: string, o: Partial<EngineMachine> = {}): EngineMachine {
  return { id, metadata: {}, capacity: { cpu: 4, memory: 8 * 2 ** 30 }, availability: "active", ...o };
}
function at(u: EngineUnit, machineId: string): Placement {
  return { unit: u.name, machineId, hash: u.hash, desiredState: u.desiredState };
}
function run(units: EngineUnit[], machines: EngineMachine[], placements: Placement[] = [], unplaced: [string, string][] = []): Action[] {
  return reconcile({
    units: new Map(units.map((u) => [u.name, u])),
    machines: new Map(machines.map((m) => [m.id, m])),
    placements,
    unplaced: new Map(unplaced),
  });
}
/** Applies actions to placements, as the writer would; returns unit -> machine. */
function apply(placements: Placement[], actions: Action[], units: EngineUnit[]): Map<string, string> {
  const by = new Map(placements.map((p) => [p.unit + "@" + p.machineId, p]));
  for (const a of actions) {
    if (a.type === "unschedule") by.delete(a.unit + "@" + a.machineId);
    if (a.type === "schedule") {
      const u = units.find((x) => x.name === a.unit)!;
      by.set(a.unit + "@" + a.machineId, at(u, a.machineId));
    }
  }
  return new Map([...by.values()].map((p) => [p.unit, p.machineId]));
}
/** Runs rounds until no action changes the schedule (as the engine does), returns unit -> machine. */
function converge(units: EngineUnit[], machines: EngineMachine[], start: Placement[] = []): { where: Map<string, string>; last: Action[] } {
  let placements = start;
  let last: Action[] = [];
  for (let i = 0; i < 10; i++) {
    last = run(units, machines, placements);
    const moves = last.filter((a) => a.type === "schedule" || a.type === "unschedule");
    if (moves.length === 0) break;
    const where = apply(placements, last, units);
    placements = [...where].map(([u, m]) => at(units.find((x) => x.name === u)!, m));
  }
  return { where: new Map(placements.map((p) => [p.unit, p.machineId])), last };
}

describe("globs", () => {
  it.each([
    ["conflict.*", "conflict.1.service", true],
    ["web@*.service", "web@1.service", true],
    ["web@?.service", "web@12.service", false],
    ["a[0-9].service", "a7.service", true],
    ["exact.service", "exact.service", true],
    ["exact.service", "other.service", false],
  ])("%s matches %s: %s", (g, n, want) => expect(globMatches(g, n)).toBe(want));
});

describe("scheduler", () => {
  it("places on the least loaded machine, ties broken by machine ID", () => {
    const ms = [machine("c"), machine("a"), machine("b")];
    const units = ["u1", "u2", "u3", "u4"].map((n) => unit(n + ".service"));
    const { where } = converge(units, ms);
    expect([...where.values()].sort()).toEqual(["a", "a", "b", "c"]);
    expect(where.get("u1.service")).toBe("a");
  });

  it("explains every filter in one combined reason", () => {
    const ms = [machine("m1", { metadata: { region: "us" } }), machine("m2", { metadata: { region: "us" } }), machine("m3", { metadata: { region: "us" } }), machine("m4", { metadata: { region: "eu" } })];
    const web = unit("web@1.service");
    const u = unit("db.service", { machineMetadata: { region: ["eu"] }, conflicts: ["web@*"] });
    const actions = run([web, u], ms, [at(web, "m4")]);
    const reason = actions.find((a) => a.type === "unplaced" && a.unit === "db.service")?.reason;
    expect(reason).toBe("3 machines lack region=eu; 1 conflicts with web@1.service");
  });

  it("says so when there are no machines, and clears a reason once placed", () => {
    const u = unit("a.service");
    expect(run([u], [])).toEqual([{ type: "unplaced", unit: "a.service", reason: "no live machines" }]);
    expect(run([u], [machine("m1")], [], [["a.service", "no live machines"]])).toEqual([
      expect.objectContaining({ type: "schedule", unit: "a.service", machineId: "m1" }),
      { type: "clear-unplaced", unit: "a.service", reason: "placed on m1" },
    ]);
  });

  it("honours MachineID, full or 8-character short", () => {
    const ms = [machine("0123456789abcdef"), machine("fedcba9876543210")];
    const a = unit("a.service", { machineId: "fedcba98" });
    const b = unit("b.service", { machineId: "0123456789abcdef" });
    const c = unit("c.service", { machineId: "nope" });
    const { where, last } = converge([a, b, c], ms);
    expect(where.get("a.service")).toBe("fedcba9876543210");
    expect(where.get("b.service")).toBe("0123456789abcdef");
    expect(last.find((x) => x.unit === "c.service")?.reason).toBe("2 machines are not MachineID=nope");
  });

  it("5 units with Conflicts=conflict.* on 3 machines: exactly 3 placed, on distinct machines", () => {
    const ms = [machine("m1"), machine("m2"), machine("m3")];
    const units = [0, 1, 2, 3, 4].map((i) => unit(`conflict.${i}.service`, { conflicts: ["conflict.*"] }));
    const { where, last } = converge(units, ms);
    expect(where.size).toBe(3);
    expect(new Set(where.values()).size).toBe(3);
    const unplaced = last.filter((a) => a.type === "unplaced");
    expect(unplaced).toHaveLength(2);
    expect(unplaced[0]!.reason).toMatch(/^3 machines conflict with conflict\.\d\.service|^1 machine conflicts/);
  });

  it("a one-way conflict blocks either side until the other is gone", () => {
    const ms = [machine("m1")];
    const a = unit("a.service", { conflicts: ["b.service"] });
    const b = unit("b.service");
    expect(converge([a, b], ms).where.size).toBe(1);
    // b placed first: a cannot come (a declares); a placed first: b cannot come (a declares).
    expect(run([a, b], ms, [at(b, "m1")]).find((x) => x.unit === "a.service")?.reason).toBe("1 machine conflicts with b.service");
    expect(run([a, b], ms, [at(a, "m1")]).find((x) => x.unit === "b.service")?.reason).toBe("1 machine conflicts with a.service");
    // a destroyed: b goes
    expect(run([b], ms, [])).toContainEqual(expect.objectContaining({ type: "schedule", unit: "b.service" }));
  });

  it("Replaces moves the replaced unit away", () => {
    const ms = [machine("m1"), machine("m2")];
    const old = unit("old.service");
    const neu = unit("new.service", { replaces: ["old.service"] });
    // old on m1; m2 carries an extra so m1 is the least loaded for new (after eviction).
    const filler = unit("filler.service");
    const actions = run([old, neu, filler], ms, [at(old, "m1"), at(filler, "m2")]);
    expect(actions).toContainEqual({ type: "unschedule", unit: "old.service", machineId: "m1", reason: "replaced by new.service" });
    expect(actions).toContainEqual(expect.objectContaining({ type: "schedule", unit: "new.service", machineId: "m1" }));
    expect(actions).toContainEqual(expect.objectContaining({ type: "schedule", unit: "old.service", machineId: "m2" }));
    // every unschedule comes before any schedule
    const lastUn = actions.map((a) => a.type).lastIndexOf("unschedule");
    const firstSch = actions.map((a) => a.type).indexOf("schedule");
    expect(lastUn).toBeLessThan(firstSch);
  });

  it("two units replacing each other: only one placed", () => {
    const ms = [machine("m1")];
    const a = unit("a.service", { replaces: ["b.service"] });
    const b = unit("b.service", { replaces: ["a.service"] });
    const { where, last } = converge([a, b], ms);
    expect(where.size).toBe(1);
    expect(last.filter((x) => x.type === "unplaced")).toHaveLength(1);
  });

  it("MachineOf places the follower beside its peer and moves it with the peer", () => {
    const ms = [machine("m1"), machine("m2"), machine("m3")];
    const peer = unit("peer.service");
    const f = unit("follower.service", { machineOf: ["peer.service"] });
    const first = converge([f, peer], ms).where;
    expect(first.get("follower.service")).toBe(first.get("peer.service"));
    // the peer's machine dies
    const lost = first.get("peer.service")!;
    const rest = ms.filter((m) => m.id !== lost);
    const moved = converge([f, peer], rest, [at(peer, lost), at(f, lost)]).where;
    expect(moved.get("peer.service")).not.toBe(lost);
    expect(moved.get("follower.service")).toBe(moved.get("peer.service"));
    // a follower whose peer is nowhere waits, and says so
    expect(run([f], ms).find((x) => x.unit === "follower.service")?.reason).toBe("MachineOf peer peer.service is not placed");
  });

  it("metadata constraints: values OR'ed, keys AND'ed", () => {
    const ms = [
      machine("m1", { metadata: { region: "eu", disk: "ssd" } }),
      machine("m2", { metadata: { region: "us", disk: "ssd" } }),
      machine("m3", { metadata: { region: "eu", disk: "hdd" } }),
    ];
    const a = unit("a.service", { machineMetadata: { region: ["eu", "ap"], disk: ["ssd"] } });
    expect(converge([a], ms).where.get("a.service")).toBe("m1");
    const b = unit("b.service", { machineMetadata: { region: ["ap"] } });
    expect(run([b], ms)[0]!.reason).toBe("3 machines lack region=ap");
  });

  it("CPU and memory reservations count against capacity", () => {
    const ms = [machine("m1", { capacity: { cpu: 1, memory: 1 << 30 } })];
    const a = unit("a.service", { cpu: 0.75 });
    const b = unit("b.service", { cpu: 0.5 });
    const c = unit("c.service", { memoryBytes: 2 * 2 ** 30 });
    const { where, last } = converge([a, b, c], ms);
    expect(where.get("a.service")).toBe("m1");
    expect(last.find((x) => x.unit === "b.service")?.reason).toBe("1 machine lacks 0.5 free CPU");
    expect(last.find((x) => x.unit === "c.service")?.reason).toBe("1 machine lacks 2G free memory");
  });

  it("pause takes no new units but keeps its own; drain moves them away", () => {
    const a = unit("a.service");
    const b = unit("b.service");
    const paused = [machine("m1", { availability: "pause" }), machine("m2")];
    expect(converge([a, b], paused, [at(a, "m1")]).where).toEqual(new Map([["a.service", "m1"], ["b.service", "m2"]]));
    const drained = [machine("m1", { availability: "drain" }), machine("m2")];
    const actions = run([a], drained, [at(a, "m1")]);
    expect(actions).toEqual([
      { type: "unschedule", unit: "a.service", machineId: "m1", reason: "machine m1 is draining" },
      expect.objectContaining({ type: "schedule", unit: "a.service", machineId: "m2" }),
    ]);
    expect(run([b], [machine("m1", { availability: "pause" })])[0]!.reason).toBe("1 machine is paused");
  });

  it("on 4 machines, losing one moves only its unit, to the free machine", () => {
    const ms = ["m1", "m2", "m3", "m4"].map((id) => machine(id));
    const units = ["a", "b", "c"].map((n) => unit(`${n}.service`));
    const placed = [at(units[0]!, "m1"), at(units[1]!, "m2"), at(units[2]!, "m3")];
    const actions = run(units, ms.filter((m) => m.id !== "m2"), placed);
    expect(actions).toEqual([
      { type: "unschedule", unit: "b.service", machineId: "m2", reason: "machine m2 is lost" },
      expect.objectContaining({ type: "schedule", unit: "b.service", machineId: "m4" }),
    ]);
  });

  it("unschedules inactive, vanished, global and duplicate entries; rewrites changed ones", () => {
    const ms = [machine("m1"), machine("m2")];
    const inactive = unit("i.service", {}, "inactive");
    const glob = unit("g.service", { global: true });
    const dup = unit("d.service");
    const changed = unit("c.service", {}, "loaded");
    const gone: Placement = { unit: "gone.service", machineId: "m1", hash: "x", desiredState: "launched" };
    const actions = run([inactive, glob, dup, changed], ms, [
      at(inactive, "m1"), at(glob, "m1"), at(dup, "m1"), at(dup, "m2"), gone,
      { ...at(changed, "m2"), desiredState: "launched" },
    ]);
    expect(actions).toEqual([
      { type: "unschedule", unit: "d.service", machineId: "m2", reason: "duplicate placement: kept on m1" },
      { type: "unschedule", unit: "g.service", machineId: "m1", reason: "unit is global: every matching agent runs it itself" },
      { type: "unschedule", unit: "gone.service", machineId: "m1", reason: "unit no longer exists" },
      { type: "unschedule", unit: "i.service", machineId: "m1", reason: "desired state is inactive" },
      { type: "update", unit: "c.service", machineId: "m2", reason: "desired state is now loaded" },
    ]);
  });

  it("keeps a duplicate on the first machine by ID whatever order the schedule lists it in (the engine's own units)", () => {
    const ms = [machine("m1"), machine("m2"), machine("m3")];
    // Units as the engine's views make them from a file without [X-Fleet]: the shared options.
    const plain = (name: string): EngineUnit => ({ ...unit(name), fleet: NO_FLEET_OPTIONS });
    const [a, b] = [plain("a.service"), plain("b.service")];
    const actions = run([a, b], ms, [at(b, "m3"), at(a, "m3"), at(a, "m1"), at(b, "m2")]);
    expect(actions).toEqual([
      { type: "unschedule", unit: "a.service", machineId: "m3", reason: "duplicate placement: kept on m1" },
      { type: "unschedule", unit: "b.service", machineId: "m3", reason: "duplicate placement: kept on m2" },
    ]);
  });

  it("checks kept placements of the engine's own unconstrained units against a draining machine", () => {
    const plain: EngineUnit = { ...unit("p.service"), fleet: NO_FLEET_OPTIONS };
    const actions = run([plain], [machine("m1", { availability: "drain" }), machine("m2")], [at(plain, "m1")]);
    expect(actions).toEqual([
      { type: "unschedule", unit: "p.service", machineId: "m1", reason: "machine m1 is draining" },
      expect.objectContaining({ type: "schedule", unit: "p.service", machineId: "m2" }),
    ]);
  });

  it("keeps a non-global unit off machines where a conflicting global unit runs", () => {
    const ms = [machine("m1", { metadata: { role: "edge" } }), machine("m2")];
    const g = unit("proxy.service", { global: true, machineMetadata: { role: ["edge"] }, conflicts: ["web*"] });
    const web = unit("web.service");
    expect(converge([g, web], ms).where).toEqual(new Map([["web.service", "m2"]]));
  });

  it("a global that loses to an earlier conflicting global (name order, as the agent decides) does not keep units away", () => {
    const ms = [machine("m1")];
    // a-proxy wins on m1; b-proxy conflicts with it, so no agent runs b-proxy. web conflicts
    // only with b-proxy, so m1 is fine for it.
    const a = unit("a-proxy.service", { global: true, conflicts: ["b-proxy.service"] });
    const b = unit("b-proxy.service", { global: true, conflicts: ["web*"] });
    const web = unit("web.service");
    expect(converge([a, b, web], ms).where).toEqual(new Map([["web.service", "m1"]]));
    // and the reverse: web conflicts with a-proxy, which does run there
    const web2 = unit("web2.service", { conflicts: ["a-proxy.service"] });
    expect(converge([a, b, web2], ms).where).toEqual(new Map());
  });

  it("a unit file that does not parse is never placed and says why", () => {
    const bad = { ...unit("bad.service"), invalid: "line 3: unknown section" };
    expect(run([bad], [machine("m1")])).toEqual([{ type: "unplaced", unit: "bad.service", reason: "unit file is invalid: line 3: unknown section" }]);
  });

  it("places 100,000 unconstrained units on 1,000 machines evenly and fast", () => {
    const ms = Array.from({ length: 1000 }, (_, i) => machine(`m${String(i).padStart(4, "0")}`));
    const units = Array.from({ length: 100_000 }, (_, i) => unit(`u${i}.service`));
    const t0 = performance.now();
    const actions = run(units, ms);
    const ms_ = performance.now() - t0;
    expect(actions).toHaveLength(100_000);
    const counts = new Map<string, number>();
    for (const a of actions) {
      const id = (a as { machineId: string }).machineId;
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    expect(new Set(counts.values())).toEqual(new Set([100]));
    expect(ms_).toBeLessThan(5000);
  });

  it("combine() counts and orders reasons", () => {
    expect(combine([{ one: "is paused", many: "are paused" }, { one: "lacks x=1", many: "lack x=1" }, { one: "lacks x=1", many: "lack x=1" }])).toBe(
      "2 machines lack x=1; 1 is paused",
    );
    expect(new ClusterState(new Map(), []).decide(unit("a.service"))).toEqual({ ok: false, reason: "no live machines", refusals: [] });
  });
});

// Boundaries a mutation run found untested (issue 9 §6).
describe("scheduler boundaries", () => {
  it("a constrained unit between equally loaded machines goes to the lowest machine ID, whatever their order", () => {
    const u = unit("web.service", { machineMetadata: { region: ["eu"] } });
    const eu = { metadata: { region: "eu" } };
    for (const order of [["m3", "m1", "m2"], ["m2", "m3", "m1"], ["m1", "m2", "m3"]]) {
      const where = apply([], run([u], order.map((id) => machine(id, eu))), [u]);
      expect(where.get("web.service")).toBe("m1");
    }
    // And with one more unit on m1, the next least loaded (m2), not m1 again.
    const filler = unit("filler.service", { machineId: "m1" });
    const where = apply([at(filler, "m1")], run([u, filler], ["m3", "m2", "m1"].map((id) => machine(id, eu)), [at(filler, "m1")]), [u, filler]);
    expect(where.get("web.service")).toBe("m2");
  });

  it("CPU and memory reservations fit when they fill a machine exactly, and not one unit more", () => {
    const cap = { cpu: 2, memory: 512 * 2 ** 20 };
    const cpuUnits = [unit("c1.service", { cpu: 1 }), unit("c2.service", { cpu: 1 }), unit("c3.service", { cpu: 1 })];
    const a1 = run(cpuUnits, [machine("m1", { capacity: cap })]);
    expect(a1.filter((a) => a.type === "schedule").map((a) => a.unit)).toEqual(["c1.service", "c2.service"]);
    expect(a1.find((a) => a.type === "unplaced")).toMatchObject({ unit: "c3.service" });
    expect((a1.find((a) => a.type === "unplaced") as { reason: string }).reason).toMatch(/lacks 1 free CPU/);
    const memUnits = [unit("a.service", { memoryBytes: 256 * 2 ** 20 }), unit("b.service", { memoryBytes: 256 * 2 ** 20 }), unit("c.service", { memoryBytes: 1 })];
    const a2 = run(memUnits, [machine("m1", { capacity: cap })]);
    expect(a2.filter((a) => a.type === "schedule").map((a) => a.unit)).toEqual(["a.service", "b.service"]);
    expect((a2.find((a) => a.type === "unplaced") as { reason: string }).reason).toMatch(/lacks 1 B free memory|lacks .* free memory/);
  });
});

describe("why a unit is not placed, per machine", () => {
  it("groups the machines each filter refused, most common first, with the combined sentence", () => {
    const u = unit("eu.service", { machineMetadata: { region: ["eu"] }, conflicts: ["other.service"] });
    const other = unit("other.service", { machineId: "m4" });
    const ms = [machine("m1", { metadata: { region: "us" } }), machine("m2", { metadata: { region: "us" } }), machine("m3", { availability: "drain", metadata: { region: "eu" } }), machine("m4", { metadata: { region: "eu" } })];
    const actions = run([u, other], ms, [at(other, "m4")]);
    const un = actions.find((a) => a.type === "unplaced" && a.unit === "eu.service");
    expect(un).toEqual({
      type: "unplaced",
      unit: "eu.service",
      reason: "2 machines lack region=eu; 1 conflicts with other.service; 1 is draining",
      refusals: [
        { why: "lacks region=eu", count: 2, machines: ["m1", "m2"] },
        { why: "conflicts with other.service", count: 1, machines: ["m4"] },
        { why: "is draining", count: 1, machines: ["m3"] },
      ],
    });
  });

  it("lists at most 64 machines per filter, and counts them all", () => {
    const u = unit("eu.service", { machineMetadata: { region: ["eu"] } });
    const ms = Array.from({ length: 100 }, (_, i) => machine(`m${String(i).padStart(3, "0")}`));
    const un = run([u], ms).find((a) => a.type === "unplaced") as { refusals: { count: number; machines: string[] }[] };
    expect(un.refusals).toHaveLength(1);
    expect(un.refusals[0]!.count).toBe(100);
    expect(un.refusals[0]!.machines).toHaveLength(64);
  });
});

// Issue 10: constrained units cost about what plain ones cost (the filters are indexed), and a
// long pass gives the event loop back (reconcileSliced). Before, 10,000 units in Conflicts
// groups of 10 onto 100 machines took ~38 s in one blocking pass.
describe("constrained placement at scale (issue 10)", () => {
  const ms = Array.from({ length: 100 }, (_, i) =>
    machine(`m${String(i).padStart(3, "0")}`, { metadata: { region: ["a", "b", "c"][i % 3]!, disk: i % 2 ? "ssd" : "hdd" }, capacity: { cpu: 64, memory: 2 ** 40 } }),
  );
  /** Groups of 10: leaders spread by Conflicts=<group>-* and pick a region, followers beside them. */
  function fleetShaped(n: number): EngineUnit[] {
    return Array.from({ length: n }, (_, i) => {
      const g = `g${Math.floor(i / 10)}`;
      if (i % 2) return unit(`side-${g}-${i % 10}.service`, { machineOf: [`${g}-${(i % 10) - 1}.service`] });
      return unit(`${g}-${i % 10}.service`, { conflicts: [`${g}-*`], machineMetadata: { region: [["a", "b", "c"][i % 3]!], ...(i % 4 === 0 ? { disk: ["ssd"] } : {}) }, ...(i % 20 === 0 ? { cpu: 0.5 } : {}) });
    });
  }

  it("places 10,000 units with Conflicts, MachineOf, MachineMetadata and CPU onto 100 machines in well under 5 s", () => {
    const units = fleetShaped(10_000);
    const t0 = performance.now();
    const actions = run(units, ms);
    const took = performance.now() - t0;
    expect(actions.filter((a) => a.type === "schedule")).toHaveLength(10_000);
    const where = new Map(actions.map((a) => [a.unit, (a as { machineId: string }).machineId]));
    // Each group's leaders on distinct machines, each follower beside its peer.
    for (let g = 0; g < 1000; g++) {
      const leaders = [0, 2, 4, 6, 8].map((k) => where.get(`g${g}-${k}.service`));
      expect(new Set(leaders).size).toBe(5);
      for (const k of [1, 3, 5, 7, 9]) expect(where.get(`side-g${g}-${k}.service`)).toBe(where.get(`g${g}-${k - 1}.service`));
    }
    expect(took).toBeLessThan(5000);
  });

  it("reconcileSliced gives the event loop turns during a 30,000-unit pass, and decides the same", async () => {
    const units = fleetShaped(30_000);
    const input = { units: new Map(units.map((u) => [u.name, u])), machines: new Map(ms.map((m) => [m.id, m])), placements: [], unplaced: new Map() };
    // Turns the event loop got while the pass ran: a pass in one go gives none.
    let turns = 0;
    let running = true;
    const turn = () => {
      if (!running) return;
      turns++;
      setImmediate(turn);
    };
    setImmediate(turn);
    const sliced = await reconcileSliced(input, { sliceMs: 20 });
    running = false;
    expect(sliced).toEqual(reconcile(input));
    expect(sliced.filter((a) => a.type === "schedule")).toHaveLength(30_000);
    expect(turns).toBeGreaterThanOrEqual(3);
  });
});
