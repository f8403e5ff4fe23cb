// No request may take a daemon down. Two real daemons answer the API (a queue group, so the
// requests spread over both); every verb the service registers gets several hundred bodies:
// random bytes, control characters in every string field of otherwise valid bodies, 100,000
// nested arrays, huge numbers, unicode, wrong types, bodies just under and over the size limits.
// Every request gets a reply (an error with a known code, or a success where the body is valid),
// the daemons stay up and keep answering, and the units bucket is not written.
//
// Bodies come from a seeded PRNG: a failure prints its seed; FUZZ_SEED=<n> replays it.
import { describe, expect, it } from "vitest";
import { Svcm } from "@nats-io/services";
import { uniquePrefix } from "../helpers/nats-server.js";
import { useNatsServer } from "../helpers/fixture.js";
import { startDaemon, type RunningDaemon } from "../helpers/daemon.js";
import { openKv } from "../../src/nats/buckets.js";
import { listKeys } from "../../src/nats/kv-keys.js";
import { API_VERBS, Names, SERVICE_NAME } from "../../src/protocol/names.js";
import { ErrorCodes } from "../../src/protocol/errors.js";
import { MAX_REQUEST_BYTES } from "../../src/api/service.js";
import { MAX_UNIT_FILE_BYTES } from "../../src/unit/index.js";
import { prng } from "../helpers/prng.js";

const nats = useNatsServer();

// ---- a seeded PRNG (mulberry32) ----

