// The visualizer's history/timeline reducer and recordings (pure; no browser, no NATS).
import { describe, expect, it } from "vitest";
import { addAll, addMessage, allSteps, density, emptyHistory, leaseHistory, snapshotAt, stateAt, MAX_PER_ACTOR } from "../../ui/lib/history.js";
import { parseNdjson, toNdjson } from "../../ui/lib/recording.js";
import { unplacedOf } from "../../ui/lib/unplaced.js";
import { reservationOf, usedByMachine } from "../../ui/lib/reservations.js";
import { valueText, type InspectMessage } from "../../ui/lib/types.js";

let n = 0;
function msg(o: Partial<InspectMessage> & { machineId: string; actor: string; at: number; value: unknown }): InspectMessage {
  return {
    v: 2,
    session: "s1",
    id: o.actor,
    seq: ++n,
    defHash: "h",
    event: "E",
    transitions: [],
    status: "active",
    ...o,
  };
}

describe("history reducer", () => {
  it("files steps per actor in order, drops duplicates, answers the state at any moment", () => {
    const h = emptyHistory();
    const a1 = msg({ machineId: "m1", actor: "heart", at: 1000, value: "beating", seq: 1 });
    const a2 = msg({ machineId: "m1", actor: "heart", at: 2000, value: "waiting", seq: 2 });
    const a3 = msg({ machineId: "m1", actor: "heart", at: 3000, value: "beating", seq: 3 });
    const b1 = msg({ machineId: "m2", actor: "heart", at: 1500, value: "beating", seq: 1 });
    // live first, then the stream's replay brings older and the same steps again
    expect(addMessage(h, a3)).toBe(true);
    expect(addAll(h, [a1, a2, a3, b1, { ...a2 }])).toBe(3);
    expect(h.count).toBe(4);
    const heart = h.actors.get("m1/heart")!;
    expect(heart.msgs.map((m) => m.seq)).toEqual([1, 2, 3]);
    expect(stateAt(heart, 999)).toBeUndefined();
    expect(stateAt(heart, 1000)?.value).toBe("beating");
    expect(stateAt(heart, 2500)?.value).toBe("waiting");
    expect(stateAt(heart, 9999)?.value).toBe("beating");
    // time travel across the whole cluster: m2 had not started at 1200
    const at1200 = snapshotAt(h, 1200);
    expect([...at1200.keys()]).toEqual(["m1/heart"]);
    const at2500 = snapshotAt(h, 2500);
    expect(Object.fromEntries([...at2500].map(([k, m]) => [k, m.value]))).toEqual({ "m1/heart": "waiting", "m2/heart": "beating" });
    expect(snapshotAt(h).get("m1/heart")?.value).toBe("beating");
    expect([h.first, h.last]).toEqual([1000, 3000]);
    expect(allSteps(h).map((m) => m.at)).toEqual([1000, 1500, 2000, 3000]);
  });

  it("a new session of the same actor (daemon restarted) continues its history", () => {
    const h = emptyHistory();
    addMessage(h, msg({ machineId: "m1", actor: "task", id: "task:a.service", unit: "a.service", at: 10, value: "running", seq: 5, session: "old" }));
    addMessage(h, msg({ machineId: "m1", actor: "task", id: "task:a.service", unit: "a.service", at: 20, value: "accepted", seq: 1, session: "new" }));
    const a = h.actors.get("m1/task:a.service")!;
    expect(a.unit).toBe("a.service");
    expect(a.msgs.map((m) => `${m.session}:${m.seq}`)).toEqual(["old:5", "new:1"]);
  });

  it("keeps at most MAX_PER_ACTOR steps per actor, the newest", () => {
    const h = emptyHistory();
    for (let i = 1; i <= MAX_PER_ACTOR + 10; i++) addMessage(h, msg({ machineId: "m1", actor: "heart", at: i, value: "beating", seq: i }));
    const a = h.actors.get("m1/heart")!;
    expect(a.msgs.length).toBe(MAX_PER_ACTOR);
    expect(a.msgs[0]!.seq).toBe(11);
    expect(h.count).toBe(MAX_PER_ACTOR);
  });

  it("reads the engine lease's history from the lease actors", () => {
    const h = emptyHistory();
    addAll(h, [
      msg({ machineId: "m1", actor: "lease", at: 1, value: "candidate", context: { epoch: 0 } }),
      msg({ machineId: "m1", actor: "lease", at: 2, value: { leader: "holding" }, context: { epoch: 1 } }),
      msg({ machineId: "m2", actor: "lease", at: 3, value: "follower", context: { epoch: 1 } }),
      msg({ machineId: "m1", actor: "lease", at: 4, value: "candidate", context: { epoch: 1 } }),
      msg({ machineId: "m2", actor: "lease", at: 5, value: { leader: "renewing" }, context: { epoch: 2 } }),
    ]);
    const l = leaseHistory(h);
    expect(l.leader).toBe("m2");
    expect(l.epoch).toBe(2);
    expect(l.changes.map((c) => `${c.at} ${c.machineId} ${c.what}`)).toEqual(["2 m1 became leader", "4 m1 left the lease", "5 m2 became leader"]);
  });

  it("bins the steps over time for the timeline's density strip", () => {
    const h = emptyHistory();
    expect(density(h, 4)).toEqual([0, 0, 0, 0]);
    addAll(h, [0, 1, 2, 3, 50, 99, 100].map((at, i) => msg({ machineId: "m1", actor: "heart", at, value: "beating", seq: i + 1 })));
    expect(density(h, 4)).toEqual([4, 0, 1, 2]);
    const one = emptyHistory();
    addMessage(one, msg({ machineId: "m1", actor: "heart", at: 5, value: "beating", seq: 1 }));
    expect(density(one, 3)).toEqual([0, 0, 1]);
  });

  it("state values read as text", () => {
    expect(valueText("idle")).toBe("idle");
    expect(valueText({ leader: "holding" })).toBe("leader.holding");
    expect(valueText({ a: "x", b: { c: "y" } })).toBe("a.x + b.c.y");
  });
});

