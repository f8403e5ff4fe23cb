// watchBucket (src/nats/kv-watch.ts): what the engine learns of a bucket, against a real
// nats-server: the latest value of every key, the moment the replay ends, then every change.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { NatsCluster } from "../helpers/nats-cluster.js";
import { uniquePrefix } from "../helpers/nats-server.js";
import { useNatsServer } from "../helpers/fixture.js";
import { check } from "../helpers/check.js";
import { openKv } from "../../src/nats/buckets.js";
import { watchBucket, watchKv, type BucketEntry } from "../../src/nats/kv-watch.js";

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

// In a 3-node JetStream cluster, an R3 bucket's watch is an R1 ordered consumer on one of the
// nodes. When that node dies, the watch must come back by itself (nats.js ordered consumers
// re-create themselves after missed heartbeats) and deliver what was written meanwhile: the
// engine follows units and machines with watchBucket, the agent its schedule slice with kv.watch.
describe("watches in a 3-node cluster when the consumer's node is SIGKILLed", () => {
  let cluster: NatsCluster;
  let watcher: NatsConnection;
  let writer: NatsConnection;
  beforeAll(async () => {
    cluster = await NatsCluster.start(3);
    watcher = await connect({ servers: cluster.urls.split(","), maxReconnectAttempts: -1, reconnectTimeWait: 250 });
    writer = await connect({ servers: cluster.urls.split(","), maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  }, 60_000);
  afterAll(async () => {
    await watcher?.close();
    await writer?.close();
    await cluster?.dispose();
  });

  /** The node that holds the stream's one consumer whose name starts so (fw_: ours, oc_: nats.js's). */
  async function consumerNode(stream: string, namePrefix: string): Promise<number> {
    const jsm = await jetstreamManager(writer);
    const list = (await jsm.consumers.list(stream).next()).filter((c) => c.name.startsWith(namePrefix));
    expect(list.map((c) => c.name)).toHaveLength(1);
    return cluster.indexOf(list[0]!.cluster!.leader!);
  }

  /** A put that waits out the election of a new stream leader. */
  async function putSoon(kv: KV, key: string, value: string): Promise<void> {
    await check(async () => (await kv.put(key, te.encode(value))) > 0, 30_000, `put ${key}`, 250);
  }

  it("watchBucket delivers writes made after the loss (the engine's watches)", async () => {
    const name = uniquePrefix("wc");
    await new Kvm(writer).create(name, { history: 1, replicas: 3 });
    const kv = await openKv(writer, name);
    await kv.put("before", te.encode("1"));

    const r = recorder();
    const w = await watchBucket(watcher, await openKv(watcher, name), r.h);
    await check(() => r.log.includes("caught up"), 10_000, "the end of the replay");
    const victim = await consumerNode(`KV_${name}`, "fw_");
    await cluster.kill(victim);
    const killedAt = Date.now();
    await putSoon(kv, "after", "2");
    await check(() => r.log.includes("PUT after=2"), 20_000, "watchBucket to deliver a write made after the loss");
    console.log(`[kv-watch] watchBucket delivered a write ${Date.now() - killedAt} ms after its consumer's node was killed`);
    expect(r.log.filter((l) => l === "caught up")).toHaveLength(1);
    expect(r.log.filter((l) => l.startsWith("PUT before"))).toHaveLength(1);
    w.stop();
    await cluster.restart(victim);
    await cluster.waitForJetStream();
  }, 90_000);

  it("watchKv (kv.watch's entries, as the agent reads them) delivers writes made after the loss", async () => {
    const name = uniquePrefix("wk");
    await new Kvm(writer).create(name, { history: 1, replicas: 3 });
    const kv = await openKv(writer, name);
    await kv.put("m1.a", te.encode("1"));
    await kv.put("m1.b", te.encode("1"));
    await kv.put("m2.c", te.encode("1"));
    const seen: string[] = [];
    const iter = await watchKv(watcher, await openKv(watcher, name), { key: "m1.>" });
    expect(await iter._data.info(true)).toEqual({ num_pending: 2 });
    void (async () => {
      for await (const e of iter) seen.push(`${e.operation} ${e.key} delta=${e.delta} update=${e.isUpdate}`);
    })();
    await check(() => seen.length === 2, 10_000, "watchKv's replay");
    expect(seen).toEqual(["PUT m1.a delta=1 update=false", "PUT m1.b delta=0 update=false"]);
    const victim = await consumerNode(`KV_${name}`, "fw_");
    await cluster.kill(victim);
    const killedAt = Date.now();
    await putSoon(kv, "m1.later", "3");
    await check(() => seen.includes("PUT m1.later delta=0 update=true"), 20_000, "watchKv to deliver a write made after the loss");
    console.log(`[kv-watch] watchKv delivered a write ${Date.now() - killedAt} ms after its consumer's node was killed`);
    iter.stop();
    await cluster.restart(victim);
    await cluster.waitForJetStream();
  }, 90_000);
});
