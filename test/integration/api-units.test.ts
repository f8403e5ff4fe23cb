// The unit verbs of the API driven as the NATS CLI would: raw JSON bytes on
// <prefix>.api.<verb>, replies read as bytes. Every verb, every error code, and for every bad
// input: a clear error, the units bucket unchanged, the service still answering.
import { beforeEach, afterEach, describe, expect, it } from "vitest";
import { uniquePrefix } from "../helpers/nats-server.js";
import { useNatsServer } from "../helpers/fixture.js";
import { check } from "../helpers/check.js";
import { putUnitState, startApiInProcess, type InProcessApi } from "../helpers/api-in-process.js";
import { encode } from "../../src/protocol/codec.js";
import { keys } from "../../src/protocol/names.js";
import { listKeys } from "../../src/nats/kv-keys.js";
import type { TaskState, UnitStateRecord } from "../../src/protocol/messages.js";

const nats = useNatsServer();
let api: InProcessApi;

beforeEach(async () => {
  api = await startApiInProcess(nats.nc, uniquePrefix("api"), nats.server.url);
});
afterEach(async () => {
  await api?.stop();
});

interface Reply {
  status?: string;
  body: any;
}

async function req(verb: string, raw: string | Uint8Array): Promise<Reply> {
  const m = await nats.nc.request(api.names.apiSubject(verb), raw, { timeout: 5000 });
  const text = new TextDecoder().decode(m.data);
  return { status: m.headers?.get("Nats-Service-Error-Code") || undefined, body: text ? JSON.parse(text) : undefined };
}

const HELLO = "[Unit]\nDescription=Hello\n\n[Service]\nExecStart=/bin/sleep 600\n";
const json = (v: unknown): string => JSON.stringify(v);

/** Every key of the units bucket with its revision: equal snapshots mean nothing was written. */
async function unitsSnapshot(): Promise<string> {
  // listKeys, not kv.keys(): one STREAM.INFO, no consumer that can wait forever.
  const out = (await listKeys(nats.nc, api.names.bucket("units"))).sort();
  const revs = await Promise.all(out.map(async (k) => `${k}@${(await api.buckets.units.get(k))?.revision}`));
  const st = await api.buckets.units.status();
  return `${revs.join(",")} last=${st.streamInfo.state.last_seq}`;
}

const putState = (unit: string, machineId: string, taskState: TaskState, extra: Partial<UnitStateRecord> = {}) =>
  putUnitState(api.buckets, unit, machineId, taskState, extra);

