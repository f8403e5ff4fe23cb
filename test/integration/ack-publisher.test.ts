// The engine's schedule writes go out as sequences proven by acknowledged checkpoints
// (src/engine/ack-publisher.ts). What a checkpoint proves, and what it must refuse to prove,
// against a real nats-server.
import { describe, expect, it } from "vitest";
import { Kvm } from "@nats-io/kv";
import { uniquePrefix } from "../helpers/nats-server.js";
import { useNatsServer } from "../helpers/fixture.js";
import { openKv } from "../../src/nats/buckets.js";
import { AckPublisher, type SeqMessage } from "../../src/engine/ack-publisher.js";
import { Slicer } from "../../src/engine/slicer.js";
import { check, perTurn } from "../helpers/check.js";

const nats = useNatsServer();
/** A slicer whose slice never runs out: chunks of exactly `every` (the tests of what they prove). */
const unsliced = () => new Slicer(1e9);

async function bucket(opts: { maxValueSize?: number } = {}) {
  const name = uniquePrefix("seq");
  await new Kvm(nats.nc).create(name, { history: 1, maxValueSize: opts.maxValueSize });
  const kv = await openKv(nats.nc, name);
  const lastSeq = async () => (await kv.status()).streamInfo.state.last_seq;
  const msg = (key: string, value = `v-${key}`): SeqMessage => ({ subject: `$KV.${name}.${key}`, data: new TextEncoder().encode(value) });
  return { kv, lastSeq, msg };
}

