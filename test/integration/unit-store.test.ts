// UnitStore against a real JetStream KV: compare-and-set under concurrency (no lost update),
// template instantiation, garbage in the bucket.
import { beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/nats-core";
import type { KV } from "@nats-io/kv";
import { uniquePrefix } from "../helpers/nats-server.js";
import { useNatsServer } from "../helpers/fixture.js";
import { ensureBuckets, type Buckets } from "../../src/nats/buckets.js";
import { Names, keys } from "../../src/protocol/names.js";
import { UnitStore } from "../../src/unit/store.js";
import { unitHash } from "../../src/unit/index.js";
import { FlotillaError } from "../../src/protocol/errors.js";

const nats = useNatsServer();
let nc2: NatsConnection;
beforeAll(async () => {
  nc2 = await nats.connect();
});

const HELLO = "[Service]\nExecStart=/bin/sleep 600\n";

/** Two writers on two connections, as two daemons answering the API would be. */
async function twoStores(): Promise<[UnitStore, UnitStore, Buckets]> {
  const names = new Names(uniquePrefix("store"));
  const b1 = await ensureBuckets(nats.nc, names, { agentTtlMs: 10_000, leaseTtlMs: 5_000 });
  const b2 = await ensureBuckets(nc2, names, { agentTtlMs: 10_000, leaseTtlMs: 5_000 });
  return [new UnitStore(b1.units), new UnitStore(b2.units), b1];
}

describe("UnitStore compare-and-set", () => {
  it("two writers racing 2x50 version bumps on one unit lose no update", async () => {
    const [a, b] = await twoStores();
    await a.submit([{ name: "hello.service", contents: HELLO }]);
    expect((await a.get("hello.service"))?.version).toBe(1);
    const bump = (s: UnitStore) => s.mutate("hello.service", (r) => ({ contents: r.contents, hash: r.hash, desiredState: r.desiredState }));
    const results = await Promise.all([
      ...Array.from({ length: 50 }, () => bump(a)),
      ...Array.from({ length: 50 }, () => bump(b)),
    ]);
    expect(results.every((r) => r.changed)).toBe(true);
    const versions = results.map((r) => r.record!.version).sort((x, y) => x - y);
    // Every write saw the one before it: versions 2..101, each exactly once.
    expect(versions).toEqual(Array.from({ length: 100 }, (_, i) => i + 2));
    expect((await b.get("hello.service"))?.version).toBe(101);
  });

  it("2x50 concurrent start --replace with distinct files: 100 versions, the last file wins whole", async () => {
    const [a, b] = await twoStores();
    await a.submit([{ name: "web.service", contents: HELLO }]);
    const file = (w: string, i: number) => `[Service]\nExecStart=/bin/echo ${w}${i}\n`;
    const results = await Promise.all([
      ...Array.from({ length: 50 }, (_, i) => a.start([{ name: "web.service", contents: file("a", i) }], true)),
      ...Array.from({ length: 50 }, (_, i) => b.start([{ name: "web.service", contents: file("b", i) }], true)),
    ]);
    expect(results.flat().every((r) => r.changed)).toBe(true);
    const final = (await a.get("web.service"))!;
    expect(final.version).toBe(101);
    expect(final.desiredState).toBe("launched");
    expect(final.hash).toBe(unitHash(final.contents));
    const last = results.flat().find((r) => r.record!.version === 101)!;
    expect(last.record!.contents).toBe(final.contents);
  });

  it("concurrent creates of one new unit: exactly one creates it, the others see it and warn", async () => {
    const [a, b] = await twoStores();
    const results = (
      await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).submit([{ name: "new.service", contents: `${HELLO}# ${i}\n` }])),
      )
    ).flat();
    expect(results.filter((r) => r.changed)).toHaveLength(1);
    expect(results.filter((r) => !r.changed).every((r) => /differs/.test(r.warning ?? ""))).toBe(true);
    expect((await a.get("new.service"))?.version).toBe(1);
  });

  it("a stop racing a destroy either stops then destroys, or fails with unknown_unit: never resurrects", async () => {
    const [a, b] = await twoStores();
    for (let i = 0; i < 10; i++) {
      await a.start([{ name: "r.service", contents: HELLO }]);
      const [s, d] = await Promise.allSettled([a.stop(["r.service"]), b.destroy(["r.service"])]);
      expect(d.status).toBe("fulfilled");
      if (s.status === "rejected") expect((s.reason as FlotillaError).code).toBe("unknown_unit");
      expect(await a.get("r.service")).toBeUndefined();
    }
  });
});

