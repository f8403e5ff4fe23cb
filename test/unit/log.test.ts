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
