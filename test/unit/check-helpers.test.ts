import { describe, expect, it } from "vitest";
import { check, holds } from "../helpers/check.js";

describe("test pollers", () => {
  it("check returns the first truthy value and names what never held", async () => {
    let n = 0;
    expect(await check(() => (++n >= 3 ? n : false), 1000, "n to reach 3", 1)).toBe(3);
    await expect(check(() => false, 50, "the impossible", 5)).rejects.toThrow(/waiting for the impossible/);
  });
  it("holds fails as soon as the condition stops holding within the window", async () => {
    const start = Date.now();
    await expect(holds(() => Date.now() - start < 60, 1000, "the first 60 ms", 10)).rejects.toThrow(/the first 60 ms stopped holding/);
    await expect(holds(() => true, 50, "always", 10)).resolves.toBeUndefined();
  });
});