describe("UnitStore templates and garbage", () => {
  it("instantiates from a template, refuses a template without a file, and keeps instances after the template goes", async () => {
    const [a] = await twoStores();
    await a.submit([{ name: "foo@.service", contents: "[Service]\nExecStart=/bin/echo %i\n" }]);
    const [r] = await a.load([{ name: "foo@7" }]);
    expect(r!.record).toMatchObject({ name: "foo@7.service", desiredState: "loaded" });
    await a.destroy(["foo@.service"]);
    expect((await a.get("foo@7.service"))?.contents).toBe("[Service]\nExecStart=/bin/echo %i\n");
    await expect(a.start([{ name: "foo@8.service" }])).rejects.toMatchObject({ code: "unknown_unit" });
  });

  it("skips a garbage value when listing and lets a submit overwrite it", async () => {
    const [a, , buckets] = await twoStores();
    await a.submit([{ name: "ok.service", contents: HELLO }]);
    await buckets.units.put(keys.unit("junk.service"), new TextEncoder().encode("garbage"));
    expect((await a.list()).map((u) => u.name)).toEqual(["ok.service"]);
    expect(await a.get("junk.service")).toBeUndefined();
    await expect(a.stop(["junk.service"])).rejects.toMatchObject({ code: "unknown_unit" });
    const [r] = await a.submit([{ name: "junk.service", contents: HELLO }]);
    expect(r!.record).toMatchObject({ name: "junk.service", version: 1, desiredState: "inactive" });
  });
});

