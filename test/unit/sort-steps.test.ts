// sortSteps: the engine's sliced merge sort, against Array.sort, across its 2,048-entry chunks;
// strings take a path of their own (no call through the comparator), other keys stay stable.
import { describe, expect, it } from "vitest";
import { sortSteps } from "../../src/engine/reconciler.js";
import { runToEnd } from "../../src/engine/slicer.js";
import { byString } from "../../src/util/sorted.js";
import { prng } from "../helpers/prng.js";

describe("sortSteps", () => {
  it("sorts names in code-unit order at every size around its chunks, as Array.sort does", () => {
    const rnd = prng(7);
    for (const n of [0, 1, 2047, 2048, 2049, 4096, 5000, 9001]) {
      const names = Array.from({ length: n }, () => `u${Math.floor(rnd() * n * 3)}${rnd() < 0.1 ? "Ä" : ""}.service`);
      const want = [...names].sort();
      expect(runToEnd(sortSteps(names, byString)), `n=${n}`).toEqual(want);
    }
  });
  it("keeps equal keys in their order under any other comparator", () => {
    const rnd = prng(11);
    const items = Array.from({ length: 7000 }, (_, i) => ({ k: Math.floor(rnd() * 50), i }));
    const got = runToEnd(sortSteps([...items], (a, b) => a.k - b.k));
    expect(got).toEqual([...items].sort((a, b) => a.k - b.k || a.i - b.i));
  });
});