const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const rand = prng(SEED);
const int = (n: number): number => Math.floor(rand() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;

// ---- the bodies ----

const enc = new TextEncoder();
const FILE = "[Unit]\nDescription=fuzz\n\n[Service]\nExecStart=/bin/true\n";
/** Seeded units: each verb's base body names the one in whose state the verb writes nothing. */
const SEEDED = { inactive: "fz-inactive.service", loaded: "fz-loaded.service", launched: "fz-launched.service" };

type Expect = "error" | "ok" | "any";
interface Case {
  kind: string;
  body: Uint8Array;
  expect: Expect;
  /** When an error is expected, the codes allowed (default: any known code but internal). */
  codes?: string[];
}

/**
 * A valid body per verb, chosen to write nothing: a submit of an existing unit with other
 * contents keeps the cluster's file (a warning); load of a loaded unit, start of a launched one,
 * stop of a loaded one, unload of an inactive one are no-ops; destroy and restart name units
 * that make them fail (unknown, inactive). `ok` says whether the base itself succeeds.
 */
function baseBody(verb: string, machineId: string): { body: Record<string, unknown>; ok: boolean } {
  switch (verb) {
    case "submit":
      return { body: { units: [{ name: SEEDED.inactive, contents: FILE + "# other\n" }] }, ok: true };
    case "load":
      return { body: { units: [{ name: SEEDED.loaded, contents: FILE + "# other\n" }] }, ok: true };
    case "start":
      return { body: { units: [{ name: SEEDED.launched, contents: FILE + "# other\n" }] }, ok: true };
    case "stop":
      return { body: { units: [{ name: SEEDED.loaded }] }, ok: true };
    case "unload":
      return { body: { units: [{ name: SEEDED.inactive }] }, ok: true };
    case "destroy":
      return { body: { units: [{ name: "fz-absent.service" }] }, ok: false };
    case "restart":
      return { body: { units: [{ name: SEEDED.inactive }] }, ok: false };
    case "status":
    case "cat":
      return { body: { name: SEEDED.loaded }, ok: true };
    case "journal":
      return { body: { name: SEEDED.loaded, lines: 5 }, ok: true };
    case "statecharts":
      return { body: { actor: "task" }, ok: true };
    case "machine-availability":
      // A machine that does not exist: a real one would change its availability.
      return { body: { machine: machineId.slice(0, 4) + "-absent", availability: "active" }, ok: false };
    default:
      return { body: {}, ok: true };
  }
}

/** Verbs whose handler ignores the body (every body answers with a listing). */
const BODY_IGNORED = new Set(["list-machines"]);

const CONTROL = ["\r", "\n", "\0", "\r\n", "\u0007", "\u001b[31m", "\u007f", "\u2028", "\u0085"];
const UNICODE = ["é", "日本", "🚀", "\u200b", "\ufeff", "\ud800", "\udfff", "\u202e", "Ω".repeat(300)];
const HUGE = ["1e400", "-1e400", "1e308", "123456789012345678901234567890", "-0", "4.9e-324", "9007199254740993", "1.5"];

/** Every path to a string value in a (shallow, JSON) body. */
function stringPaths(v: unknown, path: (string | number)[] = []): (string | number)[][] {
  if (typeof v === "string") return [path];
  if (Array.isArray(v)) return v.flatMap((x, i) => stringPaths(x, [...path, i]));
  if (v && typeof v === "object") return Object.entries(v).flatMap(([k, x]) => stringPaths(x, [...path, k]));
  return [];
}
function allPaths(v: unknown, path: (string | number)[] = []): (string | number)[][] {
  const here = path.length ? [path] : [];
  if (Array.isArray(v)) return [...here, ...v.flatMap((x, i) => allPaths(x, [...path, i]))];
  if (v && typeof v === "object") return [...here, ...Object.entries(v).flatMap(([k, x]) => allPaths(x, [...path, k]))];
  return here;
}
function getAt(v: unknown, path: (string | number)[]): unknown {
  return path.reduce<unknown>((o, p) => (o as Record<string | number, unknown>)[p], v);
}
function setAt<T>(v: T, path: (string | number)[], x: unknown): T {
  const copy = structuredClone(v);
  let o = copy as Record<string | number, unknown>;
  for (const p of path.slice(0, -1)) o = o[p] as Record<string | number, unknown>;
  o[path[path.length - 1]!] = x;
  return copy;
}
const bytes = (s: string): Uint8Array => enc.encode(s);
const json = (v: unknown): Uint8Array => bytes(JSON.stringify(v));

/** Raw JSON text with `raw` (a number literal, a nesting) where the value at path was. */
function withRaw(base: Record<string, unknown>, path: (string | number)[], raw: string): Uint8Array {
  const marker = "\u0001RAW\u0001";
  return bytes(JSON.stringify(setAt(base, path, marker)).replace(JSON.stringify(marker), raw));
}

function nested(depth: number, open = "[", close = "]"): string {
  return open.repeat(depth) + close.repeat(depth);
}

/** A value of another JSON type than v (never a boolean where a boolean is expected: replace:true would write). */
function wrongType(v: unknown): unknown {
  const choices: unknown[] = [null, 0, -1, 3.5, "", "x", [], [v], {}, { v }];
  if (typeof v !== "boolean") choices.push(true, false);
  const c = choices.filter((x) => typeof x !== typeof v || (Array.isArray(x) !== Array.isArray(v)) || (x === null) !== (v === null));
  return pick(c);
}

function casesFor(verb: string, machineId: string, n: number): Case[] {
  const { body: base, ok: baseOk } = baseBody(verb, machineId);
  const ignored = BODY_IGNORED.has(verb);
  // A verb that ignores its body still refuses what is not JSON or too big (the service checks that first).
  const err = (kind: string, body: Uint8Array, codes?: string[]): Case =>
    !ignored
      ? { kind, body, expect: "error", codes }
      : codes?.every((c) => c === "bad_json" || c === "payload_too_large")
        ? { kind, body, expect: "error", codes }
        : { kind, body, expect: "any" };
  const out: Case[] = [];
  const strings = stringPaths(base);
  const paths = allPaths(base);
  const isUnitVerb = "units" in base;

  // Fixed cases, once per verb.
  out.push(err("bug-repro \\xff\\n{", new Uint8Array([0xff, 0x0a, 0x7b]), ["bad_json"]));
  out.push({ kind: "base", body: json(base), expect: ignored ? "ok" : baseOk ? "ok" : "error" });
  out.push(err("deep arrays (top)", bytes(nested(100_000)), ["bad_request"]));
  out.push(err("deep objects (top)", bytes('{"a":'.repeat(50_000) + "1" + "}".repeat(50_000)), ["bad_request"]));
  out.push(err("deep unterminated", bytes("[".repeat(400_000)), ["bad_json"]));
  for (const p of paths) out.push(err(`deep arrays at ${p.join(".")}`, withRaw(base, p, nested(100_000)), ["bad_request"]));
  for (const p of paths) out.push(err(`deep objects at ${p.join(".")}`, withRaw(base, p, '{"a":'.repeat(50_000) + "1" + "}".repeat(50_000)), ["bad_request"]));
  out.push(err("over the body limit", bytes(" ".repeat(MAX_REQUEST_BYTES - 1) + "{}"), ["payload_too_large"]));
  out.push(err("over the body limit, valid", bytes(JSON.stringify(base) + " ".repeat(MAX_REQUEST_BYTES)), ["payload_too_large"]));
  {
    const text = JSON.stringify(base);
    const under = bytes(text + " ".repeat(MAX_REQUEST_BYTES - text.length));
    out.push({ kind: "at the body limit, valid", body: under, expect: ignored ? "ok" : baseOk ? "ok" : "error" });
  }
  if (isUnitVerb && strings.some((p) => p[p.length - 1] === "contents")) {
    const pad = (size: number) => FILE + "#" + "x".repeat(size - FILE.length - 2) + "\n";
    const at = setAt(base, ["units", 0, "contents"], pad(MAX_UNIT_FILE_BYTES));
    const over = setAt(base, ["units", 0, "contents"], pad(MAX_UNIT_FILE_BYTES + 1));
    out.push({ kind: "unit file at the limit", body: json(at), expect: "ok" });
    out.push(err("unit file over the limit", json(over), ["payload_too_large"]));
    const many = { units: Array.from({ length: 3 }, () => ({ name: SEEDED.inactive, contents: pad(200 * 1024) })) };
    out.push(err("3 unit files of 200 KiB", json(many), ["payload_too_large"]));
  }

  // Random cases.
  while (out.length < n) {
    const r = int(9);
    if (r === 0) {
      const len = int(300);
      out.push({ kind: "random bytes", body: Uint8Array.from({ length: len }, () => int(256)), expect: "any" });
    } else if (r === 1 && strings.length) {
      // A control character somewhere in one string field. In a unit file CR/LF are legal, so that may pass.
      const p = pick(strings);
      const s = getAt(base, p) as string;
      const i = int(s.length + 1);
      const c = pick(CONTROL);
      const field = String(p[p.length - 1]);
      const body = json(setAt(base, p, s.slice(0, i) + c + s.slice(i)));
      const legalInFile = field === "contents" && /^(\r|\n|\r\n|\u2028|\u0085)$/.test(c);
      out.push(legalInFile ? { kind: "control char in contents", body, expect: "any" } : err(`control char in ${field}`, body));
    } else if (r === 2 && strings.length) {
      const p = pick(strings);
      const s = getAt(base, p) as string;
      const field = String(p[p.length - 1]);
      const u = pick(UNICODE);
      const body = json(setAt(base, p, pick([u + s, s + u, u])));
      out.push(field === "contents" ? { kind: "unicode in contents", body, expect: "any" } : err(`unicode in ${field}`, body));
    } else if (r === 3 && paths.length) {
      const p = pick(paths);
      out.push(err(`huge number at ${p.join(".")}`, withRaw(base, p, pick(HUGE))));
    } else if (r === 4 && paths.length) {
      const p = pick(paths);
      out.push(err(`wrong type at ${p.join(".")}`, json(setAt(base, p, wrongType(getAt(base, p))))));
    } else if (r === 5) {
      // An unknown field, its name holding odd characters.
      const k = pick(["x", "\n", "\0", "🚀", "__proto__", "constructor", "k".repeat(5000)]);
      out.push(err("unknown field", bytes(JSON.stringify(base).replace(/^\{/, `{${JSON.stringify(k)}:1,`))));
    } else if (r === 6) {
      // Truncated JSON: cut a valid body anywhere.
      const t = JSON.stringify(base);
      const cut = 1 + int(Math.max(1, t.length - 1));
      out.push(err("truncated", bytes(t.slice(0, cut))));
    } else if (r === 7) {
      const v = pick<unknown>([null, 0, "x", [], [base], true, 1e308]);
      out.push(err("not an object", json(v), ["bad_request"]));
    } else if (isUnitVerb) {
      // Long strings in the name and many units.
      const long = pick([300, 5000, 200_000]);
      const name = pick(["a", "\n", "é"]).repeat(long);
      out.push(err("long name", json(setAt(base, ["units", 0, "name"], name)), ["invalid_unit_name"]));
    } else if (strings.length) {
      const p = pick(strings);
      out.push(err("long string", json(setAt(base, p, "a".repeat(pick([300, 5000, 200_000]))))));
    }
  }
  return out;
}

// ---- sending ----

interface Outcome {
  ok: boolean;
  code?: string;
  header?: string;
  timedOut?: boolean;
  detail?: string;
}

async function send(subject: string, body: Uint8Array): Promise<Outcome> {
  try {
    const m = await nats.nc.request(subject, body, { timeout: 15_000 });
    const text = new TextDecoder().decode(m.data);
    const code = m.headers?.get("Nats-Service-Error-Code");
    const header = m.headers?.get("Nats-Service-Error");
    if (code) {
      const parsed = JSON.parse(text) as { error?: { code?: string; message?: string } };
      return { ok: false, code: parsed.error?.code ?? `(no code; header ${code})`, header, detail: parsed.error?.message };
    }
    JSON.parse(text);
    return { ok: true };
  } catch (e) {
    return { ok: false, timedOut: true, detail: (e as Error).message };
  }
}

/** Runs fn over items with `width` in flight. */
async function pipelined<T, R>(items: T[], width: number, fn: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      for (let i = next++; i < items.length; i = next++) out[i] = await fn(items[i]!);
    }),
  );
  return out;
}

