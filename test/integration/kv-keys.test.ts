// listKeys against a TTL bucket: nats.js's kv.keys() waits forever for a value that expired
// between its count and its delivery; listKeys asks STREAM.INFO once and never waits.
// readBucket (keys + pipelined direct gets) and scanBucket (direct gets by sequence, for when
// the stream has no leader) read the current values without a consumer; in a 3-node cluster
// whose stream leader was SIGKILLed they keep answering while STREAM.INFO does not.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Kvm } from "@nats-io/kv";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/nats-core";
import { uniquePrefix } from "../helpers/nats-server.js";
import { check, pace } from "../helpers/check.js";
import { useNatsServer } from "../helpers/fixture.js";
import { NatsCluster } from "../helpers/nats-cluster.js";
import { listKeys, scanBucket, streamLastSeq } from "../../src/nats/kv-keys.js";
import { directGetMany, readBucket, GETS_IN_FLIGHT } from "../../src/nats/kv-read.js";

const nats = useNatsServer();
const td = new TextDecoder();

describe("listKeys", () => {
  it("lists under a filter, includes deleted keys' markers, and answers at once while keys expire", async () => {
    const { nc } = nats;
    const name = uniquePrefix("kvk");
    const kv = await new Kvm(nc).create(name, { ttl: 300, history: 1 });
    await kv.put("a.m1", "1");
    await kv.put("a.m2", "1");
    await kv.put("b.m1", "1");
    await kv.delete("a.m2");
    expect((await listKeys(nc, name, "a.*")).sort()).toEqual(["a.m1", "a.m2"]);
    expect((await listKeys(nc, name)).sort()).toEqual(["a.m1", "a.m2", "b.m1"]);
    let worst = 0;
    for (let i = 0; i < 15; i++) {
      await kv.put(`a.m${i % 3}`, "x");
      // Land the listing right around the expiry of what was just written.
      await pace(280 + Math.random() * 40); // writes paced so that listings land on key expiry
      const t = Date.now();
      const ks = await listKeys(nc, name, "a.*");
      worst = Math.max(worst, Date.now() - t);
      expect(ks.every((k) => k.startsWith("a."))).toBe(true);
    }
    expect(worst).toBeLessThan(1000);
  });
});

describe("readBucket and scanBucket", () => {
  it("read the current values under a filter, without deletes and without a consumer", async () => {
    const { nc } = nats;
    const name = uniquePrefix("kvr");
    const kv = await new Kvm(nc).create(name, { history: 1 });
    await kv.put("a.m1", "1");
    await kv.put("a.m2", "1");
    await kv.put("b.m1", "1");
    await kv.put("a.m1", "2");
    await kv.delete("a.m2");
    const read = await readBucket(nc, name, "a.*");
    expect(read.map((v) => `${v.key}=${td.decode(v.value)}`)).toEqual(["a.m1=2"]);
    expect((await readBucket(nc, name)).map((v) => v.key)).toEqual(["a.m1", "b.m1"]);
    const scanned = await scanBucket(nc, name);
    expect([...scanned].map(([k, v]) => `${k}=${v ? td.decode(v.value) : "deleted"}`).sort()).toEqual(["a.m1=2", "a.m2=deleted", "b.m1=1"]);
    expect(scanned.get("a.m1")!.revision).toBe(read[0]!.revision);
    const jsm = await jetstreamManager(nc);
    expect(await jsm.consumers.list(`KV_${name}`).next()).toEqual([]);
  });

  it("directGetMany answers more keys than it keeps in flight, in order, undefined for missing ones", async () => {
    const { nc } = nats;
    const name = uniquePrefix("kvm");
    const kv = await new Kvm(nc).create(name, { history: 1 });
    const n = GETS_IN_FLIGHT * 2 + 17;
    await Promise.all(Array.from({ length: n }, (_, i) => kv.put(`k${i}`, String(i))));
    const keys = [...Array.from({ length: n }, (_, i) => `k${i}`), "missing"];
    const got = await directGetMany(nc, name, keys);
    expect(got).toHaveLength(n + 1);
    expect(got.slice(0, n).every((v, i) => v !== undefined && td.decode(v.value) === String(i))).toBe(true);
    expect(got[n]).toBeUndefined();
  });
});

describe("in a 3-node cluster whose stream leader is SIGKILLed", () => {
  let cluster: NatsCluster;
  let nc: NatsConnection;
  beforeAll(async () => {
    cluster = await NatsCluster.start(3);
  }, 60_000);
  afterAll(async () => {
    await nc?.close();
    await cluster?.dispose();
  });

  it("listKeys and readBucket answer every time, each within a few seconds, while STREAM.INFO does not", async () => {
    const setup = await connect({ servers: cluster.urls.split(",") });
    const name = uniquePrefix("kvc");
    const kv = await new Kvm(setup).create(name, { history: 1, replicas: 3 });
    for (let i = 0; i < 30; i++) await kv.put(`m${i}`, String(i));
    const jsm = await jetstreamManager(setup);
    const victim = cluster.indexOf((await jsm.streams.info(`KV_${name}`)).cluster!.leader!);
    await setup.close();
    // Through the survivors: what is measured is the stream's election, not our reconnect.
    nc = await connect({ servers: [0, 1, 2].filter((i) => i !== victim).map((i) => cluster.url(i)) });
    await cluster.kill(victim);
    const killedAt = Date.now();
    // No leader: streamLastSeq says so within its bound, then at once (without asking again).
    let t = Date.now();
    expect(await streamLastSeq(nc, name)).toBeUndefined();
    expect(Date.now() - t).toBeLessThan(2500);
    t = Date.now();
    expect(await streamLastSeq(nc, name)).toBeUndefined();
    expect(Date.now() - t).toBeLessThan(100);
    let worst = 0;
    let calls = 0;
    // The first 6 s after the kill: the stream is electing a leader (writes fail about 5-6 s).
    while (Date.now() - killedAt < 6000) {
      const t = Date.now();
      const [keys, values] = await Promise.all([listKeys(nc, name), readBucket(nc, name)]);
      worst = Math.max(worst, Date.now() - t);
      calls++;
      expect(keys).toHaveLength(30);
      expect(values.map((v) => td.decode(v.value)).sort((a, b) => Number(a) - Number(b))).toEqual(
        Array.from({ length: 30 }, (_, i) => String(i)),
      );
    }
    console.log(`[kv-keys] ${calls} listings in the 6 s after the stream leader's kill; the slowest took ${worst} ms`);
    expect(worst).toBeLessThan(4000);
    // A leader again: the last sequence (30 puts).
    expect(await check(() => streamLastSeq(nc, name), 20_000, "a stream leader again", 250)).toBe(30);
  }, 60_000);
});
