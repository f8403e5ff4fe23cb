// listKeys against a TTL bucket: nats.js's kv.keys() waits forever for a value that expired
// between its count and its delivery; listKeys asks STREAM.INFO once and never waits.
import { describe, expect, it } from "vitest";
import { Kvm } from "@nats-io/kv";
import { uniquePrefix } from "../helpers/nats-server.js";
import { useNatsServer } from "../helpers/fixture.js";
import { listKeys } from "../../src/nats/kv-keys.js";

const nats = useNatsServer();

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
      await new Promise((r) => setTimeout(r, 280 + Math.random() * 40));
      const t = Date.now();
      const ks = await listKeys(nc, name, "a.*");
      worst = Math.max(worst, Date.now() - t);
      expect(ks.every((k) => k.startsWith("a."))).toBe(true);
    }
    expect(worst).toBeLessThan(1000);
  });
});
