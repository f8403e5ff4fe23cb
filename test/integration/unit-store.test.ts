// UnitStore against a real JetStream KV: compare-and-set under concurrency (no lost update),
// template instantiation, garbage in the bucket.
import { beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/nats-core";
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
