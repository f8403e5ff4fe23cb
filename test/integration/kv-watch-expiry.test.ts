// watchBucket's replay must end even when keys vanish before they are delivered (a key that
// expires by bucket TTL: nats-server 2.9 says nothing): a replay that counts what it was
// promised never reaches the count, and the engine, waiting for its machines replay, never
// leads. The watch reads over a slow link (a proxy carrying 512 KB/s that pushes back on the
// server); meanwhile the keys' messages are purged from the stream, which removes them without
// a marker, as expiry does.
import { afterEach, describe, expect, it } from "vitest";
import { Kvm } from "@nats-io/kv";
import { jetstreamManager } from "@nats-io/jetstream";
import { useNatsServer } from "../helpers/fixture.js";
import { uniquePrefix } from "../helpers/nats-server.js";
import { check } from "../helpers/check.js";
import { ThrottleProxy } from "../helpers/throttle-proxy.js";
import { connectOnce } from "../../src/nats/connection.js";
import { openKv } from "../../src/nats/buckets.js";
import { watchBucket } from "../../src/nats/kv-watch.js";
import type { NatsConnection } from "@nats-io/nats-core";

const nats = useNatsServer();
let proxy: ThrottleProxy | undefined;
let slow: NatsConnection | undefined;
afterEach(async () => {
  await slow?.close().catch(() => undefined);
  await proxy?.stop();
  slow = proxy = undefined;
});

describe("watchBucket over a bucket whose keys vanish during the replay", () => {
  it("says the replay is over once what is left has vanished", async () => {
    const name = uniquePrefix("gone");
    await new Kvm(nats.nc).create(name, { history: 1 });
    const kv = await openKv(nats.nc, name);
    const value = new Uint8Array(2000).fill(120);
    // 4,000 keys of 2 KB: about 16 s at 512 KB/s.
    for (let i = 0; i < 4000; i += 500) await Promise.all(Array.from({ length: 500 }, (_, j) => kv.put(`k${i + j}`, value)));
    // The link is fast while the watch's consumer is created (a create answer queued behind
    // megabytes of deliveries times out on a busy machine), then slow.
    proxy = await ThrottleProxy.start(nats.server.port, 64 * 2 ** 20);
    slow = await connectOnce({ url: proxy.url });
    let entries = 0;
    let caughtUp = false;
    const kvSlow = await openKv(slow, name);
    const w = await watchBucket(slow, kvSlow, {
      entry: () => {
        if (entries++ === 0) proxy!.setRate(512 * 1024);
      },
      caughtUp: () => void (caughtUp = true),
    });
    proxy.setRate(512 * 1024);
    await check(() => entries > 0, 10_000, "the replay under way");
    await (await jetstreamManager(nats.nc)).streams.purge(`KV_${name}`);
    await check(() => caughtUp, 25_000, "the end of the replay");
    // It ended because nothing was left, not because everything arrived.
    expect(entries).toBeLessThan(4000);
    w.stop();
  }, 40_000);
});
