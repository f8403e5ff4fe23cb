// The task's pure decisions: forward-only states, retries, restart policy and start limit.
import { describe, expect, test } from "vitest";
import { advance, backoffMs, canRetry, decideRestart, exitedOk, type RestartInput } from "../../src/agent/task-policy.js";
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
});
