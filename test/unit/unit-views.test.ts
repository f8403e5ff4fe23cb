import { describe, expect, it } from "vitest";
import { goalReached, describeStates, type UnitStates, type WaitGoal } from "../../src/unit/wait.js";
import { fleetStateOf, globalsWaiting, lastError, unitFileRow } from "../../src/api/unit-views.js";
import { unitHash } from "../../src/unit/index.js";
import { TASK_STATES, unitTriple, type TaskState, type UnitRecord, type UnitStateRecord } from "../../src/protocol/messages.js";

const st = (taskState: TaskState, machineId = "m1", extra: Partial<UnitStateRecord> = {}): UnitStateRecord => ({
  unit: "u.service",
  machineId,
  hash: "h",
  taskState,
  ...unitTriple(taskState),
  restarts: 0,
  since: 1,
  updatedAt: 1,
  ...extra,
});
const states = (...s: UnitStateRecord[]): UnitStates => new Map(s.map((x) => [x.machineId, x]));

describe("goalReached: when a blocking verb is done", () => {
  const expectations: Record<WaitGoal, TaskState[]> = {
    launched: ["running"],
    loaded: ["ready", "starting", "running", "complete", "shutdown", "failed", "rejected", "remove", "orphaned"],
    stopped: ["new", "pending", "assigned", "accepted", "preparing", "ready", "complete", "shutdown", "failed", "rejected", "remove", "orphaned"],
    gone: ["remove", "orphaned"],
  };
  for (const goal of Object.keys(expectations) as WaitGoal[]) {
    it(`${goal}: reached for exactly ${expectations[goal].join(", ")}`, () => {
      const reached = TASK_STATES.filter((t) => goalReached(goal, states(st(t))));
      expect(reached).toEqual(expectations[goal]);
    });
  }
  it("no state at all: stopped and gone are reached, launched and loaded are not", () => {
    expect(goalReached("stopped", new Map())).toBe(true);
    expect(goalReached("gone", new Map())).toBe(true);
    expect(goalReached("launched", new Map())).toBe(false);
    expect(goalReached("loaded", new Map())).toBe(false);
  });
  it("several machines: launched once one runs, stopped once none runs", () => {
    expect(goalReached("launched", states(st("failed", "m1"), st("running", "m2")))).toBe(true);
    expect(goalReached("stopped", states(st("shutdown", "m1"), st("running", "m2")))).toBe(false);
  });
  it("describes where a unit is for timeout messages", () => {
    expect(describeStates(new Map())).toBe("no machine reports it");
    expect(describeStates(states(st("failed", "m2", { exitCode: 1, error: "boom" }), st("ready", "m1")))).toBe(
      "m1: ready (inactive/dead); m2: failed (failed/failed) exit code 1: boom",
    );
  });
});

describe("list-unit-files rows", () => {
  const rec = (desiredState: UnitRecord["desiredState"]): UnitRecord => ({
    name: "u.service",
    contents: "",
    hash: "abcdef0123",
    desiredState,
    version: 1,
    createdAt: 1,
    updatedAt: 1,
  });
  const snap = (o: { sched?: string[]; unplaced?: string; st?: UnitStateRecord[] }) => ({
    schedule: new Map(o.sched ? [["u.service", o.sched]] : []),
    unplaced: new Map(o.unplaced ? [["u.service", o.unplaced]] : []),
    states: new Map(o.st ? [["u.service", o.st]] : []),
    machines: new Map(),
  });
  const plain = { global: false, description: "d" };

  it("maps task states to fleet's states", () => {
    expect(Object.fromEntries(TASK_STATES.map((t) => [t, fleetStateOf(t)]))).toEqual({
      new: "inactive",
      pending: "inactive",
      assigned: "inactive",
      accepted: "inactive",
      preparing: "inactive",
      ready: "loaded",
      starting: "loaded",
      running: "launched",
      complete: "loaded",
      shutdown: "loaded",
      failed: "failed",
      rejected: "failed",
      remove: "inactive",
      orphaned: "inactive",
    });
  });
  it("targets the scheduled machine and reads its state only", () => {
    const r = unitFileRow(rec("launched"), snap({ sched: ["m1"], st: [st("running", "m1"), st("failed", "m0")] }), plain);
    expect(r).toMatchObject({ target: "m1", currentState: "launched", unplaced: null, machines: ["m1"] });
  });
  it("shows the unplaced reason only while the unit is not placed and not inactive", () => {
    expect(unitFileRow(rec("launched"), snap({ unplaced: "no machine has region=eu" }), plain).unplaced).toBe("no machine has region=eu");
    expect(unitFileRow(rec("inactive"), snap({ unplaced: "stale" }), plain).unplaced).toBeNull();
    expect(unitFileRow(rec("launched"), snap({ sched: ["m1"], unplaced: "stale" }), plain).unplaced).toBeNull();
  });
  it("global units target 'global' and take the highest state of their machines", () => {
    const r = unitFileRow(rec("launched"), snap({ sched: ["m1", "m2"], st: [st("ready", "m1"), st("running", "m2")] }), { global: true, description: "" });
    expect(r).toMatchObject({ target: "global", global: true, currentState: "launched", machines: ["m1", "m2"] });
  });
  it("last error: the most recent failure", () => {
    expect(lastError([st("running")])).toBeNull();
    expect(lastError([st("failed", "a", { updatedAt: 1, exitCode: 1 }), st("rejected", "b", { updatedAt: 2, error: "no such file" })])).toBe(
      "b: rejected, no such file",
    );
  });
});

