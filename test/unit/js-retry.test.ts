// What counts as a temporary JetStream error (a cluster electing a leader) and how withJsRetry
// and retryingKv treat it. Pure logic: the errors are built as nats.js builds them.
import { describe, expect, it } from "vitest";
import type { KV } from "@nats-io/kv";
import { isTemporaryJsError, retryingKv, withJsRetry } from "../../src/nats/js-retry.js";
import { FlotillaError } from "../../src/protocol/errors.js";

function named(name: string, message: string): Error {
  const e = new Error(message);
  e.name = name;
  return e;
}

describe("isTemporaryJsError", () => {
  it.each([
    ["a request timeout", named("TimeoutError", "timeout")],
    ["no stream leader (503 no responders on a publish)", named("JetStreamNotEnabled", "jetstream is not enabled")],
    ["no responders", named("NoRespondersError", "no responders: '$JS.API.STREAM.INFO.KV_x'")],
    ["10008", new Error("JetStream system temporarily unavailable")],
    ["a temporary FlotillaError", new FlotillaError("timeout", "heartbeat put did not finish within 500 ms", { temporary: true })],
  ])("%s is temporary", (_, e) => expect(isTemporaryJsError(e)).toBe(true));

  it.each([
    ["wrong last sequence (a lost compare-and-set)", new Error("wrong last sequence: 4")],
    ["stream not found", new Error("stream not found")],
    ["a bad request", new FlotillaError("bad_request", "start: field units: give at least one unit")],
    ["nothing", undefined],
  ])("%s is not", (_, e) => expect(isTemporaryJsError(e)).toBe(false));
});

describe("withJsRetry", () => {
  it("retries temporary errors until it works", async () => {
    let n = 0;
    const v = await withJsRetry(
      async () => {
        if (++n < 3) throw named("JetStreamNotEnabled", "jetstream is not enabled");
        return "ok";
      },
      { delayMs: 1 },
    );
    expect([v, n]).toEqual(["ok", 3]);
  });

  it("throws a non-temporary error at once, and a temporary one once the budget is spent", async () => {
    let n = 0;
    await expect(
      withJsRetry(async () => {
        n++;
        throw new Error("wrong last sequence: 4");
      }),
    ).rejects.toThrow("wrong last sequence");
    expect(n).toBe(1);
    const t = Date.now();
    await expect(withJsRetry(async () => Promise.reject(named("TimeoutError", "timeout")), { budgetMs: 100, delayMs: 10 })).rejects.toThrow("timeout");
    expect(Date.now() - t).toBeLessThan(1000);
  });
});

describe("retryingKv", () => {
  it("retries get/put and passes everything else through", async () => {
    let puts = 0;
    const fake = {
      bucket: "b",
      async put(_k: string, _v: Uint8Array) {
        if (++puts < 2) throw named("JetStreamNotEnabled", "jetstream is not enabled");
        return 7;
      },
      async watch() {
        throw named("TimeoutError", "timeout");
      },
    };
    const kv = retryingKv(fake as unknown as KV);
    expect(await kv.put("k", new Uint8Array())).toBe(7);
    expect(puts).toBe(2);
    expect((kv as unknown as { bucket: string }).bucket).toBe("b");
    let watches = 0;
    fake.watch = async () => {
      watches++;
      throw named("TimeoutError", "timeout");
    };
    await expect(kv.watch()).rejects.toThrow("timeout");
    expect(watches).toBe(1);
  });
});
