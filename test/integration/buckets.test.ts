import { describe, expect, it } from "vitest";
import { uniquePrefix } from "../helpers/nats-server.js";
import { useNatsServer } from "../helpers/fixture.js";
import { check } from "../helpers/check.js";
import { ensureBuckets } from "../../src/nats/buckets.js";
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
});
