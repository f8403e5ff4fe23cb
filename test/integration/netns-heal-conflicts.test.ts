// Healing with conflicting schedules (network namespaces, test/helpers/netns.ts): while a host
// is cut off, the cluster's schedule and the host's own view part ways. Its web@ instance cannot
// move (Conflicts=web@* fills every other host), and a global unit is stopped cluster-wide. When
// the link comes back the host must take the cluster's word: the global unit stops there too,
// the web@ instance runs once (on it: the only place it fits), and at no moment do two web@
// instances share a host. Ground truth is /proc.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NetnsLab } from "../helpers/netns.js";
import { check, holds } from "../helpers/check.js";
import { uniquePrefix } from "../helpers/nats-server.js";
import { Names, keys, LEASE_KEY_ENGINE } from "../../src/protocol/names.js";
import { openKv } from "../../src/nats/buckets.js";
import { decodeAs } from "../../src/protocol/codec.js";
import { LeaseRecord } from "../../src/protocol/messages.js";
import type { NatsConnection } from "@nats-io/transport-node";

const AGENT_TTL_MS = 3000;
/** The cut-off client notices the healed link at its next TCP retransmission (see netns.ts). */
const HEAL_BOUND_MS = 10_000;
let lab: NetnsLab;
let nc: NatsConnection;
const prefix = uniquePrefix("netns-heal");
const names = new Names(prefix);

beforeAll(async () => {
  lab = await NetnsLab.create({ hosts: 3 });
  nc = await lab.observer();
});
afterAll(async () => {
  await lab?.dispose();
});

/**
 * While a host is cut off its daemon stays in the API's queue group until nats-server misses its
 * pings (about 6 s here, more on a loaded machine: one full-suite run timed out 5 tries of 2 s),
 * so a request may be routed to it and time out: ask again, for up to 30 s. (start and stop are
 * idempotent: asking twice wants the same state.)
 */
async function api(verb: string, body: unknown): Promise<void> {
  let m;
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      m = await nc.request(names.apiSubject(verb), JSON.stringify(body), { timeout: 2000 });
      break;
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`${verb}: no answer within 30 s of asking (${(e as Error).message})`);
    }
  }
  const text = new TextDecoder().decode(m.data);
  if (text.includes('"error"')) throw new Error(`${verb}: ${text}`);
}

const webs = ["web@1.service", "web@2.service", "web@3.service"];
const web = "[Service]\nExecStart=/bin/sleep 100000\n[X-Fleet]\nConflicts=web@*.service\n";
const global = "[Service]\nExecStart=/bin/sleep 100000\n[X-Fleet]\nGlobal=true\n";

/** No host runs two web@ instances (the Conflicts= promise). */
function websApart(): boolean {
  const all = lab.runningCopies();
  const hosts = webs.flatMap((u) => all.get(u) ?? []);
  return new Set(hosts).size === hosts.length;
}

describe("healing with conflicting schedules", () => {
  it("the healed host stops what the cluster stopped meanwhile and keeps its conflicting unit apart", async () => {
    const daemons = [];
    for (const h of lab.hosts) daemons.push(await lab.startDaemon(h, { prefix, agentTtl: `${AGENT_TTL_MS}ms`, leaseTtl: "3s" }));
    await api("start", { units: [...webs.map((name) => ({ name, contents: web })), { name: "g.service", contents: global }] });
    await check(() => {
      const all = lab.runningCopies();
      return webs.every((u) => (all.get(u) ?? []).length === 1) && (all.get("g.service") ?? []).length === 3 && websApart();
    }, 20_000, "three web@ on three hosts, the global unit on all").catch((e: Error) => {
      throw new Error(`${e.message}: ${JSON.stringify([...lab.runningCopies()])}`);
    });

    const kv = await openKv(nc, names.bucket("leases"));
    const e = await kv.get(keys.lease(LEASE_KEY_ENGINE));
    const holder = decodeAs(LeaseRecord, e!.value, "lease").holder.split("/")[0];
    const victim = daemons.find((d) => d.machineId !== holder)!;
    const v = victim.host.name;
    const mine = webs.find((u) => lab.runningCopies().get(u)?.[0] === v)!;
    expect(mine, `a web@ instance on ${v}`).toBeDefined();

    const cutAt = Date.now();
    lab.cut(v);
    // The cluster forgets the host after one TTL and stops the global unit meanwhile.
    await api("stop", { units: [{ name: "g.service" }] });
    await check(() => (lab.runningCopies().get("g.service") ?? []).join() === v, 15_000, `g.service stopped everywhere but on the cut-off ${v}`);
    // Over one TTL cut off: the instance cannot go anywhere, and nothing doubles up.
    await holds(websApart, AGENT_TTL_MS + 1000, "web@ instances on distinct hosts while cut off", 50);

    const healAt = Date.now();
    lab.heal(v);
    const healed = () => {
      const all = lab.runningCopies();
      return !all.has("g.service") && webs.every((u) => (all.get(u) ?? []).length === 1);
    };
    await check(healed, 15_000, "after healing: the global unit stopped on the healed host, each web@ once");
    const healedMs = Date.now() - healAt;
    expect(lab.runningCopies().get(mine)).toEqual([v]);
    // And it stays that way: no late restart elsewhere, no second copy.
    await holds(() => healed() && websApart(), AGENT_TTL_MS, "the healed schedule holds", 50);
    process.stderr.write(`netns heal with conflicts: cut off ${healAt - cutAt} ms; the healed host caught up ${healedMs} ms after the link came back\n`);
    // Not one TTL: the cut-off daemon learns that the link is back only when its TCP stack
    // retransmits (the gaps double while the link is down) or its client's pings give up.
    expect(healedMs).toBeLessThan(HEAL_BOUND_MS);
    // The checks' own deadlines bound it (an API call while a host is cut off may take 30 s).
  }, 120_000);
});
