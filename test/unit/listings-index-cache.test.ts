// SortedIndex (src/api/index-cache.ts), the sorted key index listings page through, against a
// plain Map as the model: random sets and deletes, flushes small and big (the chunked sort that
// yields to the event loop, with writes landing while it yields), and paging by cursor.
import { describe, expect, it } from "vitest";
import { SortedIndex, cmp } from "../../src/api/index-cache.js";
import { lowerBound, upperBound } from "../../src/util/sorted.js";

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function pageAll(idx: SortedIndex<number>, limit: number, scanLimit = 1e9): string[] {
  const out: string[] = [];
  let after: string | undefined;
  for (;;) {
    let n = 0;
    const r = idx.scan({ after, scanLimit }, (k) => {
      out.push(k);
      return ++n < limit;
    });
    if (!r.more) return out;
    after = r.last;
  }
}

const modelKeys = (m: Map<string, number>) => [...m.keys()].sort(cmp);

describe("SortedIndex", () => {
  it("bounds", () => {
    const a = ["a", "b", "b", "d"];
    expect([lowerBound(a, "b"), upperBound(a, "b"), lowerBound(a, "c"), upperBound(a, "z"), lowerBound(a, "")]).toEqual([1, 3, 3, 4, 0]);
  });

  it("matches a Map under random sets, deletes and re-sets, small and big flushes", async () => {
    const r = rng(7);
    const idx = new SortedIndex<number>();
    const model = new Map<string, number>();
    for (let round = 0; round < 40; round++) {
      const ops = round % 7 === 0 ? 12_000 : 300; // some batches take the chunked path
      for (let i = 0; i < ops; i++) {
        const k = `u@${Math.floor(r() * 20_000)}.service`;
        if (r() < 0.3) {
          idx.delete(k);
          model.delete(k);
        } else {
          idx.set(k, i);
          model.set(k, i);
        }
      }
      await idx.flush();
      expect(idx.size).toBe(model.size);
      const keys = pageAll(idx, 1 + Math.floor(r() * 900));
      expect(keys).toEqual(modelKeys(model));
      for (const k of keys.slice(0, 50)) expect(idx.get(k)).toBe(model.get(k));
    }
  });

  it("writes that land while a big flush yields are neither lost nor doubled", async () => {
    const idx = new SortedIndex<number>();
    const model = new Map<string, number>();
    for (let i = 0; i < 30_000; i++) {
      idx.set(`k${i}`, i);
      model.set(`k${i}`, i);
    }
    const flushing = idx.flush();
    // While it sorts in chunks: delete some of the batch, re-set some, add new keys.
    for (let step = 0; step < 20; step++) {
      await new Promise((res) => setImmediate(res));
      for (let j = 0; j < 50; j++) {
        const k = `k${step * 1000 + j}`;
        idx.delete(k);
        model.delete(k);
        if (j % 5 === 0) {
          idx.set(k, -1);
          model.set(k, -1);
        }
        idx.set(`new${step}-${j}`, j);
        model.set(`new${step}-${j}`, j);
      }
    }
    await flushing;
    await idx.flush();
    expect(pageAll(idx, 777)).toEqual(modelKeys(model));
    expect(idx.size).toBe(model.size);
  });

  it("the merge's pass over old and new keys yields every MERGE_SLICE keys, and writes that land meanwhile are neither lost nor doubled", async () => {
    const { MERGE_SLICE } = await import("../../src/api/index-cache.js");
    const N = 12 * MERGE_SLICE;
    const idx = new SortedIndex<number>();
    const model = new Map<string, number>();
    const key = (i: number) => `k${String(i).padStart(7, "0")}`;
    for (let i = 0; i < N; i++) {
      idx.set(key(i), i);
      model.set(key(i), i);
    }
    await idx.flush();
    // A few tombstones and one new key: no chunked sort, only the pass over all N keys.
    for (let i = 0; i < N; i += 997) {
      idx.delete(key(i));
      model.delete(key(i));
    }
    idx.set("k-new", -1);
    model.set("k-new", -1);
    let turns = 0;
    let flushing = true;
    const flushed = idx.flush().finally(() => (flushing = false));
    while (flushing) {
      await new Promise((res) => setImmediate(res));
      if (!flushing) break;
      turns++;
      // Behind and ahead of the pass: deletes, re-sets and new keys.
      for (const i of [turns * 1000, N - turns * 1000, turns * 7919]) {
        idx.delete(key(i));
        model.delete(key(i));
        if (turns % 2 === 0) {
          idx.set(key(i), -i);
          model.set(key(i), -i);
        }
      }
      idx.set(`k-new-${turns}`, turns);
      model.set(`k-new-${turns}`, turns);
    }
    await flushed;
    expect(turns).toBeGreaterThanOrEqual(10);
    await idx.flush();
    expect(idx.size).toBe(model.size);
    expect(pageAll(idx, 5000)).toEqual(modelKeys(model));
  });

  it("a scan stops after scanLimit keys and says more; the pages still join", async () => {
    const idx = new SortedIndex<number>();
    for (let i = 0; i < 1000; i++) idx.set(`k${String(i).padStart(4, "0")}`, i);
    await idx.flush();
    const r = idx.scan({ scanLimit: 10 }, () => true);
    expect(r).toEqual({ last: "k0009", more: true });
    expect(pageAll(idx, 1e9, 37)).toHaveLength(1000);
    // from/to: a glob's literal prefix.
    const got: string[] = [];
    idx.scan({ from: "k01", to: "k01\uffff", scanLimit: 1e9 }, (k) => (got.push(k), true));
    expect(got).toHaveLength(100);
  });
});

