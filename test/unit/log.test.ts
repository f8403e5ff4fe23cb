import { describe, expect, it } from "vitest";
import { resolveLogLevel } from "../../src/log.js";

describe("log level", () => {
  it("takes LOG_LEVEL, case-insensitively", () => {
    expect(resolveLogLevel(undefined, { LOG_LEVEL: "DEBUG" })).toBe("debug");
  });
  it("falls back to info for an empty or unknown LOG_LEVEL instead of throwing", () => {
    expect(resolveLogLevel(undefined, { LOG_LEVEL: "" })).toBe("info");
    expect(resolveLogLevel(undefined, { LOG_LEVEL: "loud" })).toBe("info");
  });
  it("is silent under tests unless asked", () => {
    expect(resolveLogLevel(undefined, { VITEST: "true" })).toBe("silent");
    expect(resolveLogLevel(undefined, { VITEST: "true", LOG_LEVEL: "warn" })).toBe("warn");
  });
});

import pino from "pino";
import { childLogger } from "../../src/log.js";
describe("childLogger", () => {
  it("binds each key once", () => {
    const lines: string[] = [];
    const root = pino({ level: "info", base: {} }, { write: (s: string) => void lines.push(s) });
    const server = root.child({ component: "agent", machineId: "m1" });
    childLogger(server, { component: "agent", machineId: "m1", unit: "a.service" }).info("hello");
    expect(lines[0]!.match(/"component"/g)).toHaveLength(1);
    expect(lines[0]).toContain('"unit":"a.service"');
  });
});
