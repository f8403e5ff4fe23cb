// A daemon whose link to NATS goes silent (its host's cable pulled in a network namespace: no
// FIN, no RST, its packets vanish) must notice by itself and dial again, not sit on the dead
// connection until TCP's next retransmission (the gaps double while the link is down: 6.4 s
// apart after 6 s) or its client's pings give up (20-30 s). It asks for a PONG when a heartbeat
// is still pending after LINK_PROBE_MS, and redials when none comes within LINK_PROBE_MS more.
// Before that probe, a container taken off its network for 3 s stopped its stale copies 4.9 s
// after it was put back (test/containers/cluster.ctest.ts, CI of stop 20).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NetnsLab, type NetnsDaemon } from "../helpers/netns.js";
import { check } from "../helpers/check.js";
import { uniquePrefix } from "../helpers/nats-server.js";
import { Names, keys } from "../../src/protocol/names.js";
import { openKv } from "../../src/nats/buckets.js";
import { LINK_PROBE_MS } from "../../src/server/server.js";
import type { NatsConnection } from "@nats-io/transport-node";

const AGENT_TTL_MS = 3000;
/** Long enough that TCP's retransmissions are 6.4 s apart when the link comes back. */
const CUT_MS = 8000;
const DEAD_SAID = /the connection looks dead/;
let lab: NetnsLab;
let nc: NatsConnection;
let d: NetnsDaemon;
const prefix = uniquePrefix("netns-silent");
const names = new Names(prefix);

beforeAll(async () => {
  lab = await NetnsLab.create({ hosts: 1 });
  nc = await lab.observer();
  d = await lab.startDaemon(lab.hosts[0]!, { prefix, agentTtl: `${AGENT_TTL_MS}ms`, leaseTtl: "3s" });
});
afterAll(async () => {
  await lab?.dispose();
});

/** When the server stored the machine's record last (a beat sent during the cut lands late). */
async function lastBeatStored(): Promise<number> {
  const kv = await openKv(nc, names.bucket("machines"));
  const e = await kv.get(keys.machine(d.machineId));
  return e && e.operation === "PUT" && e.value.length ? e.created.getTime() : 0;
}

describe("a daemon's link to NATS gone silent", () => {
  it("is dropped within TTL/2 + 2 probes and dialed again; healed, the machine beats again within a dial", async () => {
    expect(d.child.output()).not.toMatch(DEAD_SAID);
    const cutAt = Date.now();
    lab.cut(d.host);
    // A beat is due within TTL/2; pending LINK_PROBE_MS, it sends a PING; unanswered for
    // LINK_PROBE_MS more, the daemon says so and redials. The next beat may already be in flight.
    await check(() => DEAD_SAID.test(d.child.output()), AGENT_TTL_MS / 2 + 2 * LINK_PROBE_MS + 1500, "the daemon saying its connection looks dead", 50);
    const saidMs = Date.now() - cutAt;
    await check(() => Date.now() - cutAt >= CUT_MS, CUT_MS + 1000, "the cut lasting", 100);
    const healAt = Date.now();
    lab.heal(d.host);
    // Dials during the cut time out after 3 s (their SYNs vanish): the one in flight at the
    // heal gets through at its next SYN or the next dial, within about 2.5 s.
    await check(() => /reconnected to NATS/.test(d.child.output()), 4000, "the daemon reconnected", 50);
    const reconnectMs = Date.now() - healAt;
    await check(async () => (await lastBeatStored()) > healAt, 3000, "a heartbeat after the heal", 50);
    const beatMs = Date.now() - healAt;
    process.stderr.write(
      `silent link: said dead ${saidMs} ms after the cut; cut off ${healAt - cutAt} ms; reconnected ${reconnectMs} ms and beat ${beatMs} ms after the heal\n`,
    );
    // Without the probe, the first retransmission after the heal comes 4.6-6.1 s after it.
    expect(reconnectMs).toBeLessThan(3500);
  });
});