describe("recordings", () => {
  it("round-trip through NDJSON with the definitions; bad lines are named, not fatal", () => {
    const ms = [msg({ machineId: "m1", actor: "heart", at: 1, value: "beating" }), msg({ machineId: "m1", actor: "heart", at: 2, value: "waiting" })];
    const sc = [{ actor: "heart", hash: "h", definition: { id: "heart", root: { id: "heart", key: "heart", type: "compound" as const, states: {}, transitions: [] } } }];
    const text = toNdjson({ prefix: "flotilla", statecharts: sc, messages: ms, now: 7 }) + "garbage\n{\"v\":1}\n";
    const r = parseNdjson(text);
    expect(r.prefix).toBe("flotilla");
    expect(r.recordedAt).toBe(7);
    expect(r.statecharts.map((s) => s.hash)).toEqual(["h"]);
    expect(r.messages.map((m) => m.value)).toEqual(["beating", "waiting"]);
    expect(r.skipped).toEqual(["line 4: not JSON", "line 5: not an inspection v2 message"]);
    // a bare `nats sub --raw` capture has no header
    expect(parseNdjson(ms.map((m) => JSON.stringify(m)).join("\n")).messages.length).toBe(2);
  });
});

describe("unplaced reasons", () => {
  it("reads the combined sentence and the per-machine rows", () => {
    expect(unplacedOf({ unplaced: "2 machines lack region=mars" })).toEqual({ summary: "2 machines lack region=mars", machines: [], groups: [] });
    // the status verb's structured refusals: per filter, the machines it refused
    const s = unplacedOf({
      unplaced: "2 machines lack region=mars; 1 is paused",
      refusals: [
        { why: "lacks region=mars", count: 2, machines: ["m3", "m1"] },
        { why: "is paused", count: 1, machines: ["m2"] },
      ],
    });
    expect(s.machines).toEqual([
      { machineId: "m1", reason: "lacks region=mars" },
      { machineId: "m2", reason: "is paused" },
      { machineId: "m3", reason: "lacks region=mars" },
    ]);
    expect(s.groups.map((g) => `${g.count} ${g.why}`)).toEqual(["2 lacks region=mars", "1 is paused"]);
    expect(
      unplacedOf({
        unplaced: { reason: "2 machines lack region=mars", machines: [{ machineId: "m2", reason: "lacks region=mars" }, { machineId: "m1", reason: "lacks region=mars" }] },
      }).machines.map((r) => r.machineId),
    ).toEqual(["m1", "m2"]);
    expect(unplacedOf({ unplaced: null, unplacedMachines: { m1: "is paused" } }).machines).toEqual([{ machineId: "m1", reason: "is paused" }]);
  });
});

describe("capacity used", () => {
  it("reads CPU= and Memory= of [X-Fleet] and sums them per machine", () => {
    const a = reservationOf("[Service]\nExecStart=/bin/true\nMemory=9G\n\n[X-Fleet]\n# a comment\nCPU=0.5\nMemory=256M\n");
    expect(a).toEqual({ cpu: 0.5, memory: 256 * 2 ** 20 });
    expect(reservationOf("[X-Fleet]\nMachineMetadata=region=eu\n")).toEqual({ cpu: 0, memory: 0 });
    const b = reservationOf("[X-Fleet]\nCPU=1\nMemory=1.5G\n");
    const used = usedByMachine([
      { machines: ["m1"], r: a },
      { machines: ["m1", "m2"], r: b },
      { machines: ["m2"], r: undefined },
    ]);
    expect(used.get("m1")).toEqual({ cpu: 1.5, memory: 256 * 2 ** 20 + 1.5 * 2 ** 30 });
    expect(used.get("m2")).toEqual({ cpu: 1, memory: 1.5 * 2 ** 30 });
  });
});
