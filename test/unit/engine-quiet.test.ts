// The engine chart's `quiet` child (quietAfter in src/engine/engine.ts): while the chart pauses
// for the duty bound, it says QUIET once the changes stopped coming in, so that the pause ends
// then instead of at its full length. Real timers: the child looks every quietMs.
import { describe, expect, it } from "vitest";
import { createActor, setup } from "xstate";
import { quietAfter } from "../../src/engine/engine.js";
import { check } from "../helpers/check.js";

const QUIET_MS = 10;

function pausing(lastChangeAt: () => number) {
  const heard: number[] = [];
  const m = setup({ actors: { quiet: quietAfter(lastChangeAt, QUIET_MS) } }).createMachine({
    initial: "pausing",
    states: {
      pausing: { invoke: { src: "quiet" }, on: { QUIET: { target: "deciding", actions: () => heard.push(Date.now()) } } },
      deciding: {},
    },
  });
  const actor = createActor(m);
  actor.start();
  return { actor, heard };
}

describe("the engine's quiet child", () => {
  it("says QUIET only once changes have stopped for quietMs, and soon after", async () => {
    let last = Date.now();
    let changes = 0;
    // A flood: a change every 2 ms for 30 changes (60 ms, six times quietMs).
    const flood = setInterval(() => {
      last = Date.now();
      if (++changes === 30) clearInterval(flood);
    }, 2);
    const { actor, heard } = pausing(() => last);
    await check(() => heard.length > 0, 2000, "QUIET", 1);
    expect(changes).toBe(30);
    expect(heard[0]! - last).toBeGreaterThanOrEqual(QUIET_MS);
    // Within a few looks of the end of the flood (timers on a busy machine run late).
    expect(heard[0]! - last).toBeLessThan(QUIET_MS * 20);
    expect(actor.getSnapshot().value).toBe("deciding");
    actor.stop();
  });

  it("says it at its first look when nothing came in since the round", async () => {
    const t0 = Date.now();
    const { actor, heard } = pausing(() => t0 - 1000);
    await check(() => heard.length > 0, 2000, "QUIET", 1);
    expect(heard).toHaveLength(1);
    actor.stop();
  });
});
