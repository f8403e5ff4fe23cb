// The task's pure decisions: forward-only states, retries, restart policy and start limit.
import { describe, expect, test } from "vitest";
import { advance, backoffMs, canRetry, decideRestart, exitedOk, recordStart, type RestartInput } from "../../src/agent/task-policy.js";
import { FlotillaError } from "../../src/protocol/errors.js";

const base: RestartInput = {
  policy: "on-failure",
  restartSecMs: 100,
  startLimitBurst: 3,
  startLimitIntervalMs: 10_000,
  outcome: "failed",
  starts: [],
  now: 100_000,
};

describe("task policy", () => {
  test("states only move forward", () => {
    expect(advance("accepted", "preparing")).toBe("preparing");
    expect(advance("running", "running")).toBe("running");
    expect(() => advance("running", "starting")).toThrow(/backwards: running -> starting/);
    expect(() => advance("failed", "complete")).toThrow(FlotillaError);
  });

  test("temporary errors retry with backoff, fatal ones do not", () => {
    const temp = new FlotillaError("exec_failed", "busy", { temporary: true });
    const fatal = new FlotillaError("exec_failed", "no");
    expect(canRetry(temp, 0)).toBe(true);
    expect(canRetry(temp, 5)).toBe(false);
    expect(canRetry(fatal, 0)).toBe(false);
    expect(canRetry(new Error("x"), 0)).toBe(false);
    expect(backoffMs(0)).toBe(100);
    expect(backoffMs(3)).toBe(800);
    expect(backoffMs(20)).toBe(5000);
  });

  test("clean exit", () => {
    expect(exitedOk({ exitCode: 0 })).toBe(true);
    expect(exitedOk({ exitCode: 1 })).toBe(false);
    expect(exitedOk({ signal: "SIGKILL" })).toBe(false);
    expect(exitedOk({ unknown: true })).toBe(false);
  });

  const table: { name: string; i: Partial<RestartInput>; restart: boolean; reason: RegExp }[] = [
    { name: "Restart=no never restarts", i: { policy: "no" }, restart: false, reason: /Restart=no/ },
    { name: "on-failure restarts a failure", i: { starts: [99_000] }, restart: true, reason: /on-failure/ },
    { name: "on-failure leaves a clean exit", i: { outcome: "complete" }, restart: false, reason: /Restart=on-failure/ },
    { name: "always restarts a clean exit", i: { policy: "always", outcome: "complete" }, restart: true, reason: /always/ },
    { name: "start limit: 3 starts in the interval", i: { starts: [95_000, 97_000, 99_000] }, restart: false, reason: /start limit hit: 3 starts within 10s \(StartLimitBurst=3\)/ },
    { name: "old starts fall out of the interval", i: { starts: [80_000, 85_000, 99_000] }, restart: true, reason: /on-failure/ },
    { name: "burst 0 disables the limit", i: { startLimitBurst: 0, starts: [99_000, 99_100, 99_200, 99_300] }, restart: true, reason: /on-failure/ },
  ];
  for (const c of table) {
    test(c.name, () => {
      const d = decideRestart({ ...base, ...c.i });
      expect(d.restart).toBe(c.restart);
      expect(d.reason).toMatch(c.reason);
      if (d.restart) expect(d.delayMs).toBe(100);
    });
  }

  // The start-limit window is judged at the moment the restart would happen (now + RestartSec):
  // a start exactly StartLimitIntervalSec before that moment is out of it, one ms later is in.
  // Burst 1, so the single start decides. Fails if `<` becomes `<=`, or RestartSec is left out.
  const I = 10_000;
  const R = 100;
  const now = 100_000;
  const edge: { name: string; start: number; restart: boolean }[] = [
    { name: "now + RestartSec - start = interval: out of the window", start: now + R - I, restart: true },
    { name: "now + RestartSec - start = interval - 1: in the window", start: now + R - I + 1, restart: false },
    { name: "now + RestartSec - start = interval + 1: out of the window", start: now + R - I - 1, restart: true },
    { name: "inside the interval now, outside it at the restart (RestartSec counts)", start: now - I + R / 2, restart: true },
    { name: "inside the interval at the restart too", start: now - I + R + R / 2, restart: false },
  ];
  test.each(edge)("start-limit boundary: $name", ({ start, restart }) => {
    const d = decideRestart({ ...base, restartSecMs: R, startLimitIntervalMs: I, startLimitBurst: 1, starts: [start], now });
    expect(d.restart).toBe(restart);
    if (!d.restart) expect(d).toMatchObject({ limitHit: true, reason: expect.stringMatching(/start limit hit: 1 starts within 10s/) });
  });

  test("the start history stays bounded by StartLimitBurst over 4,000 restarts per setting, and every decision is what the whole history gives", () => {
    // A deterministic walk: failures after random run times, restarts per decision, and an
    // explicit start (history cleared, as setTarget does) whenever the limit is hit.
    let seed = 42;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (const [burst, interval, restartSec] of [
      [5, 10_000, 100],
      [3, 1_000, 0],
      [1, 500, 250],
      [10, 60_000, 1_000],
      [0, 10_000, 100],
      [4, 0, 100],
    ] as const) {
      let full: number[] = [];
      let bounded: number[] = [];
      let t = 1_000_000;
      let hits = 0;
      let longest = 0;
      for (let i = 0; i < 4_000; i++) {
        full.push(t);
        bounded = recordStart(bounded, t, burst, interval);
        longest = Math.max(longest, bounded.length);
        t += Math.floor(rand() * rand() * interval * 0.6) + 1; // runs, then fails
        const input = { ...base, policy: "always" as const, restartSecMs: restartSec, startLimitBurst: burst, startLimitIntervalMs: interval, now: t };
        const want = decideRestart({ ...input, starts: full });
        expect(decideRestart({ ...input, starts: bounded })).toEqual(want);
        if (want.restart) t += want.delayMs;
        else {
          hits++;
          full = [];
          bounded = [];
          t += Math.floor(rand() * interval);
        }
      }
      expect(longest).toBeLessThanOrEqual(Math.max(burst, 0));
      if (burst > 0 && interval > 0) expect(hits).toBeGreaterThan(0); // the walk did reach the limit
    }
  });

  test("recordStart drops what left the window and keeps the newest StartLimitBurst", () => {
    expect(recordStart([], 1000, 3, 500)).toEqual([1000]);
    expect(recordStart([400, 500, 900], 1000, 3, 500)).toEqual([900, 1000]); // 500 is exactly 500 ms ago: out
    expect(recordStart([700, 800, 900], 1000, 3, 500)).toEqual([800, 900, 1000]);
    expect(recordStart([900], 1000, 0, 500)).toEqual([]); // no limit: nothing to keep
  });
});
