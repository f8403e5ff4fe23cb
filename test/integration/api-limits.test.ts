// The two size limits of a request, each on its own: a body over MAX_REQUEST_BYTES (512 KiB) is
// refused before it is parsed even when every unit file in it is small, and a unit file over
// MAX_UNIT_FILE_BYTES (256 KiB) is refused inside a body well under the body limit. Both limits
// count bytes (UTF-8), not characters; exactly at a limit is accepted. Nothing is stored by a
// refused request.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { uniquePrefix } from "../helpers/nats-server.js";
import { useNatsServer } from "../helpers/fixture.js";
import { startApiInProcess, type InProcessApi } from "../helpers/api-in-process.js";
import { ApiService, MAX_REQUEST_BYTES } from "../../src/api/service.js";
import { Names } from "../../src/protocol/names.js";
import { silentLogger } from "../../src/log.js";
import { MAX_UNIT_FILE_BYTES } from "../../src/unit/index.js";
import { listKeys } from "../../src/nats/kv-keys.js";

const nats = useNatsServer();
let api: InProcessApi;

beforeAll(async () => {
  api = await startApiInProcess(nats.nc, uniquePrefix("lim"), nats.server.url);
});
afterAll(async () => {
  await api?.stop();
});

const enc = new TextEncoder();
const HEAD = "[Service]\nExecStart=/bin/true\n#";
/** A valid unit file of exactly `bytes` bytes (UTF-8), padded with `pad` in a comment. */
function fileOf(bytes: number, pad = "x"): string {
  const room = bytes - enc.encode(HEAD).length - 1;
  const per = enc.encode(pad).length;
  const s = HEAD + pad.repeat(Math.floor(room / per)) + "x".repeat(room % per) + "\n";
  expect(enc.encode(s).length).toBe(bytes);
  return s;
}

async function submit(body: Uint8Array): Promise<{ error?: { code: string; field?: string; message: string }; units?: unknown[] }> {
  const m = await nats.nc.request(api.names.apiSubject("submit"), body, { timeout: 10_000 });
  return JSON.parse(new TextDecoder().decode(m.data));
}
const stored = async () => (await listKeys(nats.nc, api.names.bucket("units"))).sort();

describe("request size limits", () => {
  it("a body over 512 KiB is refused by the body check even though each unit file is under 256 KiB", async () => {
    const units = Array.from({ length: 3 }, (_, i) => ({ name: `big-body-${i}.service`, contents: fileOf(200 * 1024) }));
    const body = enc.encode(JSON.stringify({ units }));
    expect(body.length).toBeGreaterThan(MAX_REQUEST_BYTES);
    const r = await submit(body);
    expect(r.error).toMatchObject({ code: "payload_too_large", field: "body" });
    expect(r.error!.message).toContain(`request body is ${body.length} bytes; the limit is ${MAX_REQUEST_BYTES} bytes`);
    expect(await stored()).toEqual([]);
  });

  it("a body of exactly 512 KiB is parsed (counted in bytes: multi-byte padding)", async () => {
    const text = JSON.stringify({ units: [{ name: "at-body-limit.service", contents: fileOf(200 * 1024, "é") }] });
    const body = enc.encode(text + " ".repeat(MAX_REQUEST_BYTES - enc.encode(text).length));
    expect(body.length).toBe(MAX_REQUEST_BYTES);
    const r = await submit(body);
    expect(r.error).toBeUndefined();
    expect(await stored()).toEqual(["at-body-limit.service"]);
    const over = await submit(enc.encode(text + " ".repeat(MAX_REQUEST_BYTES + 1 - enc.encode(text).length)));
    expect(over.error).toMatchObject({ code: "payload_too_large", field: "body" });
  });

  it("a unit file over 256 KiB is refused by the unit-file check inside a body under 512 KiB", async () => {
    const contents = fileOf(MAX_UNIT_FILE_BYTES + 1);
    const body = enc.encode(JSON.stringify({ units: [{ name: "ok-small.service", contents: fileOf(1024) }, { name: "big-file.service", contents }] }));
    expect(body.length).toBeLessThan(MAX_REQUEST_BYTES);
    const r = await submit(body);
    expect(r.error).toMatchObject({ code: "payload_too_large", field: "units[1].contents" });
    expect(r.error!.message).toContain(`${MAX_UNIT_FILE_BYTES + 1} bytes; the limit is ${MAX_UNIT_FILE_BYTES} bytes`);
    // Checked whole before anything is written: the small unit before it is not stored either.
    expect(await stored()).toEqual(["at-body-limit.service"]);
  });

  it("the unit-file limit counts bytes: 256 KiB of bytes is accepted, one more byte of a multi-byte character is not", async () => {
    const at = await submit(enc.encode(JSON.stringify({ units: [{ name: "at-file-limit.service", contents: fileOf(MAX_UNIT_FILE_BYTES, "é") }] })));
    expect(at.error).toBeUndefined();
    // Fewer characters than the limit, more bytes.
    const chars = "é".repeat(MAX_UNIT_FILE_BYTES / 2 - 10);
    const over = HEAD + chars + "\n";
    expect(over.length).toBeLessThan(MAX_UNIT_FILE_BYTES);
    expect(enc.encode(over).length).toBeGreaterThan(MAX_UNIT_FILE_BYTES);
    const r = await submit(enc.encode(JSON.stringify({ units: [{ name: "multibyte.service", contents: over }] })));
    expect(r.error).toMatchObject({ code: "payload_too_large", field: "units[0].contents" });
    expect(await stored()).toEqual(["at-body-limit.service", "at-file-limit.service"]);
  });
});

describe("a reply that cannot be sent", () => {
  it("a reply over the server's max_payload is answered with payload_too_large, not silence, and the service goes on", async () => {
    const names = new Names(uniquePrefix("big"));
    const service = new ApiService({
      nc: nats.nc,
      names,
      handlers: { huge: async () => ({ data: "x".repeat(nats.nc.info!.max_payload + 1) }), small: async () => ({ ok: 1 }) },
      log: silentLogger,
      version: "0.0.0-test",
      machineId: "m-test",
    });
    await service.start();
    try {
      const m = await nats.nc.request(names.apiSubject("huge"), "", { timeout: 5000 });
      expect(m.headers?.get("Nats-Service-Error-Code")).toBe("413");
      expect(JSON.parse(new TextDecoder().decode(m.data)).error).toMatchObject({ code: "payload_too_large", field: "reply" });
      const ok = await nats.nc.request(names.apiSubject("small"), "", { timeout: 5000 });
      expect(JSON.parse(new TextDecoder().decode(ok.data))).toEqual({ ok: 1 });
    } finally {
      await service.stop();
    }
  });
});
