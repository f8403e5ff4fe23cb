// The machine ID kept in the state dir, and fleet's duplicate machine-ID decision.
import { describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decideOwnership, readAvailability, resolveMachineId, writeAvailability } from "../../src/machine/machine-id.js";

const dir = () => mkdtempSync(join(tmpdir(), "flotilla-mid-"));

describe("machine ID", () => {
  it("is generated once (32 hex chars) and kept", () => {
    const d = dir();
    const id = resolveMachineId(d);
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(readFileSync(join(d, "machine-id"), "utf8").trim()).toBe(id);
    expect(resolveMachineId(d)).toBe(id);
    expect(resolveMachineId(d, "override-1")).toBe("override-1");
  });

  it("a corrupt machine-id file is a clear error", () => {
    const d = dir();
    writeFileSync(join(d, "machine-id"), "not a valid id!\n");
    expect(() => resolveMachineId(d)).toThrow(/not a machine ID; delete the file/);
  });

  it("availability survives in the state dir; garbage reads as active", () => {
    const d = dir();
    expect(readAvailability(d)).toBe("active");
    writeAvailability(d, "drain");
    expect(readAvailability(d)).toBe("drain");
    writeFileSync(join(d, "availability"), "sideways");
    expect(readAvailability(d)).toBe("active");
  });
});

describe("decideOwnership (duplicate machine ID)", () => {
  const now = 1_000_000;
  const base = { session: "me", now, ttlMs: 10_000, alive: (): boolean => true };
  it.each([
    ["no record", undefined, {}, true, "absent"],
    ["a stale record", { session: "x", heartbeatAt: now - 20_000 }, {}, true, "stale"],
    ["a fresh record of another daemon", { session: "x", heartbeatAt: now - 1000 }, {}, false, "alive-elsewhere"],
    ["our own previous daemon, dead", { session: "old", heartbeatAt: now - 1000 }, { stamp: { session: "old", pid: 999_999 }, alive: (): boolean => false }, true, "own-previous"],
    ["our own previous daemon, still alive", { session: "old", heartbeatAt: now - 1000 }, { stamp: { session: "old", pid: 999_999 }, alive: (): boolean => true }, false, "alive-elsewhere"],
    ["a stamp of another session", { session: "x", heartbeatAt: now - 1000 }, { stamp: { session: "old", pid: 999_999 }, alive: (): boolean => false }, false, "alive-elsewhere"],
    // A restarted container: the new daemon has the same pid the old one had (alive: it is us).
    ["our own previous daemon with our own pid (a restarted container)", { session: "old", heartbeatAt: now - 1000 }, { stamp: { session: "old", pid: process.pid }, alive: (): boolean => true }, true, "own-previous"],
  ] as const)("%s", (_name, existing, extra, take, reason) => {
    const d = decideOwnership(existing, { ...base, ...extra });
    expect(d.take).toBe(take);
    expect(d.reason).toBe(reason);
  });
});
