import pino from "pino";
import { describe, expect, it } from "vitest";
import { createEngine } from "../../src/engine/engine.js";
import type { ClusterContext } from "../../src/server/context.js";

describe("createEngine's logger", () => {
  it("does not repeat the component/machineId keys the server already bound", () => {
    const lines: string[] = [];
    const root = pino({ level: "info", base: {} }, { write: (s: string) => void lines.push(s) });
    const ctx = {
      nc: { isClosed: () => true },
      names: { inspectSubject: () => "x", bucket: (r: string) => r },
      buckets: { schedule: {} },
      log: root.child({ component: "engine", machineId: "m1" }),
      config: { leaseTtlMs: 5000, agentTtlMs: 10000, reconcileIntervalMs: 2000 },
      machineId: "m1",
      machine: () => ({}),
    } as unknown as ClusterContext;
    const engine = createEngine(ctx);
    (engine as unknown as { log: pino.Logger }).log.info("hello");
    expect(lines[0]!.match(/"component"/g)).toHaveLength(1);
    expect(lines[0]!.match(/"machineId"/g)).toHaveLength(1);
  });
});
