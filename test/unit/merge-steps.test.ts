// The sliced merge of sorted names (util/sorted.ts mergeSortedSteps) and the engine's name index
// that grows by it in the incremental rounds (glob-index.ts NameIndex.addSteps): the same
// answers as a sort, with a yield every 4,096 names written, so that a merge into 100,000 names
// does not hold the event loop in one piece.
import { describe, expect, it } from "vitest";
import { mergeSorted, mergeSortedSteps } from "../../src/util/sorted.js";
import { NameIndex } from "../../src/engine/glob-index.js";
import { prng } from "../helpers/prng.js";

function steps<T>(g: Generator<void, T, void>): { value: T; yields: number } {
  let yields = 0;
  for (;;) {
    const r = g.next();
    if (r.done) return { value: r.value, yields };
    yields++;
  }
}

describe("mergeSortedSteps", () => {
  it("merges as a sort of both would, yielding every 4,096 names", () => {
    const rnd = prng(3);
    for (const [n, m] of [[0, 0], [0, 5], [5, 0], [4095, 1], [10_000, 3000], [100_000, 50_000]] as const) {
      const a = Array.from({ length: n }, () => `u${Math.floor(rnd() * (n + m) * 2)}.service`).sort();
      const b = Array.from({ length: m }, () => `u${Math.floor(rnd() * (n + m) * 2)}.service`).sort();
      const { value, yields } = steps(mergeSortedSteps(a, b));
      expect(value, `${n}+${m}`).toEqual([...a, ...b].sort());
      expect(mergeSorted(a, b)).toEqual(value);
      // Yields only while both still have names (the rest is copied at once).
      expect(yields, `${n}+${m}`).toBeLessThanOrEqual(Math.floor((n + m) / 4096));
      if (n >= 10_000 && m >= 3000) expect(yields).toBeGreaterThanOrEqual(Math.floor(Math.min(n, m) / 4096));
    }
  });
});

describe("NameIndex.addSteps", () => {
  it("names what a prefix glob names after names are added, the big merge in yields", () => {
    const names = new Map<string, true>();
    const sorted: string[] = [];
    for (let i = 0; i < 100_000; i++) names.set(`g${i}-0.service`, true);
    sorted.push(...[...names.keys()].sort());
    const idx = new NameIndex(names, sorted);
    expect(idx.named("g7-*")).toEqual(["g7-0.service"]);
    // 20,000 new names: more than an eighth of the index, so they are merged into it at once.
    const added = Array.from({ length: 20_000 }, (_, i) => `g${i}-1.service`);
    for (const n of added) names.set(n, true);
    const { yields } = steps(idx.addSteps([...added].sort()));
    expect(yields).toBeGreaterThanOrEqual(20);
    expect(idx.named("g7-*")).toEqual(["g7-0.service", "g7-1.service"]);
    expect(idx.named("g19999-*")).toEqual(["g19999-0.service", "g19999-1.service"]);
    expect(idx.named("g20000-*")).toEqual(["g20000-0.service"]);
  });
});