describe("page (src/api/listings.ts)", () => {
  it("a page whose filter is slow stops after PAGE_MS, says more, and the pages still join", async () => {
    const { page, PAGE_MS } = await import("../../src/api/listings.js");
    const idx = new SortedIndex<number>();
    for (let i = 0; i < 3000; i++) idx.set(`k${String(i).padStart(5, "0")}`, i);
    await idx.flush();
    const slow = (_k: string, v: number) => {
      const until = performance.now() + 0.05;
      while (performance.now() < until);
      return v % 3 === 0 ? { v } : null;
    };
    const got: number[] = [];
    let after: string | undefined;
    let pages = 0;
    for (;;) {
      const p = page(idx, { after, budget: 1e9 }, slow);
      pages++;
      got.push(...p.parts.map((j) => (JSON.parse(j) as { v: number }).v));
      if (!p.more) break;
      after = p.next;
    }
    // The whole scan takes 150 ms and more: cut at PAGE_MS, it takes several pages (one without the cut).
    expect(PAGE_MS).toBeLessThanOrEqual(40);
    expect(pages).toBeGreaterThan(3);
    expect(got).toEqual(Array.from({ length: 1000 }, (_, i) => i * 3));
  });

  it("a page stops at its byte budget and goes on from its last row", async () => {
    const { page } = await import("../../src/api/listings.js");
    const idx = new SortedIndex<number>();
    for (let i = 0; i < 500; i++) idx.set(`k${String(i).padStart(4, "0")}`, i);
    await idx.flush();
    const p = page(idx, { budget: 1000 }, (_k, v) => ({ v, pad: "x".repeat(80) }));
    expect(p.more).toBe(true);
    expect(p.parts.join(",").length).toBeLessThanOrEqual(1000);
    expect(p.next).toBe(`k${String(p.parts.length - 1).padStart(4, "0")}`);
  });
});

describe("isStateRecord (src/api/listing-index.ts)", () => {
  it("accepts only what the UnitStateRecord schema accepts as it is", async () => {
    const { isStateRecord } = await import("../../src/api/listing-index.js");
    const { UnitStateRecord } = await import("../../src/protocol/messages.js");
    const ok = { unit: "a.service", machineId: "m1", hash: "abc", taskState: "running", load: "loaded", active: "active", sub: "running", pid: 3, restarts: 0, since: 1, updatedAt: 2 };
    const cases: unknown[] = [
      ok,
      { ...ok, pid: undefined, exitCode: 1, signal: "SIGTERM", error: "boom" },
      { ...ok, taskState: "bogus" },
      { ...ok, unit: "" },
      { ...ok, pid: 1.5 },
      { ...ok, restarts: -1 },
      { ...ok, since: -5 },
      { ...ok, updatedAt: "now" },
      { ...ok, error: 3 },
      { ...ok, machineId: undefined },
      null,
      [],
      "x",
    ];
    for (const c of cases) {
      if (isStateRecord(c)) expect(UnitStateRecord.safeParse(c).success, JSON.stringify(c)).toBe(true);
    }
    expect(isStateRecord(ok)).toBe(true);
    expect(cases.filter((c) => isStateRecord(c))).toHaveLength(2);
  });
});
