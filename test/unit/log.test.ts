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

import { formatLogLine, resolveLogFormat } from "../../src/log.js";
describe("text log format", () => {
  it("prints time, level, who, message and the other fields", () => {
    const line = JSON.stringify({
      level: 40, time: Date.UTC(2026, 10, 23, 3, 12, 1, 123), pid: 1, name: "flotilla",
      component: "daemon", machineId: "78d7c16c561bda0f", msg: "heartbeat failed (1 in a row)", failures: 1, err: { message: "timeout" },
    });
    expect(formatLogLine(line)).toBe('03:12:01.123 WARN  daemon 78d7c16c  heartbeat failed (1 in a row)  failures=1 err="timeout"\n');
  });
  it("passes a line that is not JSON through", () => {
    expect(formatLogLine("plain")).toBe("plain\n");
  });
  it("is text on a terminal, json elsewhere, unless FLOTILLA_LOG_FORMAT says", () => {
    expect(resolveLogFormat({}, true)).toBe("text");
    expect(resolveLogFormat({}, false)).toBe("json");
    expect(resolveLogFormat({ FLOTILLA_LOG_FORMAT: "json" }, true)).toBe("json");
    expect(resolveLogFormat({ FLOTILLA_LOG_FORMAT: "TEXT" }, false)).toBe("text");
  });
});
