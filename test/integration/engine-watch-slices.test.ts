// The engine's watches hand their entries over a slice at a time (watchBucket's `slice`, the
// piece the listing index uses too: src/nats/kv-watch.ts): the NATS client parses everything one
// turn of the event loop read, megabytes during a replay, and the engine taking each entry in
// (decode, views) inside that held the loop 100-300 ms at 100,000 units (bench:schedule).
// Counted in turns of the event loop, not in ms, so that a loaded machine cannot make it pass or
// fail.
import { describe, expect, it } from "vitest";
import { useNatsServer } from "../helpers/fixture.js";
import { check } from "../helpers/check.js";
import { EngineCluster, unitFile } from "../helpers/engine-cluster.js";
import { NatsEngineStore } from "../../src/nats/engine-store.js";
import { WATCH_SLICE } from "../../src/nats/kv-watch.js";
import { silentLogger } from "../../src/log.js";
import type { ClusterViews } from "../../src/engine/views.js";
import type { Engine } from "../../src/engine/engine.js";

const nats = useNatsServer();
const UNITS = 10_000;

/** Counts what `count()` grew by in each turn of the event loop (one run of a setImmediate chain) until stop(). */
function perTurn(count: () => number): { max(): number; stop(): void } {
  const turns: number[] = [];
  let last = count();
  let on = true;
  const sample = () => {
    const n = count();
    turns.push(n - last);
    last = n;
    if (on) setImmediate(sample);
  };
  setImmediate(sample);
  return { max: () => Math.max(0, ...turns), stop: () => void (on = false) };
}

async function putUnits(c: EngineCluster, n: number): Promise<void> {
  // Distinct files, as a busy cluster has them (a few hundred bytes each).
  for (let i = 0; i < n; i += 500) {
    await Promise.all(Array.from({ length: Math.min(500, n - i) }, (_, j) => c.putUnit(`u${i + j}.service`, unitFile() + `# ${i + j}\n` + "x".repeat(200))));
  }
}

describe("the engine's watches", () => {
  it(`replay ${UNITS} units at most WATCH_SLICE.max entries per turn of the event loop, in order, caughtUp after the last, then follow`, async () => {
    const c = await EngineCluster.create(nats.server.url);
    try {
      await putUnits(c, UNITS);
      const store = new NatsEngineStore({ buckets: c.buckets, nc: nats.nc, log: silentLogger });
      const got: number[] = [];
      let caughtAt = -1;
      const turns = perTurn(() => got.length);
      const w = await store.units.watch({
        entry: (e) => void got.push(e.revision),
        caughtUp: () => (caughtAt = got.length),
      });
      try {
        await check(() => caughtAt >= 0, 30_000, "the end of the replay");
        expect(caughtAt).toBe(UNITS);
        expect(got).toEqual([...got].sort((a, b) => a - b));
        turns.stop();
        expect(turns.max()).toBeGreaterThan(0);
        expect(turns.max()).toBeLessThanOrEqual(WATCH_SLICE.max);
        // A change after the replay is handed over like the rest.
        await c.putUnit("late.service", unitFile());
        await check(() => got.length === UNITS + 1, 5000, "the late unit");
      } finally {
        turns.stop();
        w.stop();
      }
    } finally {
      await c.dispose();
    }
  }, 120_000);

  it(`a leader takes a replay of ${UNITS} units into its views at most WATCH_SLICE.max per turn of the event loop`, async () => {
    const c = await EngineCluster.create(nats.server.url);
    try {
      await putUnits(c, UNITS);
      const engine: Engine = await c.startEngine("e1", silentLogger);
      const views = (engine as unknown as { views: ClusterViews }).views;
      const turns = perTurn(() => views.units.size);
      try {
        await check(() => engine.isLeader && views.units.size === UNITS, 60_000, "every unit in the leader's views");
        turns.stop();
        expect(turns.max()).toBeGreaterThan(0);
        expect(turns.max()).toBeLessThanOrEqual(WATCH_SLICE.max);
      } finally {
        turns.stop();
      }
    } finally {
      await c.dispose();
    }
  }, 120_000);
});