/** The real bucket, with the in-flight reads and writes counted (the round trips a verb waits on). */
function counted(kv: KV, before?: (op: "create" | "update", key: string) => Promise<void>) {
  const c = { gets: 0, writes: new Map<string, number>(), inFlightGets: 0, maxGets: 0, inFlightWrites: 0, maxWrites: 0 };
  const track = async <T>(kind: "get" | "write", p: () => Promise<T>): Promise<T> => {
    if (kind === "get") c.maxGets = Math.max(c.maxGets, ++c.inFlightGets);
    else c.maxWrites = Math.max(c.maxWrites, ++c.inFlightWrites);
    try {
      return await p();
    } finally {
      if (kind === "get") c.inFlightGets--;
      else c.inFlightWrites--;
    }
  };
  const wrapped = new Proxy(kv, {
    get(target, prop, recv) {
      if (prop === "get") return (k: string) => (c.gets++, track("get", () => target.get(k)));
      if (prop === "create" || prop === "update") {
        return async (k: string, ...rest: unknown[]) => {
          c.writes.set(k, (c.writes.get(k) ?? 0) + 1);
          await before?.(prop, k);
          return track("write", () => (target[prop] as (...a: unknown[]) => Promise<number>).call(target, k, ...rest));
        };
      }
      const v = Reflect.get(target, prop, recv);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
  return { kv: wrapped, c };
}

// Issue 10 §0: a verb over many units reads them in one batch and writes them pipelined; only a
// unit whose compare-and-set lost a race is retried.
describe("UnitStore over many units", () => {
  it("1,000 units in one load: the reads and the compare-and-set writes are pipelined, one write per unit", async () => {
    const [, , buckets] = await twoStores();
    const { kv, c } = counted(buckets.units);
    const store = new UnitStore(kv);
    const units = Array.from({ length: 1000 }, (_, i) => ({ name: `many-${i}.service`, contents: `${HELLO}# ${i}\n` }));
    const out = await store.load(units);
    expect(out.map((o) => o.name)).toEqual(units.map((u) => u.name));
    expect(out.every((o) => o.changed && o.record?.desiredState === "loaded" && o.record.version === 1)).toBe(true);
    // One read per unit, many in flight at once (not one round trip after another).
    expect(c.gets).toBe(1000);
    expect(c.maxGets).toBeGreaterThan(50);
    expect([...c.writes.values()].every((n) => n === 1)).toBe(true);
    expect(c.writes.size).toBe(1000);
    expect(c.maxWrites).toBeGreaterThan(50);
    const listed = await store.list();
    expect(listed).toHaveLength(1000);
    // Again, all unchanged: reads only, no write.
    c.writes.clear();
    const again = await store.load(units);
    expect(again.every((o) => !o.changed)).toBe(true);
    expect(c.writes.size).toBe(0);
  });

  it("a unit changed by another writer between the check and the write is decided again, alone", async () => {
    const [a, b, buckets] = await twoStores();
    await a.submit([{ name: "raced.service", contents: HELLO }]);
    let raced = false;
    const { kv, c } = counted(buckets.units, async (_op, key) => {
      // Another writer gets in first, once: it starts the unit.
      if (key === keys.unit("raced.service") && !raced) {
        raced = true;
        await b.start([{ name: "raced.service" }]);
      }
    });
    const store = new UnitStore(kv);
    const units = [
      ...Array.from({ length: 20 }, (_, i) => ({ name: `calm-${i}.service`, contents: HELLO })),
      { name: "raced.service", contents: HELLO },
    ];
    const out = await store.load(units);
    // Each calm unit written once; the raced one twice (its first compare-and-set lost).
    for (let i = 0; i < 20; i++) expect(c.writes.get(keys.unit(`calm-${i}.service`))).toBe(1);
    expect(c.writes.get(keys.unit("raced.service"))).toBe(2);
    // Decided again on the started record: load of a launched unit makes it loaded (fleet's rules).
    const r = out.find((o) => o.name === "raced.service")!;
    expect(r.changed).toBe(true);
    expect(r.record).toMatchObject({ desiredState: "loaded", version: 3 });
    expect((await a.get("raced.service"))?.version).toBe(3);
  });

  it("a unit named twice in one request is written in request order, the second decided on the first", async () => {
    const [a] = await twoStores();
    const other = "[Service]\nExecStart=/bin/sleep 601\n";
    const out = await a.start([{ name: "twice.service", contents: HELLO }, { name: "twice.service", contents: other }], true);
    expect(out.map((o) => o.record?.version)).toEqual([1, 2]);
    expect((await a.get("twice.service"))).toMatchObject({ contents: other, desiredState: "launched", version: 2 });
    // Without --replace the second warns and keeps the first.
    const kept = await a.submit([{ name: "keep.service", contents: HELLO }, { name: "keep.service", contents: other }]);
    expect(kept[0]!.changed).toBe(true);
    expect(kept[1]).toMatchObject({ changed: false });
    expect(kept[1]!.warning).toMatch(/differs/);
  });

  it("bad input anywhere in the request writes nothing, and the error names the unit", async () => {
    const [a, , buckets] = await twoStores();
    const { kv, c } = counted(buckets.units);
    const store = new UnitStore(kv);
    const units = [
      ...Array.from({ length: 300 }, (_, i) => ({ name: `fine-${i}.service`, contents: HELLO })),
      { name: "broken.service", contents: "[Service\nExecStart=/bin/true\n" },
    ];
    await expect(store.load(units)).rejects.toMatchObject({ code: "invalid_unit_file", field: "units[300].contents" });
    expect(await a.list()).toEqual([]);
    await a.start([{ name: "up.service", contents: HELLO }]);
    await expect(store.stop(["up.service", "nope.service"])).rejects.toMatchObject({ code: "unknown_unit", value: "nope.service" });
    expect(c.writes.size).toBe(0);
    expect((await a.list()).map((u) => [u.name, u.desiredState])).toEqual([["up.service", "launched"]]);
  });

  it("restart over many units: the stops, then the starts, pipelined", async () => {
    const [a, , buckets] = await twoStores();
    const names = Array.from({ length: 100 }, (_, i) => `rs-${i}.service`);
    await a.start(names.map((name) => ({ name, contents: HELLO })));
    const { kv, c } = counted(buckets.units);
    const out = await new UnitStore(kv).restart(names);
    expect(out.every((o) => o.changed && o.record?.desiredState === "launched" && o.record.version === 3)).toBe(true);
    expect(c.maxWrites).toBeGreaterThan(10);
  });
});
