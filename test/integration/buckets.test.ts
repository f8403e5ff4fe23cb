import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/nats-core";
import { NatsServer, uniquePrefix } from "../helpers/nats-server.js";
import { check } from "../helpers/check.js";
import { connectOnce } from "../../src/nats/connection.js";
import { ensureBuckets } from "../../src/nats/buckets.js";
import { Names } from "../../src/protocol/names.js";

let server: NatsServer;
let nc: NatsConnection;
beforeAll(async () => {
  server = await NatsServer.start();
  nc = await connectOnce({ url: server.url });
});
afterAll(async () => {
  await nc?.close();
  await server?.dispose();
});

describe("buckets", () => {
  it("creates the five buckets idempotently and adjusts a changed TTL", async () => {
    const names = new Names(uniquePrefix("b"));
    const a = await ensureBuckets(nc, names, { agentTtlMs: 10_000, leaseTtlMs: 5_000 });
    await a.units.put("x", new Uint8Array([1]));
    const b = await ensureBuckets(nc, names, { agentTtlMs: 4_000, leaseTtlMs: 5_000 });
    expect(Array.from((await b.units.get("x"))?.value ?? [])).toEqual([1]);
    expect((await b.machines.status()).ttl).toBe(4_000);
  });
  it("expires a TTL key and survives a server restart on the same port and store", async () => {
    const names = new Names(uniquePrefix("b"));
    const kv = await ensureBuckets(nc, names, { agentTtlMs: 1_000, leaseTtlMs: 1_000 });
    await kv.units.put("keep", new Uint8Array([7]));
    await kv.machines.put("m1", new Uint8Array([1]));
    await check(async () => (await kv.machines.get("m1")) === null, 5_000, "machine key expiry");
    const port = server.port;
    await server.restart();
    expect(server.port).toBe(port);
    await check(async () => (await kv.units.get("keep"))?.value[0] === 7, 10_000, "units after restart");
  });
});
