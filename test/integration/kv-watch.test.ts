// watchBucket (src/nats/kv-watch.ts): what the engine learns of a bucket, against a real
// nats-server: the latest value of every key, the moment the replay ends, then every change.
import { describe, expect, it } from "vitest";
import { Kvm } from "@nats-io/kv";
import { uniquePrefix } from "../helpers/nats-server.js";
import { useNatsServer } from "../helpers/fixture.js";
import { check } from "../helpers/check.js";
import { openKv } from "../../src/nats/buckets.js";
import { watchBucket, type BucketEntry } from "../../src/nats/kv-watch.js";

const nats = useNatsServer();
const te = new TextEncoder();
const td = new TextDecoder();

async function bucket() {
  const name = uniquePrefix("w");
  await new Kvm(nats.nc).create(name, { history: 1 });
  return openKv(nats.nc, name);
}

function recorder() {
  const log: string[] = [];
  const entries: BucketEntry[] = [];
  return {
    log,
    entries,
    h: {
      entry: (e: BucketEntry) => {
        entries.push(e);
        log.push(`${e.operation} ${e.key}${e.operation === "PUT" ? `=${td.decode(e.value)}` : ""}`);
      },
      caughtUp: () => log.push("caught up"),
    },
  };
}

describe("watchBucket", () => {
  it("replays the latest value of every key, says when the replay ends, then follows changes", async () => {
    const kv = await bucket();
    await kv.put("a", te.encode("1"));
    await kv.put("b", te.encode("1"));
    await kv.put("a", te.encode("2"));
    await kv.put("c", te.encode("1"));
    await kv.delete("c");
    const r = recorder();
    const w = await watchBucket(nats.nc, kv, r.h);
    await check(() => r.log.includes("caught up"), 5000, "the end of the replay");
    expect(r.log).toEqual(["PUT b=1", "PUT a=2", "DEL c", "caught up"]);
    const rev = await kv.put("b", te.encode("3"));
    await kv.delete("a");
    await check(() => r.log.length === 6, 5000, "two changes");
    expect(r.log.slice(4)).toEqual(["PUT b=3", "DEL a"]);
    expect(r.entries[3]!.revision).toBe(rev);
    w.stop();
    await w.closed;
  });

  it("says the replay is over at once for an empty bucket", async () => {
    const kv = await bucket();
    const r = recorder();
    const w = await watchBucket(nats.nc, kv, r.h);
    expect(r.log).toEqual(["caught up"]);
    await kv.put("x", te.encode("1"));
    await check(() => r.log.length === 2, 5000, "the first change");
    expect(r.log[1]).toBe("PUT x=1");
    w.stop();
  });

  it("delivers nothing more once stopped", async () => {
    const kv = await bucket();
    const r = recorder();
    const w = await watchBucket(nats.nc, kv, r.h);
    w.stop();
    await w.closed;
    await kv.put("late", te.encode("1"));
    // A second watch sees the write: the first one would have by now.
    const seen = recorder();
    const w2 = await watchBucket(nats.nc, kv, seen.h);
    await check(() => seen.log.includes("caught up"), 5000, "a second watch's replay");
    expect(seen.log).toContain("PUT late=1");
    expect(r.log).toEqual(["caught up"]);
    w2.stop();
  });
});
