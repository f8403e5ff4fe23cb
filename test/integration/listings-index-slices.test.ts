// The listing index hands a bucket's entries over a slice at a time (src/api/index-cache.ts
// BucketIndex): the NATS client parses everything one socket read brought in one go, megabytes
// during a replay, and the index decoding each entry inside that held the daemon's event loop for
// 100 ms and more at 100,000 keys (bench:list). Counted in turns of the event loop, not in ms, so
// that a loaded machine cannot make it pass or fail.
import { describe, expect, it } from "vitest";
import { Kvm } from "@nats-io/kv";
import { uniquePrefix } from "../helpers/nats-server.js";
import { useNatsServer } from "../helpers/fixture.js";
import { openKv } from "../../src/nats/buckets.js";
import { silentLogger } from "../../src/log.js";
import { BucketIndex, ENTRY_SLICE } from "../../src/api/index-cache.js";
import { check, perTurn } from "../helpers/check.js";

const nats = useNatsServer();
const KEYS = 20_000;

describe("BucketIndex", () => {
  it(`hands a replay of ${KEYS} keys over at most ENTRY_SLICE entries per turn of the event loop, all of them, in order, before start() resolves`, async () => {
    const name = uniquePrefix("slices");
    await new Kvm(nats.nc).create(name, { history: 1 });
    const kv = await openKv(nats.nc, name);
    const value = new TextEncoder().encode("x".repeat(200));
    for (let i = 0; i < KEYS; i += 1000) await Promise.all(Array.from({ length: 1000 }, (_, j) => kv.put(`k${i + j}`, value)));

    const got: number[] = [];
    let handed = 0;
    const turns = perTurn(() => handed);
    const idx = new BucketIndex({
      nc: nats.nc,
      kv,
      bucket: name,
      log: silentLogger,
      ttlMs: 0,
      entry: (e) => {
        handed++;
        got.push(e.revision);
      },
    });
    try {
      await idx.start();
      expect(got).toHaveLength(KEYS);
      expect(idx.rev).toBe(KEYS);
      expect(got).toEqual([...got].sort((a, b) => a - b));
      expect(turns.stop().worst).toBeLessThanOrEqual(ENTRY_SLICE);
      // A write after the replay is seen by sync(), handed over like the rest.
      await kv.put("late", value);
      await idx.sync();
      expect(idx.rev).toBe(KEYS + 1);
      await check(() => got.at(-1) === KEYS + 1, 5000, "the late entry");
    } finally {
      turns.stop();
      idx.stop();
    }
  });
});