describe("sequences proven by checkpoints", () => {
  it("proves every write of a long sequence, each at its own stream sequence", async () => {
    const { kv, lastSeq, msg } = await bucket();
    await kv.put("before", new TextEncoder().encode("x"));
    const base = await lastSeq();
    const pub = new AckPublisher(nats.nc);
    const msgs = Array.from({ length: 1000 }, (_, i) => msg(`k${i}`));
    const r = await pub.publishSequence(msgs, { base, every: 64, inFlight: 4, slicer: unsliced() });
    expect(r).toEqual({ proven: 1000, stopped: undefined, unproven: 0 });
    expect(await lastSeq()).toBe(base + 1000);
    const e = await kv.get("k517");
    expect(e?.revision).toBe(base + 518);
    expect(e?.string()).toBe("v-k517");
    pub.close();
  });

  it("writes KV deletes that kv.get reports as deleted", async () => {
    const { kv, lastSeq, msg } = await bucket();
    const pub = new AckPublisher(nats.nc);
    expect((await pub.publishSequence([msg("a"), msg("b")], { base: await lastSeq() })).proven).toBe(2);
    const r = await pub.publishSequence([{ ...msg("a"), del: true }, { ...msg("b"), del: true }], { base: await lastSeq() });
    expect(r.proven).toBe(2);
    expect((await kv.get("a"))?.operation).toBe("DEL");
    expect((await kv.get("b"))?.operation).toBe("DEL");
    pub.close();
  });

  it("proves nothing when someone else wrote after the base it was given", async () => {
    const { kv, lastSeq, msg } = await bucket();
    const base = await lastSeq();
    await kv.put("foreign", new TextEncoder().encode("not ours"));
    const pub = new AckPublisher(nats.nc);
    const r = await pub.publishSequence(
      Array.from({ length: 300 }, (_, i) => msg(`k${i}`)),
      { base, every: 100, slicer: unsliced() },
    );
    expect(r.proven).toBe(0);
    expect(r.unproven).toBeGreaterThan(0);
    expect(r.stopped).toMatch(/stream sequence \d+ acknowledged where \d+ was expected/);
    pub.close();
  });

  it("stops proving at the chunk where the server refused a write, and keeps what came before", async () => {
    const { lastSeq, msg } = await bucket({ maxValueSize: 64 });
    const base = await lastSeq();
    const pub = new AckPublisher(nats.nc);
    const msgs = Array.from({ length: 300 }, (_, i) => msg(`k${i}`));
    msgs[150] = msg("big", "x".repeat(1000)); // in the second chunk of 100, not its checkpoint
    const r = await pub.publishSequence(msgs, { base, every: 100, slicer: unsliced() });
    expect(r.proven).toBe(100);
    expect(r.unproven).toBe(200);
    expect(r.stopped).toMatch(/was expected/);
    pub.close();
  });

  it("reports a refused checkpoint with the server's own words", async () => {
    const { lastSeq, msg } = await bucket({ maxValueSize: 64 });
    const pub = new AckPublisher(nats.nc);
    const r = await pub.publishSequence([msg("a"), msg("big", "x".repeat(1000))], { base: await lastSeq() });
    expect(r.proven).toBe(0);
    expect(r.stopped).toMatch(/maximum message size|message size exceeds/i);
    pub.close();
  });

  it("stops before the next chunk when the guard says so, with nothing left unproven", async () => {
    const { lastSeq, msg } = await bucket();
    const base = await lastSeq();
    const pub = new AckPublisher(nats.nc);
    let chunks = 0;
    const r = await pub.publishSequence(
      Array.from({ length: 500 }, (_, i) => msg(`k${i}`)),
      { base, every: 100, inFlight: 1, slicer: unsliced(), guard: () => (++chunks > 2 ? "not leader" : undefined) },
    );
    expect(r).toEqual({ proven: 200, stopped: "not leader", unproven: 0 });
    expect(await lastSeq()).toBe(base + 200);
    pub.close();
  });

  it("gives the event loop a turn between chunks once its slice is used up, also when their answers came together", async () => {
    const { lastSeq, msg } = await bucket();
    const base = await lastSeq();
    const pub = new AckPublisher(nats.nc);
    // Chunks published per turn of the event loop (one run of this setImmediate chain).
    let chunks = 0;
    const turns = perTurn(() => chunks);
    const guard = () => {
      // After the first window, hold the loop: every answer to it arrives meanwhile, and they
      // resolve together once it is released.
      if (++chunks === 9) {
        const until = Date.now() + 300;
        while (Date.now() < until) {
          /* busy */
        }
      }
      return undefined;
    };
    const r = await pub.publishSequence(
      Array.from({ length: 32 * 128 }, (_, i) => msg(`k${i}`)),
      { base, every: 128, inFlight: 8, guard, slicer: new Slicer(0, 1) },
    );
    const { worst } = turns.stop();
    expect(r.proven).toBe(32 * 128);
    // Without the turns, the 8 chunks after the held one went out in one run of microtasks.
    expect(worst).toBeLessThanOrEqual(2);
    pub.close();
  });

  it("gives the event loop a turn within a chunk when its slice runs out there, and still proves every write", async () => {
    const { kv, lastSeq, msg } = await bucket();
    const base = await lastSeq();
    const pub = new AckPublisher(nats.nc);
    let published = 0;
    const publish = nats.nc.publish.bind(nats.nc);
    nats.nc.publish = ((...a: Parameters<typeof publish>) => {
      published++;
      return publish(...a);
    }) as typeof publish;
    const turns = perTurn(() => published);
    try {
      // A slice of 0 ms is used up at once: a turn after every 16 publishes of a chunk of 128.
      const r = await pub.publishSequence(
        Array.from({ length: 1000 }, (_, i) => msg(`k${i}`)),
        { base, every: 128, inFlight: 8, slicer: new Slicer(0, 1) },
      );
      expect(r).toEqual({ proven: 1000, stopped: undefined, unproven: 0 });
    } finally {
      nats.nc.publish = publish;
    }
    const { worst } = turns.stop();
    // Without the check within the chunk: 128 publishes in one turn.
    expect(worst).toBeLessThanOrEqual(17);
    expect(await lastSeq()).toBe(base + 1000);
    expect((await kv.get("k999"))?.revision).toBe(base + 1000);
    pub.close();
  });

  it("asks the guard again after a turn within a chunk, and publishes nothing more once it says stop", async () => {
    const { lastSeq, msg } = await bucket();
    const base = await lastSeq();
    const pub = new AckPublisher(nats.nc);
    let asked = 0;
    // Yes before the chunk, no after its first turn (16 publishes in).
    const r = await pub.publishSequence(
      Array.from({ length: 128 }, (_, i) => msg(`k${i}`)),
      { base, every: 128, slicer: new Slicer(0, 1), guard: () => (++asked > 1 ? "the lease may no longer be ours" : undefined) },
    );
    expect(r).toEqual({ proven: 0, stopped: "the lease may no longer be ours", unproven: 16 });
    // The 16 went out (unproven: nobody waited for their answer); nothing after them.
    await check(async () => (await lastSeq()) === base + 16, 5000, "the 16 stored");
    await nats.nc.flush();
    expect(await lastSeq()).toBe(base + 16);
    pub.close();
  });
});
