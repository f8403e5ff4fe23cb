import { describe, expect, it } from "vitest";
import { uniquePrefix } from "../helpers/nats-server.js";
import { useNatsServer } from "../helpers/fixture.js";
import { check } from "../helpers/check.js";
import { ensureBuckets, openBuckets, openKv } from "../../src/nats/buckets.js";
import { Names } from "../../src/protocol/names.js";

const nats = useNatsServer();

describe("buckets", () => {
  it("creates the five buckets idempotently and adjusts a changed TTL", async () => {
    const names = new Names(uniquePrefix("b"));
    const a = await ensureBuckets(nats.nc, names, { agentTtlMs: 10_000, leaseTtlMs: 5_000 });
    await a.units.put("x", new Uint8Array([1]));
    const b = await ensureBuckets(nats.nc, names, { agentTtlMs: 4_000, leaseTtlMs: 5_000 });
    expect(Array.from((await b.units.get("x"))?.value ?? [])).toEqual([1]);
    expect((await b.machines.status()).ttl).toBe(4_000);
  });
  it("expires a TTL key and survives a server restart on the same port and store", async () => {
    const names = new Names(uniquePrefix("b"));
    const kv = await ensureBuckets(nats.nc, names, { agentTtlMs: 1_000, leaseTtlMs: 1_000 });
    await kv.units.put("keep", new Uint8Array([7]));
    await kv.machines.put("m1", new Uint8Array([1]));
    await check(async () => (await kv.machines.get("m1")) === null, 5_000, "machine key expiry");
    const port = nats.server.port;
    await nats.server.restart();
    expect(nats.server.port).toBe(port);
    await check(async () => (await kv.units.get("keep"))?.value[0] === 7, 10_000, "units after restart");
  });
  it("opened buckets read with direct get, never $JS.API.STREAM.MSG.GET (which panics nats-server 2.9.10)", async () => {
    const names = new Names(uniquePrefix("b"));
    await ensureBuckets(nats.nc, names, { agentTtlMs: 10_000, leaseTtlMs: 5_000 });
    const other = await nats.connect(); // a second daemon, or the CLI: it opens what exists
    const msgGets: string[] = [];
    const sub = nats.nc.subscribe("$JS.API.STREAM.MSG.GET.>", { callback: (_e, m) => void msgGets.push(m.subject) });
    const directGets: string[] = [];
    const dsub = nats.nc.subscribe("$JS.API.DIRECT.GET.>", { callback: (_e, m) => void directGets.push(m.subject) });
    await nats.nc.flush();
    const opened = await openBuckets(other, names);
    const again = await ensureBuckets(other, names, { agentTtlMs: 10_000, leaseTtlMs: 5_000 });
    const single = await openKv(other, names.bucket("leases"));
    await opened.units.put("u", new Uint8Array([1]));
    expect((await opened.units.get("u"))?.value[0]).toBe(1);
    expect((await again.units.get("u"))?.value[0]).toBe(1);
    expect(await single.get("nothing")).toBeNull();
    await other.flush();
    await nats.nc.flush();
    await check(() => directGets.length >= 3, 2_000, "the gets to travel as direct gets");
    expect(msgGets).toEqual([]);
    sub.unsubscribe();
    dsub.unsubscribe();
  });
});
