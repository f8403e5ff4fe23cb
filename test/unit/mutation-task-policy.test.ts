// Kills StrykerJS survivors in src/agent/task-policy.ts (docs/mutation.md): the retry bound and
// backoff cap at their edges, what an exit is called, and the exact decisions of decideRestart.
import { describe, expect, it } from "vitest";
import { advance, backoffMs, canRetry, decideRestart, describeExit, exitedOk, MAX_RETRIES, type RestartInput } from "../../src/agent/task-policy.js";
import { FlotillaError } from "../../src/protocol/errors.js";

const base: RestartInput = {
  policy: "on-failure",
  restartSecMs: 250,
  startLimitBurst: 2,
  startLimitIntervalMs: 30_000,
  outcome: "failed",
  starts: [],
  now: 1_000_000,
};

describe("task policy edges", () => {
  it("a backwards move carries the code, the field and both states", () => {
    try {
      advance("running", "preparing");
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(FlotillaError);
      expect(e).toMatchObject({ code: "illegal_state_change", field: "taskState", value: { prev: "running", next: "preparing" } });
    }
  });

  it("retries a temporary error up to MAX_RETRIES - 1 retries done, not one more", () => {
    const temp = new FlotillaError("exec_failed", "busy", { temporary: true });
    expect(MAX_RETRIES).toBe(5);
    expect(canRetry(temp, MAX_RETRIES - 1)).toBe(true);
    expect(canRetry(temp, MAX_RETRIES)).toBe(false);
  });

  it("doubles the backoff from 100 ms and caps it at 5 s", () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7].map(backoffMs)).toEqual([100, 200, 400, 800, 1600, 3200, 5000, 5000]);
  });

  it("a clean exit is status 0 with no signal and a known status", () => {
    expect(exitedOk(undefined)).toBe(false);
    expect(exitedOk({ exitCode: 0, signal: "SIGTERM" })).toBe(false);
    expect(exitedOk({ exitCode: 0, unknown: true })).toBe(false);
    expect(exitedOk({ exitCode: 0, unknown: false })).toBe(true);
  });

  it("describes an exit for the operator", () => {
    expect(describeExit(undefined)).toBe("exited (status unknown: its supervisor was killed)");
    expect(describeExit({ unknown: true, exitCode: 0 })).toBe("exited (status unknown: its supervisor was killed)");
    expect(describeExit({ signal: "SIGKILL", exitCode: 0 })).toBe("killed by SIGKILL");
    expect(describeExit({ exitCode: 3 })).toBe("exited with status 3");
    expect(describeExit({ exitCode: 0 })).toBe("exited with status 0");
  });

  it("decides exactly: delay, reason and limitHit", () => {
    expect(decideRestart({ ...base })).toEqual({ restart: true, delayMs: 250, reason: "Restart=on-failure after failed" });
    expect(decideRestart({ ...base, policy: "always", outcome: "complete" })).toEqual({
      restart: true,
      delayMs: 250,
      reason: "Restart=always after complete",
    });
    expect(decideRestart({ ...base, policy: "always", outcome: "failed" })).toMatchObject({ restart: true });
    expect(decideRestart({ ...base, outcome: "complete" })).toEqual({ restart: false, reason: "Restart=on-failure", limitHit: false });
    expect(decideRestart({ ...base, policy: "no" })).toEqual({ restart: false, reason: "Restart=no", limitHit: false });
    expect(decideRestart({ ...base, starts: [990_000, 999_000] })).toEqual({
      restart: false,
      limitHit: true,
      reason: "start limit hit: 2 starts within 30s (StartLimitBurst=2)",
    });
  });

  it("counts only the starts in the window against the burst", () => {
    // One old start and one recent: below a burst of 2.
    expect(decideRestart({ ...base, starts: [900_000, 999_000] }).restart).toBe(true);
    // Burst 2, three recent starts: the limit counts all of them.
    expect(decideRestart({ ...base, starts: [997_000, 998_000, 999_000] })).toMatchObject({
      restart: false,
      reason: expect.stringContaining("3 starts within"),
    });
  });
});