const alive = (pid: number | undefined): boolean => {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe("API fuzz against real daemons", () => {
  it("every request gets a reply with a code or a valid success; the daemons stay up; nothing is written", async () => {
    console.log(`api-fuzz seed ${SEED} (replay: FUZZ_SEED=${SEED})`);
    const prefix = uniquePrefix("fuzz");
    const names = new Names(prefix);
    const daemons: RunningDaemon[] = [];
    for (let i = 0; i < 2; i++) daemons.push(await startDaemon({ server: nats.server, prefix, extraArgs: ["--no-engine"] }));
    const nc = nats.nc;

    // The verbs, as the running service registers them.
    const infos = await new Svcm(nc).client().info(SERVICE_NAME);
    const verbs = new Set<string>();
    for await (const info of infos) {
      if (info.metadata?.prefix !== prefix) continue;
      for (const e of info.endpoints) verbs.add(e.subject.slice(names.apiSubjectRoot().length + 1));
    }
    // Every verb of the protocol is registered (and any newer one is fuzzed too, with {} as its base).
    expect([...verbs].sort()).toEqual(expect.arrayContaining([...API_VERBS]));

    // The seeded units, one per desired state (no engine runs, so none is scheduled).
    const seed = async (verb: string, name: string) => {
      const r = await send(names.apiSubject(verb), json({ units: [{ name, contents: FILE }] }));
      expect(r, `${verb} ${name}`).toMatchObject({ ok: true });
    };
    await seed("submit", SEEDED.inactive);
    await seed("load", SEEDED.loaded);
    await seed("start", SEEDED.launched);

    const units = await openKv(nc, names.bucket("units"));
    const snapshot = async () => {
      const ks = (await listKeys(nc, names.bucket("units"))).sort();
      const revs = await Promise.all(ks.map(async (k) => `${k}@${(await units.get(k))?.revision}`));
      return `${revs.join(",")} last=${(await units.status()).streamInfo.state.last_seq}`;
    };
    const before = await snapshot();

    const PER_VERB = Number(process.env.FUZZ_PER_VERB ?? 300);
    const all = [...verbs].sort().flatMap((verb) => casesFor(verb, daemons[0]!.machineId, PER_VERB).map((c) => ({ verb, ...c })));
    const t0 = Date.now();
    const results = await pipelined(all, 48, async (c) => ({ c, r: await send(names.apiSubject(c.verb), c.body) }));
    const elapsed = Date.now() - t0;

    // Counts per verb.
    const table: Record<string, { sent: number; ok: number; errors: Record<string, number> }> = {};
    const failures: string[] = [];
    const known = new Set<string>(ErrorCodes);
    for (const { c, r } of results) {
      const row = (table[c.verb] ??= { sent: 0, ok: 0, errors: {} });
      row.sent++;
      if (r.ok) row.ok++;
      else row.errors[r.code ?? "timeout"] = (row.errors[r.code ?? "timeout"] ?? 0) + 1;
      const what = `${c.verb} [${c.kind}] (${c.body.length} bytes)`;
      if (r.timedOut) failures.push(`${what}: no reply: ${r.detail}`);
      else if (!r.ok) {
        if (!known.has(r.code!) || r.code === "internal") failures.push(`${what}: code ${r.code}: ${r.detail}`);
        if (c.expect === "ok") failures.push(`${what}: expected success, got ${r.code}: ${r.detail}`);
        if (c.codes && !c.codes.includes(r.code!)) failures.push(`${what}: expected ${c.codes.join("|")}, got ${r.code}: ${r.detail}`);
        if (!r.header || /[\u0000-\u001f\u007f]/.test(r.header) || r.header.length > 200) {
          failures.push(`${what}: bad error header ${JSON.stringify(r.header?.slice(0, 300))}`);
        }
        if (!r.detail || r.detail.length > 4096) failures.push(`${what}: error message of ${r.detail?.length} characters`);
      } else if (c.expect === "error") failures.push(`${what}: expected an error, got a success`);
    }
    console.log(`api-fuzz seed ${SEED}: ${results.length} requests in ${elapsed} ms`);
    for (const [verb, row] of Object.entries(table)) {
      const errs = Object.entries(row.errors).map(([k, v]) => `${k}=${v}`).join(" ");
      console.log(`  ${verb.padEnd(22)} sent ${String(row.sent).padStart(4)}  ok ${String(row.ok).padStart(4)}  errors: ${errs}`);
    }
    expect(failures.slice(0, 20), `seed ${SEED}: ${failures.length} failures`).toEqual([]);

    // Still up, still answering, nothing written.
    for (const d of daemons) expect(alive(d.child.pid) && d.child.exitCode === null, `daemon ${d.machineId}`).toBe(true);
    for (let i = 0; i < 4; i++) {
      const m = await nc.request(names.apiSubject("list-machines"), "", { timeout: 5000 });
      const ids = (JSON.parse(new TextDecoder().decode(m.data)) as { id: string }[]).map((x) => x.id).sort();
      expect(ids).toEqual(daemons.map((d) => d.machineId).sort());
    }
    expect(await snapshot()).toBe(before);
    for (const d of daemons) expect(d.output()).not.toMatch(/unhandled|uncaught|InvalidArgumentError/i);

    // machine-availability forwards to a daemon's control subject, which anyone on the bus can
    // reach directly: bad bodies there get an error reply too, and the daemon stays up.
    const control: { body: Uint8Array; kind: string }[] = [];
    for (let i = 0; i < 100; i++) {
      const bad = pick<unknown>([null, 5, "off", "\n", "x".repeat(5000), [], { a: 1 }, "ACTIVE"]);
      control.push(
        pick([
          { kind: "random bytes", body: Uint8Array.from({ length: int(100) }, () => int(256)) },
          { kind: "bad availability", body: json({ availability: bad }) },
          { kind: "deep availability", body: bytes(`{"availability":${nested(100_000)}}`) },
          { kind: "not an object", body: json(bad) },
        ]),
      );
    }
    const controlResults = await pipelined(
      control.flatMap((c) => daemons.map((d) => ({ ...c, subject: names.machineControlSubject(d.machineId, "availability") }))),
      32,
      async (c) => {
        try {
          const m = await nc.request(c.subject, c.body, { timeout: 5000 });
          const v = JSON.parse(new TextDecoder().decode(m.data)) as { error?: { code?: string } };
          return v.error?.code && known.has(v.error.code) ? "" : `control [${c.kind}]: ${JSON.stringify(v).slice(0, 200)}`;
        } catch (e) {
          return `control [${c.kind}]: no reply: ${(e as Error).message}`;
        }
      },
    );
    expect(controlResults.filter(Boolean).slice(0, 10), `seed ${SEED}`).toEqual([]);
    for (const d of daemons) expect(alive(d.child.pid) && d.child.exitCode === null, `daemon ${d.machineId} after control requests`).toBe(true);

    // The one success machine-availability can give without changing a machine: "active" on an active one.
    const avail = await send(names.apiSubject("machine-availability"), json({ machine: daemons[1]!.machineId, availability: "active" }));
    expect(avail).toMatchObject({ ok: true });
    for (const d of daemons) expect(d.child.exitCode).toBeNull();
  });
});
