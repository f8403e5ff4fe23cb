// The lease's NATS effects (src/engine/lease.ts) against a real nats-server: what happens when a
// step of acquiring fails after the server took it, and that a deposed leader is refused.
import { afterEach, describe, expect, it } from "vitest";
import { createActor } from "xstate";
import type { KV } from "@nats-io/kv";
import pino from "pino";
import { useNatsServer, } from "../helpers/fixture.js";
import { uniquePrefix } from "../helpers/nats-server.js";
import { check, holds } from "../helpers/check.js";
import { EngineCluster, unitFile } from "../helpers/engine-cluster.js";
import { ensureBuckets } from "../../src/nats/buckets.js";
import { Names, keys, LEASE_KEY_ENGINE } from "../../src/protocol/names.js";
import { decodeAs, encode } from "../../src/protocol/codec.js";
import { LeaseRecord } from "../../src/protocol/messages.js";
import { acquireLease, leaseMachineFor, renewLease, LEASE_KEY } from "../../src/engine/lease.js";
import { isLeading } from "../../src/engine/lease.machine.js";

const nats = useNatsServer();
const log = pino({ level: "silent" });
let cluster: EngineCluster | undefined;
afterEach(async () => {
  await cluster?.dispose();
  cluster = undefined;
});

async function leases(ttlMs: number): Promise<KV> {
  return (await ensureBuckets(nats.nc, new Names(uniquePrefix("lease")), { agentTtlMs: 2000, leaseTtlMs: ttlMs })).leases;
}

/** The bucket, with one call made to fail after the server took it (a reply lost on the way). */
function losingReplyOf(kv: KV, method: "create" | "update"): KV {
  let failed = false;
  return new Proxy(kv, {
    get(target, prop, receiver) {
      if (prop === method)
        return async (...args: unknown[]) => {
          const r = await (target[method] as (...a: unknown[]) => Promise<number>).apply(target, args);
          if (!failed) {
            failed = true;
            throw new Error("TIMEOUT");
          }
          return r;
        };
      const v = Reflect.get(target, prop, receiver);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

async function leadsWithin(kv: KV, ms: number): Promise<{ epoch: number; revision: number }> {
  const actor = createActor(leaseMachineFor(kv, log), { input: { holder: "me/1", ttlMs: 10_000 } });
  actor.start();
  try {
    await check(() => isLeading(actor.getSnapshot().value), ms, "leading");
    const c = actor.getSnapshot().context;
    return { epoch: c.epoch, revision: c.revision };
  } finally {
    actor.stop();
  }
}

describe("acquiring the lease", () => {
  it("an epoch update whose answer is lost still leads at once, at the key's revision", async () => {
    const kv = await leases(10_000);
    const r = await acquireLease(losingReplyOf(kv, "update"), "me/1", 10_000, log);
    expect(r.acquired).toBe(true);
    if (!r.acquired) return;
    const e = (await kv.get(LEASE_KEY))!;
    expect(r.revision).toBe(e.revision);
    expect(decodeAs(LeaseRecord, e.value, "lease")).toMatchObject({ holder: "me/1", epoch: r.epoch });
    // The revision is right: the next renewal (compare-and-set) is accepted.
    await renewLease(kv, { holder: "me/1", ttlMs: 10_000, epoch: r.epoch, revision: r.revision });
  });

  it("a create whose answer is lost: the statechart leads long before the 10 s TTL", async () => {
    const kv = await leases(10_000);
    const t0 = Date.now();
    const term = await leadsWithin(losingReplyOf(kv, "create"), 5000);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect((await kv.get(LEASE_KEY))!.revision).toBe(term.revision);
  });

  it("an update whose answer is lost: the statechart leads long before the 10 s TTL", async () => {
    const kv = await leases(10_000);
    const term = await leadsWithin(losingReplyOf(kv, "update"), 5000);
    expect((await kv.get(LEASE_KEY))!.revision).toBe(term.revision);
  });

  it("a record of another holder is not taken", async () => {
    const kv = await leases(10_000);
    await kv.create(LEASE_KEY, encode({ holder: "other/1", epoch: 7, expiresAt: Date.now() + 10_000 } satisfies LeaseRecord));
    expect(await acquireLease(kv, "me/1", 10_000, log)).toEqual({ acquired: false, holder: "other/1" });
  });
});

describe("a deposed leader", () => {
  it("is refused when it renews after someone else took the key", async () => {
    const kv = await leases(10_000);
    const r = await acquireLease(kv, "me/1", 10_000, log);
    if (!r.acquired) throw new Error("not acquired");
    await kv.put(LEASE_KEY, encode({ holder: "thief/1", epoch: 99, expiresAt: Date.now() + 10_000 } satisfies LeaseRecord));
    await expect(renewLease(kv, { holder: "me/1", ttlMs: 10_000, epoch: r.epoch, revision: r.revision })).rejects.toThrow(/wrong last sequence/);
    expect(decodeAs(LeaseRecord, (await kv.get(LEASE_KEY))!.value, "lease").holder).toBe("thief/1");
  });

  it("stops leading and writes nothing more once its lease is taken", async () => {
    cluster = await EngineCluster.create(nats.server.url, { leaseTtlMs: 6000 });
    const cl = cluster;
    cl.addMachine("m1");
    const engine = await cl.startEngine();
    await check(() => engine.isLeader, 10_000, "leading");
    await cl.putUnit("before.service", unitFile());
    await check(async () => (await cl.schedule()).has("before.service"), 10_000, "placed while leading");
    await cl.buckets.leases.put(keys.lease(LEASE_KEY_ENGINE), encode({ holder: "thief/1", epoch: 1e9, expiresAt: Date.now() + 6000 } satisfies LeaseRecord));
    // Its next renewal (every TTL/3 = 2 s) is refused: it steps down.
    await check(() => !engine.isLeader, 5000, "stepped down");
    await cl.putUnit("after.service", unitFile());
    await holds(async () => !(await cl.schedule()).has("after.service"), 1500, "nothing placed by a deposed leader");
  });
});
