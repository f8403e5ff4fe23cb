// fleet's agent reconciler, as tables: (desired, current) → ordered tasks with reasons.
import { describe, expect, test } from "vitest";
import { reconcile, type CurrentTask, type DesiredTask } from "../../src/agent/reconcile.js";

const D = (unit: string, desiredState: DesiredTask["desiredState"], hash = "h1aaaaaa"): DesiredTask => ({ unit, hash, desiredState });
const C = (unit: string, target: CurrentTask["target"], hash = "h1aaaaaa"): CurrentTask => ({ unit, hash, target });
const map = <T extends { unit: string }>(xs: T[]) => new Map(xs.map((x) => [x.unit, x]));

const cases: { name: string; desired: DesiredTask[]; current: CurrentTask[]; want: string[] }[] = [
  { name: "nothing to do", desired: [], current: [], want: [] },
  { name: "in sync, launched", desired: [D("a", "launched")], current: [C("a", "launched")], want: [] },
  { name: "in sync, loaded", desired: [D("a", "loaded")], current: [C("a", "loaded")], want: [] },
  { name: "new loaded unit", desired: [D("a", "loaded")], current: [], want: ["load a"] },
  { name: "new launched unit: load then start", desired: [D("a", "launched")], current: [], want: ["load a", "start a"] },
  { name: "inactive and absent: nothing", desired: [D("a", "inactive")], current: [], want: [] },
  { name: "no longer scheduled: unload", desired: [], current: [C("a", "launched")], want: ["unload a"] },
  { name: "desired inactive: unload", desired: [D("a", "inactive")], current: [C("a", "loaded")], want: ["unload a"] },
  { name: "loaded -> launched: start", desired: [D("a", "launched")], current: [C("a", "loaded")], want: ["start a"] },
  { name: "launched -> loaded: stop", desired: [D("a", "loaded")], current: [C("a", "launched")], want: ["stop a"] },
  {
    name: "changed hash: unload, load, start",
    desired: [D("a", "launched", "h2bbbbbb")],
    current: [C("a", "launched")],
    want: ["unload a", "load a", "start a"],
  },
  { name: "changed hash, loaded: unload, load", desired: [D("a", "loaded", "h2bbbbbb")], current: [C("a", "launched")], want: ["unload a", "load a"] },
  {
    name: "order across units: unload < load < stop < start",
    desired: [D("new", "launched"), D("stopme", "loaded"), D("startme", "launched")],
    current: [C("gone", "launched"), C("stopme", "launched"), C("startme", "loaded")],
    want: ["unload gone", "load new", "stop stopme", "start startme", "start new"],
  },
];

describe("reconcile", () => {
  for (const c of cases) {
    test(c.name, () => {
      const got = reconcile(map(c.desired), map(c.current));
      expect(got.map((a) => `${a.type} ${a.unit}`)).toEqual(c.want);
      for (const a of got) expect(a.reason.length).toBeGreaterThan(5);
    });
  }

  test("reasons say why", () => {
    const [u] = reconcile(map([]), map([C("a", "launched")]));
    expect(u!.reason).toBe("unit is no longer scheduled to this machine");
    const [x] = reconcile(map([D("a", "launched", "h2bbbbbb")]), map([C("a", "launched")]));
    expect(x!.reason).toBe("unit changed (hash h1aaaaa -> h2bbbbb)");
  });
});
