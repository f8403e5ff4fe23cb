// serialized() (src/server/components.ts): the monitor's stop-then-start of a component never
// interleaves, even when a stop outlasts its caller's patience.
import { describe, expect, it } from "vitest";
import { serialized } from "../../src/server/components.js";

describe("serialized components", () => {
  it("runs start and stop one at a time, in call order", async () => {
    const log: string[] = [];
    const gates: (() => void)[] = [];
    const slow = (what: string) => () =>
      new Promise<void>((resolve) => {
        log.push(`${what} begins`);
        gates.push(() => {
          log.push(`${what} ends`);
          resolve();
        });
      });
    const c = serialized({ start: slow("start"), stop: slow("stop") });
    const started = c.start();
    const stopped = c.stop(); // the monitor gives up waiting on this one and starts again
    const restarted = c.start();
    await Promise.resolve();
    expect(log).toEqual(["start begins"]);
    for (let i = 0; i < 3; i++) {
      // let the chain reach the next call, then release it
      while (gates.length === 0) await new Promise((r) => setImmediate(r));
      gates.shift()!();
    }
    await Promise.all([started, stopped, restarted]);
    expect(log).toEqual(["start begins", "start ends", "stop begins", "stop ends", "start begins", "start ends"]);
  });

  it("goes on after a failed call, and passes the failure to its caller", async () => {
    let n = 0;
    const c = serialized({ start: async () => void n++, stop: async () => Promise.reject(new Error("stuck")) });
    await expect(c.stop()).rejects.toThrow("stuck");
    await c.start();
    expect(n).toBe(1);
    expect(c.prepareExit).toBeUndefined();
  });
});
