// Oldest (src/util/oldest.ts): drops a bounded cache's oldest entry through one kept iterator,
// which must drop exactly what `m.delete(m.keys().next().value)` drops, whatever else the
// cache does between drops: new entries, entries re-set on use (LRU), deletes, clear().
import { describe, expect, it } from "vitest";
import { Oldest } from "../../src/util/oldest.js";
import { prng } from "../helpers/prng.js";

describe("Oldest", () => {
  it("drops what a fresh iterator's first key would be, over 50,000 random operations", () => {
    const rnd = prng(5);
    const a = new Map<string, number>();
    const b = new Map<string, number>();
    const oldest = new Oldest(b);
    const MAX = 300;
    for (let i = 0; i < 50_000; i++) {
      const x = rnd();
      const k = `k${Math.floor(rnd() * 600)}`;
      if (x < 0.6) {
        // A new entry (or an existing one set again, which keeps its place), bounded.
        if (!a.has(k) && a.size >= MAX) a.delete(a.keys().next().value!);
        if (!b.has(k)) oldest.trim(MAX - 1);
        a.set(k, i);
        b.set(k, i);
      } else if (x < 0.85) {
        // Used: moved to the most recent end, as the parse cache does.
        const v = a.get(k);
        if (v !== undefined) {
          a.delete(k);
          a.set(k, v);
          b.delete(k);
          b.set(k, v);
        }
      } else if (x < 0.9995) {
        a.delete(k);
        b.delete(k);
      } else {
        a.clear();
        b.clear();
      }
      if (i % 997 === 0) expect([...b.keys()], `after ${i} operations`).toEqual([...a.keys()]);
    }
    expect([...b]).toEqual([...a]);
  });

  it("works on a Set, and trims to a bound", () => {
    const s = new Set(["a", "b", "c", "d"]);
    const o = new Oldest(s);
    o.trim(2);
    expect([...s]).toEqual(["c", "d"]);
    s.add("e");
    o.drop();
    expect([...s]).toEqual(["d", "e"]);
    o.trim(0);
    expect(s.size).toBe(0);
    o.drop(); // empty: nothing to drop
    s.add("f");
    o.drop();
    expect(s.size).toBe(0);
  });
});