describe("unit verbs over raw NATS requests", () => {
  it("submit, load, start, stop, unload, destroy, restart each move the desired state", async () => {
    const sub = await req("submit", json({ units: [{ name: "hello.service", contents: HELLO }] }));
    expect(sub.status).toBeUndefined();
    expect(sub.body.units[0]).toMatchObject({ name: "hello.service", changed: true, record: { desiredState: "inactive", version: 1 } });
    expect(sub.body.units[0].record.hash).toMatch(/^[0-9a-f]{40}$/);
    expect(sub.body.warnings).toEqual([]);

    const steps: [string, string, number][] = [
      ["load", "loaded", 2],
      ["start", "launched", 3],
      ["stop", "loaded", 4],
      ["start", "launched", 5],
      ["restart", "launched", 7],
      ["unload", "inactive", 8],
    ];
    for (const [verb, state, version] of steps) {
      const r = await req(verb, json({ units: [{ name: "hello.service" }] }));
      expect(r.status, `${verb}: ${json(r.body)}`).toBeUndefined();
      expect(r.body.units[0].record).toMatchObject({ name: "hello.service", desiredState: state, version });
    }
    // A verb that asks for the state the unit already has changes nothing.
    const again = await req("unload", json({ units: [{ name: "hello" }] }));
    expect(again.body.units[0]).toMatchObject({ changed: false, record: { version: 8 } });

    const d = await req("destroy", json({ units: [{ name: "hello.service" }] }));
    expect(d.body.units[0]).toEqual({ name: "hello.service", changed: true, record: null });
    expect(await api.buckets.units.get(keys.unit("hello.service")).then((e) => e?.operation)).toBe("DEL");
    const lf = await req("list-unit-files", "");
    expect(lf.body).toEqual([]);
  });

  it("restart of a running unit writes stop, waits for the task to stop, then writes start", async () => {
    await req("start", json({ units: [{ name: "r.service", contents: HELLO }] }));
    await putState("r.service", "m-test", "running");
    let replied = false;
    const pending = req("restart", json({ units: [{ name: "r" }] })).then((r) => {
      replied = true;
      return r;
    });
    await check(async () => (await req("status", json({ name: "r" }))).body.unit.desiredState === "loaded", 5000, "the stop half");
    expect(replied).toBe(false);
    await putState("r.service", "m-test", "shutdown");
    const r = await pending;
    expect(r.body.units[0]).toMatchObject({ name: "r.service", changed: true, record: { desiredState: "launched", version: 3 } });
  });

  it("start creates from contents, a name without suffix gets .service, cat returns exactly the file", async () => {
    const odd = "# no trailing newline, tabs\tand  spaces kept\n[Service]\nExecStart=/bin/echo 'héllo'   \n\n\n[X-Fleet]\nGlobal=false";
    const r = await req("start", json({ units: [{ name: "web", contents: odd }] }));
    expect(r.body.units[0].record).toMatchObject({ name: "web.service", desiredState: "launched" });
    const cat = await req("cat", json({ name: "web" }));
    expect(cat.body).toEqual({ name: "web.service", contents: odd });
  });

  it("instantiates foo@1.service from a submitted template and refuses to start the template", async () => {
    await req("submit", json({ units: [{ name: "foo@.service", contents: "[Service]\nExecStart=/bin/echo %i\n" }] }));
    const r = await req("start", json({ units: [{ name: "foo@1.service" }, { name: "foo@2" }] }));
    expect(r.status).toBeUndefined();
    expect(r.body.units.map((u: any) => [u.name, u.record.desiredState])).toEqual([
      ["foo@1.service", "launched"],
      ["foo@2.service", "launched"],
    ]);
    expect((await req("cat", json({ name: "foo@1.service" }))).body.contents).toBe("[Service]\nExecStart=/bin/echo %i\n");
    const t = await req("start", json({ units: [{ name: "foo@.service" }] }));
    expect(t.status).toBe("409");
    expect(t.body.error).toMatchObject({ code: "illegal_state_change", field: "units[0].name" });
    expect(t.body.error.message).toMatch(/template/);
  });

  it("submit without --replace keeps the cluster's file and warns; --replace replaces an inactive unit", async () => {
    await req("submit", json({ units: [{ name: "a.service", contents: HELLO }] }));
    const other = HELLO.replace("600", "700");
    const w = await req("submit", json({ units: [{ name: "a.service", contents: other }] }));
    expect(w.body.units[0].changed).toBe(false);
    expect(w.body.warnings[0]).toMatch(/a\.service.*differs.*--replace/);
    expect((await req("cat", json({ name: "a.service" }))).body.contents).toBe(HELLO);
    const rep = await req("submit", json({ units: [{ name: "a.service", contents: other }], replace: true }));
    expect(rep.body.units[0]).toMatchObject({ changed: true, record: { version: 2, desiredState: "inactive" } });
    expect((await req("cat", json({ name: "a.service" }))).body.contents).toBe(other);
  });

  it("list-unit-files shows hash, states, target, unplaced reason, global and description; list-units and status read states", async () => {
    await req("start", json({ units: [{ name: "b.service", contents: HELLO }, { name: "c.service", contents: HELLO }] }));
    await req("load", json({ units: [{ name: "g.service", contents: "[Service]\nExecStart=/bin/true\n[X-Fleet]\nGlobal=true\n" }] }));
    await req("submit", json({ units: [{ name: "a.service", contents: HELLO }] }));
    const sched = {
      unit: "b.service",
      machineId: "m-test",
      hash: "x",
      desiredState: "launched",
      contents: HELLO,
      epoch: 1,
      scheduledAt: Date.now(),
    };
    await api.buckets.schedule.put(keys.schedule("m-test", "b.service"), encode(sched));
    await api.buckets.schedule.put(keys.unplaced("c.service"), encode({ unit: "c.service", reason: "2 machines lack region=eu", epoch: 1, at: Date.now() }));
    await api.buckets.schedule.put(keys.schedule("m-test", "junk.service"), new Uint8Array([0xc1, 0xff, 0x00]));
    await putState("b.service", "m-test", "running", { pid: 4242 });
    await putState("g.service", "m-test", "ready");
    await putState("g.service", "m-other", "failed", { exitCode: 3, error: "ExecStart exited with 3" });
    await api.buckets.states.put(keys.state("b.service", "m-bad"), new TextEncoder().encode("not msgpack at all"));

    const lf = await req("list-unit-files", "");
    expect(lf.status).toBeUndefined();
    expect(lf.body.map((r: any) => r.unit)).toEqual(["a.service", "b.service", "c.service", "g.service"]);
    const [a, b, c, g] = lf.body;
    expect(a).toMatchObject({ desiredState: "inactive", currentState: "inactive", target: null, unplaced: null, description: "Hello" });
    expect(b).toMatchObject({ desiredState: "launched", currentState: "launched", target: "m-test", targetIp: "10.0.0.1", global: false });
    expect(c).toMatchObject({ desiredState: "launched", target: null, unplaced: "2 machines lack region=eu" });
    expect(g).toMatchObject({ desiredState: "loaded", target: "global", global: true, description: "" });
    expect(a.hash).toBe(b.hash);

    const lu = await req("list-units", "{}");
    expect(lu.body.map((r: any) => [r.unit, r.machine, r.active, r.sub])).toEqual([
      ["b.service", "m-test", "active", "running"],
      ["g.service", "m-other", "failed", "failed"],
      ["g.service", "m-test", "inactive", "dead"],
    ]);
    expect(lu.body[0].pid).toBe(4242);

    const st = await req("status", json({ name: "g" }));
    expect(st.body.unit).toMatchObject({ name: "g.service", desiredState: "loaded" });
    expect(st.body.global).toBe(true);
    expect(st.body.states.map((s: any) => s.machineId)).toEqual(["m-other", "m-test"]);
    expect(st.body.lastError).toBe("m-other: failed, exit code 3, ExecStart exited with 3");
    const sc = await req("status", json({ name: "c.service" }));
    expect(sc.body.unplaced).toBe("2 machines lack region=eu");
    expect(sc.body.states).toEqual([]);
  });
});

