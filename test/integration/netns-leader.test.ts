// The engine leader's host cut off (network namespaces, test/helpers/netns.ts): the others elect
// a new leader once the lease runs out, it moves the old leader's units after the agent TTL (a
// new leader gives every machine one TTL of grace), and when the link comes back the old leader
// follows and its stale copies stop. Ground truth is /proc.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NetnsLab } from "../helpers/netns.js";
import { check } from "../helpers/check.js";
import { uniquePrefix } from "../helpers/nats-server.js";
import { Names, keys, LEASE_KEY_ENGINE } from "../../src/protocol/names.js";
import { openKv } from "../../src/nats/buckets.js";
import { decodeAs } from "../../src/protocol/codec.js";
import { LeaseRecord } from "../../src/protocol/messages.js";
import type { NatsConnection } from "@nats-io/transport-node";

const AGENT_TTL_MS = 3000;
const LEASE_TTL_MS = 3000;
let lab: NetnsLab;
let nc: NatsConnection;
const prefix = uniquePrefix("netns-lead");
const names = new Names(prefix);

beforeAll(async () => {
  lab = await NetnsLab.create({ hosts: 3 });
  nc = await lab.observer();
});
afterAll(async () => {
  await lab?.dispose();
});

/**
 * The lease once its term's epoch is recorded. A winner creates the key with epoch 0 and records
 * the epoch (the create's revision) in an update right after (src/engine/lease.ts): a read in
 * between sees epoch 0, and CI once did.
 */
async function lease(): Promise<LeaseRecord | undefined> {
  const kv = await openKv(nc, names.bucket("leases"));
  const e = await kv.get(keys.lease(LEASE_KEY_ENGINE));
  const l = e && e.operation === "PUT" && e.value.length ? decodeAs(LeaseRecord, e.value, "lease") : undefined;
  return l && l.epoch > 0 ? l : undefined;
}

describe("the engine leader's host cut off", () => {
  it("a new leader moves its units; healed, the old leader follows and its stale copies stop", async () => {
    const daemons = [];
    for (const h of lab.hosts) daemons.push(await lab.startDaemon(h, { prefix, agentTtl: `${AGENT_TTL_MS}ms`, leaseTtl: `${LEASE_TTL_MS}ms` }));
    const units = Array.from({ length: 6 }, (_, i) => `l${i}.service`);
    const m = await nc.request(names.apiSubject("start"), JSON.stringify({ units: units.map((name) => ({ name, contents: "[Service]\nExecStart=/bin/sleep 100000\n" })) }), { timeout: 10_000 });
    expect(new TextDecoder().decode(m.data)).not.toContain('"error"');
    const copies = () => {
      const all = lab.runningCopies();
      return Object.fromEntries(units.map((u) => [u, all.get(u) ?? []]));
    };
    await check(() => Object.values(copies()).every((h) => h.length === 1), 20_000, "each unit once");
    const first = (await check(lease, 10_000, "a leader"))!;
    // The holder is "<machineId>/<session>".
    const old = daemons.find((d) => first.holder.split("/")[0] === d.machineId)!;
    expect(old, `leader ${first.holder} is one of ours`).toBeDefined();
    const before = copies();
    const theirs = units.filter((u) => before[u]![0] === old.host.name);
    expect(theirs.length, `the leader's share of six units on three hosts: ${JSON.stringify(before)}`).toBeGreaterThan(0);

    const cutAt = Date.now();
    lab.cut(old.host);
    const second = await check(async () => {
      const l = await lease();
      return l && l.holder !== first.holder ? l : undefined;
    }, LEASE_TTL_MS + 15_000, "a new leader");
    const electedMs = Date.now() - cutAt;
    expect(second.epoch).toBeGreaterThan(first.epoch);
    await check(() => {
      const c = copies();
      return theirs.every((u) => c[u]!.some((h) => h !== old.host.name));
    }, LEASE_TTL_MS + AGENT_TTL_MS + 15_000, `${theirs.join(",")} running elsewhere`);
    const movedMs = Date.now() - cutAt;

    const healAt = Date.now();
    lab.heal(old.host);
    await check(() => Object.values(copies()).every((h) => h.length === 1), 15_000, "one copy of every unit after healing");
    const staleMs = Date.now() - healAt;
    for (const u of theirs) expect(copies()[u]![0], u).not.toBe(old.host.name);
    // The old leader came back as a follower: the lease stays with the new one.
    expect((await lease())?.holder).toBe(second.holder);
    process.stderr.write(
      `netns leader partition: new leader after ${electedMs} ms, ${theirs.length} units moved ${movedMs} ms after the cut, ` +
        `cut off ${healAt - cutAt} ms, stale copies stopped ${staleMs} ms after healing (lease TTL ${LEASE_TTL_MS} ms, agent TTL ${AGENT_TTL_MS} ms)\n`,
    );
    // The lease runs out, a candidate takes it, then every machine gets one agent TTL of grace.
    expect(movedMs).toBeLessThan(LEASE_TTL_MS + AGENT_TTL_MS + 6000);
    // The cut-off daemon is back at its next SYN or dial after the heal (netns-silent-link).
    expect(staleMs).toBeLessThan(10_000);
  });
});
