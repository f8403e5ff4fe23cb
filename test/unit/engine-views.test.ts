// ClusterViews (src/engine/views.ts): the leader's picture of the machines over a long term.
import { describe, expect, it } from "vitest";
import pino from "pino";
import { ClusterViews } from "../../src/engine/views.js";
import { Liveness } from "../../src/engine/liveness.js";
import { Slicer } from "../../src/engine/slicer.js";
import type { WriteResult } from "../../src/engine/schedule-writer.js";
import { perTurn } from "../helpers/check.js";
import { encode } from "../../src/protocol/codec.js";
import type { MachineRecord } from "../../src/protocol/messages.js";

function record(id: string): MachineRecord {
  return { id, hostname: id, publicIp: "", metadata: {}, capacity: { cpu: 1, memory: 1 }, availability: "active", version: "t", startedAt: 1, session: id, heartbeatAt: 1 };
}

describe("ClusterViews machines", () => {
  it("forgets machines that died (records expired without a watch event) and learns them again on a heartbeat", () => {
    const liveness = new Liveness(1000);
    const v = new ClusterViews(pino({ level: "silent" }), liveness);
    const t0 = Date.now();
    for (let i = 0; i < 1000; i++) v.onMachine({ key: `m${i}`, operation: "PUT", value: encode(record(`m${i}`)), revision: i + 1 });
    expect(v.liveMachines(t0).size).toBe(1000);
    // Machines come and go over a term: the dead ones do not stay in the views or in liveness.
    expect(v.liveMachines(t0 + 5000).size).toBe(0);
    expect(v.machines.size).toBe(0);
    expect(liveness.nextExpiry(t0 + 5000)).toBeUndefined();
    expect(liveness.size).toBe(0);
    // A machine that beats again is new: it calls for a round and is live.
    expect(v.onMachine({ key: "m1", operation: "PUT", value: encode(record("m1")), revision: 2000 })).toBe(true);
    expect([...v.liveMachines(Date.now()).keys()]).toEqual(["m1"]);
  });
});

describe("ClusterViews.apply", () => {
  const result = (n: number, from = 0): WriteResult => ({
    deleted: [],
    put: Array.from({ length: n }, (_, i) => ({
      key: `u${from + i}.service.m${i % 10}`,
      revision: from + i + 1,
      placement: { unit: `u${from + i}.service`, machineId: `m${i % 10}`, hash: "h", desiredState: "launched" as const },
    })),
    unplacedSet: [],
    unplacedCleared: [],
    failures: 0,
  });

  it("learns a batch of proven writes in slices that give the event loop turns", async () => {
    const v = new ClusterViews(pino({ level: "silent" }), new Liveness(1000));
    const sampler = perTurn(() => 0);
    expect(await v.apply(result(5000), new Slicer(0, 16))).toBe(true);
    const { turns } = sampler.stop();
    expect(v.placements.size).toBe(5000);
    expect(v.loads.get("m3")).toBe(500);
    // One turn per 16 placements with a used-up slice; none when applied in one go.
    expect(turns).toBeGreaterThanOrEqual(5000 / 16 - 1);
  });

  it("does not write into the maps of a schedule cleared while it was applying", async () => {
    const v = new ClusterViews(pino({ level: "silent" }), new Liveness(1000));
    const applying = v.apply(result(5000), new Slicer(0, 16));
    await new Promise((r) => setImmediate(r));
    v.clearSchedule();
    await applying;
    expect(v.placements.size).toBe(0);
    expect(v.loads.size).toBe(0);
  });
});