describe("errors: a stable code, the field, nothing stored changed, the service keeps answering", () => {
  const cases: [what: string, verb: string, body: () => string | Uint8Array, code: string, status: string, field?: RegExp][] = [
    ["bad JSON", "submit", () => '{"units": [', "bad_json", "400"],
    ["binary garbage body", "start", () => new Uint8Array([0xff, 0xfe, 0x00, 0x01, 0x80]), "bad_json", "400"],
    ["a JSON array", "submit", () => "[1,2]", "bad_request", "400", /^body$/],
    ["a JSON string", "start", () => '"hello.service"', "bad_request", "400", /^body$/],
    ["an unknown top-level field", "start", () => json({ units: [{ name: "x" }], force: true }), "bad_request", "400", /^force$/],
    ["an unknown unit field", "submit", () => json({ units: [{ name: "x", content: HELLO }] }), "bad_request", "400", /^units\[0\]\.content$/],
    ["a name of the wrong type", "load", () => json({ units: [{ name: 5 }] }), "bad_request", "400", /^units\[0\]\.name$/],
    ["an empty units list", "stop", () => json({ units: [] }), "bad_request", "400", /^units$/],
    ["replace on stop", "stop", () => json({ units: [{ name: "x" }], replace: true }), "bad_request", "400", /^replace$/],
    ["contents on destroy", "destroy", () => json({ units: [{ name: "x", contents: HELLO }] }), "bad_request", "400", /^units\[0\]\.contents$/],
    ["list with a body", "list-unit-files", () => json({ all: true }), "bad_request", "400", /^all$/],
    ["cat without a name", "cat", () => "{}", "bad_request", "400", /^name$/],
    ["a name with /", "submit", () => json({ units: [{ name: "etc/x.service", contents: HELLO }] }), "invalid_unit_name", "400", /^units\[0\]\.name$/],
    ["a name with spaces", "start", () => json({ units: [{ name: "my unit.service", contents: HELLO }] }), "invalid_unit_name", "400", /^units\[0\]\.name$/],
    ["start of a unit that does not exist", "start", () => json({ units: [{ name: "nope.service" }] }), "unknown_unit", "404", /^units\[0\]\.name$/],
    ["stop of a unit that does not exist", "stop", () => json({ units: [{ name: "nope" }] }), "unknown_unit", "404"],
    ["cat of a unit that does not exist", "cat", () => json({ name: "nope" }), "unknown_unit", "404", /^name$/],
    ["an instance without template", "start", () => json({ units: [{ name: "bar@1.service" }] }), "unknown_unit", "404"],
    ["binary garbage as unit file", "submit", () => json({ units: [{ name: "bin.service", contents: "\u0000\u0001ELF\u0002\ufffd" }] }), "invalid_unit_file", "400", /^units\[0\]\.contents$/],
    ["a unit file of 1 MiB", "submit", () => json({ units: [{ name: "big.service", contents: "#".repeat(1024 * 1024) }] }), "payload_too_large", "413"],
    ["a unit file of 300 KiB", "submit", () => json({ units: [{ name: "big.service", contents: `[Service]\nExecStart=/bin/true\n#${"x".repeat(300 * 1024)}\n` }] }), "payload_too_large", "413", /^units\[0\]\.contents$/],
  ];

  it.each(cases)("%s", async (_what, verb, body, code, status, field) => {
    await req("submit", json({ units: [{ name: "keep.service", contents: HELLO }] }));
    await req("start", json({ units: [{ name: "x.service", contents: HELLO }] }));
    const before = await unitsSnapshot();
    const r = await req(verb, body());
    expect(r.status).toBe(status);
    expect(r.body.error.code).toBe(code);
    expect(r.body.error.message.length).toBeGreaterThan(10);
    if (field) expect(r.body.error.field).toMatch(field);
    expect(await unitsSnapshot()).toBe(before);
    const ok = await req("list-unit-files", "");
    expect(ok.body.map((u: any) => u.unit)).toEqual(["keep.service", "x.service"]);
  });

  it("errors name the field and the value received, shortened, in one clean header line", async () => {
    const cases: [verb: string, body: unknown, code: string, field: string, message: RegExp][] = [
      ["load", { units: [{ name: 5 }] }, "bad_request", "units[0].name", /field units\[0\]\.name: expected string, received number \(got 5\)/],
      ["cat", { name: ["x"] }, "bad_request", "name", /\(got an array of 1\)/],
      ["submit", { units: [{ name: "x", contents: HELLO }], replace: "yes" }, "bad_request", "replace", /\(got "yes"\)/],
      ["start", { units: [{ name: "é".repeat(100_000) }] }, "invalid_unit_name", "units[0].name", /invalid unit name "éé+…" \(100000 characters\): longer than 255/],
      ["status", { name: "a\nb\r\u0000" }, "invalid_unit_name", "name", /invalid unit name "a\\nb\\r\\u0000"/],
      ["stop", { units: [{ name: "x" }], ["k".repeat(5000)]: 1 }, "bad_request", `${"k".repeat(39)}…`, /unknown field/],
    ];
    for (const [verb, body, code, field, message] of cases) {
      const m = await nats.nc.request(api.names.apiSubject(verb), json(body), { timeout: 5000 });
      const err = JSON.parse(new TextDecoder().decode(m.data)).error;
      expect(err, verb).toMatchObject({ code, field });
      expect(err.message).toMatch(message);
      expect(err.message.length).toBeLessThan(300);
      const header = m.headers?.get("Nats-Service-Error") ?? "";
      expect(header.startsWith(`${code}: `)).toBe(true);
      expect(header).not.toMatch(/[\u0000-\u001f]/);
      expect(header.length).toBeLessThanOrEqual(200);
    }
  });

  it("an invalid unit file names its line, and a batch with one bad unit writes none", async () => {
    const before = await unitsSnapshot();
    const bad = "[Service]\nExecStart=/bin/true\n[X-Fleet]\nMachineID=abc\nGlobal=true\n";
    const r = await req("submit", json({ units: [{ name: "good.service", contents: HELLO }, { name: "bad.service", contents: bad }] }));
    expect(r.status).toBe("400");
    expect(r.body.error).toMatchObject({ code: "invalid_unit_file", field: "units[1].contents" });
    expect(r.body.error.line).toBeGreaterThan(0);
    expect(r.body.error.message).toMatch(/bad\.service/);
    const noSection = await req("submit", json({ units: [{ name: "n.service", contents: "[Service]\nExecStart=/bin/true\nthis is not a key\n" }] }));
    expect(noSection.body.error).toMatchObject({ code: "invalid_unit_file", line: 3 });
    expect(await unitsSnapshot()).toBe(before);
  });

  it("illegal state changes: submit --replace over a launched unit, load --replace over launched, stop of an inactive unit, restart of an inactive unit", async () => {
    await req("start", json({ units: [{ name: "run.service", contents: HELLO }] }));
    await req("submit", json({ units: [{ name: "idle.service", contents: HELLO }] }));
    const before = await unitsSnapshot();
    const other = HELLO.replace("600", "601");
    for (const [verb, body] of [
      ["submit", { units: [{ name: "run.service", contents: other }], replace: true }],
      ["load", { units: [{ name: "run.service", contents: other }], replace: true }],
      ["stop", { units: [{ name: "idle.service" }] }],
      ["restart", { units: [{ name: "idle.service" }] }],
    ] as const) {
      const r = await req(verb, json(body));
      expect(r.status, verb).toBe("409");
      expect(r.body.error.code).toBe("illegal_state_change");
      expect(r.body.error.message).toMatch(/run\.service|idle\.service/);
    }
    expect(await unitsSnapshot()).toBe(before);
    // start --replace is allowed from any state
    const ok = await req("start", json({ units: [{ name: "run.service", contents: other }], replace: true }));
    expect(ok.body.units[0]).toMatchObject({ changed: true, record: { desiredState: "launched", version: 2 } });
  });
});