describe("globals that wait (first come, first served)", () => {
  const rec = (name: string, fleet: string, desiredState: UnitRecord["desiredState"] = "launched"): UnitRecord => {
    const contents = `[Service]\nExecStart=/bin/sleep 600\n[X-Fleet]\n${fleet}\n`;
    return { name, contents, hash: unitHash(contents), desiredState, version: 1, createdAt: 1, updatedAt: 1 };
  };
  const g = (arrival: number, name: string, conflicts = "") => ({
    record: rec(name, `Global=true\n${conflicts ? `Conflicts=${conflicts}` : ""}`),
    arrival,
  });

  it("the newcomer waits for the one that came first, whatever their names", () => {
    const w = globalsWaiting([g(9, "alpha.service", "zeta.service"), g(3, "zeta.service")]);
    expect([...w.keys()]).toEqual(["alpha.service"]);
    expect(w.get("alpha.service")).toBe(
      "conflicts with zeta.service (Conflicts=zeta.service in alpha.service); zeta.service came first and keeps running " +
        "(first come, first served): alpha.service waits until zeta.service is unloaded or destroyed",
    );
  });
  it("names the side that declared the conflict", () => {
    const w = globalsWaiting([g(3, "zeta.service", "alpha*"), g(9, "alpha.service")]);
    expect(w.get("alpha.service")).toMatch(/^conflicts with zeta\.service \(Conflicts=alpha\* in zeta\.service\); zeta\.service came first/);
  });
  it("blames only globals that run: a waiting one blocks nobody; inactive and plain units take no part", () => {
    const w = globalsWaiting([
      g(1, "x.service", "y.service"),
      g(2, "y.service", "z.service"),
      g(3, "z.service"),
      { record: rec("old.service", "Global=true\nConflicts=n.service", "inactive"), arrival: 0 },
      { record: rec("plain.service", "Conflicts=n.service"), arrival: 0 },
      g(5, "n.service"),
    ]);
    expect(Object.fromEntries([...w].map(([k, v]) => [k, v.split(" (")[0]]))).toEqual({ "y.service": "conflicts with x.service" });
  });
  it("the same arrival: the first by name runs", () => {
    expect([...globalsWaiting([g(4, "b.service", "a.service"), g(4, "a.service")]).keys()]).toEqual(["b.service"]);
  });
  it("list-unit-files shows why a global waits while no machine reports it, and not once one does", () => {
    const waiting = new Map([["u.service", "conflicts with zeta.service (...)"]]);
    const base = { schedule: new Map(), unplaced: new Map(), machines: new Map(), waiting };
    const r = rec("u.service", "Global=true");
    const info = { global: true, description: "" };
    expect(unitFileRow(r, { ...base, states: new Map() }, info).unplaced).toBe("conflicts with zeta.service (...)");
    expect(unitFileRow(r, { ...base, states: new Map([["u.service", [st("running", "m1")]]]) }, info).unplaced).toBeNull();
    expect(unitFileRow({ ...r, desiredState: "inactive" }, { ...base, states: new Map() }, info).unplaced).toBeNull();
  });
});
