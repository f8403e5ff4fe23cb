// machine-availability finds its machine in the machines bucket, a TTL bucket: listing it with
// kv.keys() hangs when a record expires between the count and the delivery (see
// src/nats/kv-keys.ts). resolveMachine lists with one STREAM.INFO and answers at once while
// records expire around it; a machine whose record was deleted is not live.
import { describe, expect, it } from "vitest";
import { Kvm } from "@nats-io/kv";
import { uniquePrefix } from "../helpers/nats-server.js";
import { useNatsServer } from "../helpers/fixture.js";
import { resolveMachine } from "../../src/api/machine-availability.js";
import { FlotillaError } from "../../src/protocol/errors.js";
import { pace } from "../helpers/check.js";

const nats = useNatsServer();

const codeOf = (p: Promise<unknown>) => p.then(() => "resolved", (e: unknown) => (e instanceof FlotillaError ? e.code : String(e)));

describe("resolveMachine", () => {
  it("resolves a machine by ID or prefix while other records expire mid-listing", async () => {
    const { nc } = nats;
    const name = uniquePrefix("mav");
    const kv = await new Kvm(nc).create(name, { ttl: 300, history: 1 });
    const ref = { kv, nc, name };
    let worst = 0;
    for (let i = 0; i < 15; i++) {
      for (let j = 0; j < 3; j++) await kv.put(`gone${i}-${j}`, "x");
      // Land the listing right around the expiry of what was just written (as kv-keys.test.ts does).
      await pace(280 + Math.random() * 40); // writes paced so that listings land on key expiry
      await kv.put("stay-aaaa1111", "x");
      const t = Date.now();
      expect(await resolveMachine(ref, i % 2 ? "stay-aaaa1111" : "stay")).toBe("stay-aaaa1111");
      worst = Math.max(worst, Date.now() - t);
    }
    console.log(`resolveMachine: slowest of 15 while records expire: ${worst} ms`);
    expect(worst).toBeLessThan(1000);
  });

  it("a deleted record is not a live machine; a prefix of two is ambiguous; an unknown one says so", async () => {
    const { nc } = nats;
    const name = uniquePrefix("mav");
    const kv = await new Kvm(nc).create(name, { ttl: 60_000, history: 1 });
    const ref = { kv, nc, name };
    await kv.put("dead-1234", "x");
    await kv.delete("dead-1234");
    await kv.put("twin-1", "x");
    await kv.put("twin-2", "x");
    expect(await codeOf(resolveMachine(ref, "dead-1234"))).toBe("unknown_machine");
    expect(await codeOf(resolveMachine(ref, "dead"))).toBe("unknown_machine");
    expect(await codeOf(resolveMachine(ref, "twin"))).toBe("bad_request");
    await expect(resolveMachine(ref, "twin")).rejects.toThrow('machine "twin" is ambiguous: it matches twin-1, twin-2');
    await expect(resolveMachine(ref, "zz\nz")).rejects.toThrow('no live machine "zz\\nz" (see flotilla list-machines)');
    expect(await resolveMachine(ref, "twin-2")).toBe("twin-2");
  });
});
