// The daemon's first beat, a compare-and-set of its machine record against what its duplicate
// check read (server.ts, claimMachineRecord). chaos.test.ts saw a daemon restarted one TTL after
// its SIGKILL exit with "machine ID m3 is already in use ... at the same moment": the killed
// incarnation's record had expired between the check and the claim. Real nats-server: expiry is
// the bucket's own max age, and the other writes are real writes between the read and the claim.
import { describe, expect, it } from "vitest";
import { useNatsServer } from "../helpers/fixture.js";
import { check } from "../helpers/check.js";
import { uniquePrefix } from "../helpers/nats-server.js";
import { ensureBuckets } from "../../src/nats/buckets.js";
import { Names, keys } from "../../src/protocol/names.js";
import { decodeAs, encode } from "../../src/protocol/codec.js";
import { MachineRecord } from "../../src/protocol/messages.js";
import { claimMachineRecord } from "../../src/server/server.js";

const nats = useNatsServer();

function rec(session: string): MachineRecord {
  return {
    id: "m1",
    hostname: "h1",
    publicIp: "10.0.0.1",
    metadata: {},
    capacity: { cpu: 1, memory: 1024 },
    availability: "active",
    version: "test",
    startedAt: Date.now(),
    session,
    heartbeatAt: Date.now(),
  };
}

async function bucket(agentTtlMs = 30_000) {
  return (await ensureBuckets(nats.nc, new Names(uniquePrefix("claim")), { agentTtlMs, leaseTtlMs: 5_000 })).machines;
}

describe("claiming the machine record", () => {
  it("wins on an absent key and on the revision it read", async () => {
    const kv = await bucket();
    const key = keys.machine("m1");
    expect(await claimMachineRecord(kv, key, rec("a"), 0)).toBe(true);
    const rev = (await kv.get(key))!.revision;
    expect(await claimMachineRecord(kv, key, rec("b"), rev)).toBe(true);
    expect(decodeAs(MachineRecord, (await kv.get(key))!.value, key).session).toBe("b");
  });

  it("our own earlier attempt landing between the check and the claim is a win, on create and on update", async () => {
    const kv = await bucket();
    const key = keys.machine("m1");
    // Absent when checked; our late create lands; the claim's create then fails on it.
    await kv.put(key, encode(rec("ours")));
    expect(await claimMachineRecord(kv, key, rec("ours"), 0)).toBe(true);
    // A SIGKILLed predecessor's record when checked; our late update lands first.
    const seen = (await kv.put(key, encode(rec("predecessor"))));
    await kv.update(key, encode(rec("ours2")), seen);
    expect(await claimMachineRecord(kv, key, rec("ours2"), seen)).toBe(true);
    expect(decodeAs(MachineRecord, (await kv.get(key))!.value, key).session).toBe("ours2");
  });

  it("another daemon's record written between the check and the claim loses, and is left as it was", async () => {
    const kv = await bucket();
    const key = keys.machine("m1");
    await kv.put(key, encode(rec("other")));
    expect(await claimMachineRecord(kv, key, rec("ours"), 0)).toBe(false);
    const seen = await kv.put(key, encode(rec("predecessor")));
    await kv.put(key, encode(rec("other")));
    expect(await claimMachineRecord(kv, key, rec("ours"), seen)).toBe(false);
    expect(decodeAs(MachineRecord, (await kv.get(key))!.value, key).session).toBe("other");
  });

  it("the record the check read expiring before the claim is a temporary failure (the daemon checks again), not a duplicate", async () => {
    const kv = await bucket(1000);
    const key = keys.machine("m1");
    const seen = await kv.put(key, encode(rec("predecessor")));
    await check(async () => (await kv.get(key)) === null, 10_000, "the record's expiry");
    await expect(claimMachineRecord(kv, key, rec("ours"), seen)).rejects.toMatchObject({ temporary: true, message: expect.stringContaining("expired or was removed") });
    // What the daemon does next: the check finds the key empty, and creates it.
    expect(await claimMachineRecord(kv, key, rec("ours"), 0)).toBe(true);
  });

  it("a record written and removed again since the check is a temporary failure (the daemon checks again), not a duplicate", async () => {
    const kv = await bucket();
    const key = keys.machine("m1");
    const seen = await kv.put(key, encode(rec("predecessor")));
    await kv.delete(key);
    await expect(claimMachineRecord(kv, key, rec("ours"), seen)).rejects.toMatchObject({ temporary: true, message: expect.stringContaining("checking it again") });
  });
});
