// Daemon configuration: fleet.conf-style INI, FLOTILLA_* env and flags, flags > env > file >
// defaults; every bad value is an error naming the key and the value.
import { describe, expect, it } from "vitest";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig, parseCapacity, parseIni, parseMetadata } from "../../src/server/config.js";
import { FlotillaError } from "../../src/protocol/errors.js";

function file(text: string): string {
  const p = join(mkdtempSync(join(tmpdir(), "flotilla-conf-")), "flotilla.conf");
  writeFileSync(p, text);
  return p;
}

function thrown(fn: () => unknown): FlotillaError {
  try {
    fn();
  } catch (e) {
    if (e instanceof FlotillaError) return e;
    throw e;
  }
  throw new Error("did not throw");
}

describe("config", () => {
  it("has fleet-like defaults", () => {
    const { config } = loadConfig({ flags: {}, env: { HOME: "/home/u" } });
    expect(config).toMatchObject({
      natsUrl: "nats://127.0.0.1:4222",
      prefix: "flotilla",
      agentTtlMs: 10_000,
      leaseTtlMs: 5000,
      engineEnabled: true,
      replicas: 1,
      metadata: {},
      stateDir: "/home/u/.local/state/flotilla",
      taskLogMaxBytes: 64 * 2 ** 20,
    });
    expect(loadConfig({ flags: {}, env: { FLOTILLA_TASK_LOG_MAX_SIZE: "1G" } }).config.taskLogMaxBytes).toBe(2 ** 30);
    expect(loadConfig({ flags: {}, env: { FLOTILLA_STATE_DIR: "/x" } }).config.stateDir).toBe("/x");
  });

  it("reads an INI file with or without a [daemon] section, comments and quotes", () => {
    const p = file(`# fleet.conf style\nmetadata="region=us-west,az=1"\nagent_ttl=3s\n; comment\n[daemon]\nprefix = blue\ndisable_engine=true\n`);
    const { config, warnings } = loadConfig({ flags: {}, env: {}, file: p });
    expect(config.metadata).toEqual({ region: "us-west", az: "1" });
    expect(config.agentTtlMs).toBe(3000);
    expect(config.prefix).toBe("blue");
    expect(config.engineEnabled).toBe(false);
    expect(warnings).toEqual([]);
  });

  it("precedence is flags > env > file > defaults", () => {
    const p = file("prefix=fromfile\nagent_ttl=3s\nmetadata=a=file\nnats_url=nats://file:4222\n");
    const env = { FLOTILLA_PREFIX: "fromenv", FLOTILLA_AGENT_TTL: "4s", NATS_URL: "nats://env:4222" };
    const { config, sources } = loadConfig({ flags: { prefix: "fromflag" }, env, file: p });
    expect(config.prefix).toBe("fromflag");
    expect(config.agentTtlMs).toBe(4000);
    expect(config.metadata).toEqual({ a: "file" });
    expect(config.natsUrl).toBe("nats://env:4222");
    expect(sources).toMatchObject({ prefix: "flag", agent_ttl: "env", metadata: "file", nats_url: "env" });
    // FLOTILLA_NATS_URL wins over NATS_URL.
    expect(loadConfig({ flags: {}, env: { ...env, FLOTILLA_NATS_URL: "nats://f:1" } }).config.natsUrl).toBe("nats://f:1");
  });

  it("warns about unknown keys and sections instead of failing", () => {
    const { warnings } = parseIni("agent_ttl=2s\nbogus_key=1\n[other]\nx=1\n", "f.conf");
    expect(warnings[0]).toContain('f.conf:2: unknown config key "bogus_key"');
    expect(warnings[1]).toContain("unknown section [other]");
  });

  it("an unreadable config file is a clear error naming the path", () => {
    const e = thrown(() => loadConfig({ flags: {}, env: {}, file: "/nonexistent/flotilla.conf" }));
    expect(e.code).toBe("bad_config");
    expect(e.message).toContain("cannot read config file /nonexistent/flotilla.conf");
  });

  it("a line that is not key=value names the line", () => {
    const e = thrown(() => parseIni("agent_ttl=2s\njust words\n", "f.conf"));
    expect(e.message).toContain("f.conf:2");
    expect(e.line).toBe(2);
  });

  it.each([["region"], ["=x"], ["a=b,,"], ["a=b,c"], ["bad key=1"]])("refuses metadata %s naming the bad pair", (m) => {
    const e = thrown(() => parseMetadata(m));
    expect(e.code).toBe("bad_flag");
    expect(e.field).toBe("metadata");
    expect(e.message).toMatch(/is not a key=value pair/);
  });

  it("parses metadata and capacity", () => {
    expect(parseMetadata("region=us-west, az=1,empty=")).toEqual({ region: "us-west", az: "1", empty: "" });
    expect(parseCapacity("cpu=2,memory=4G")).toEqual({ cpu: 2, memory: 4 * 1024 ** 3 });
    expect(thrown(() => parseCapacity("cpu=lots")).message).toContain('cpu="lots"');
    expect(thrown(() => parseCapacity("gpu=1")).message).toContain('unknown resource "gpu"');
  });

  it("refuses bad values naming the key", () => {
    expect(thrown(() => loadConfig({ flags: { agent_ttl: "soon" }, env: {} })).field).toBe("agent_ttl");
    expect(thrown(() => loadConfig({ flags: { agent_ttl: "5ms" }, env: {} })).message).toContain("too short");
    expect(thrown(() => loadConfig({ flags: { replicas: "0" }, env: {} })).field).toBe("replicas");
    expect(thrown(() => loadConfig({ flags: { public_ip: "10.0.0" }, env: {} })).message).toContain('public_ip: "10.0.0" is not an IPv4');
    expect(thrown(() => loadConfig({ flags: { prefix: "a.b" }, env: {} })).field).toBe("prefix");
    expect(thrown(() => loadConfig({ flags: { machine_id: "has.dot" }, env: {} })).field).toBe("machine_id");
    expect(thrown(() => loadConfig({ flags: {}, env: { FLOTILLA_DISABLE_ENGINE: "maybe" } })).field).toBe("disable_engine");
    expect(thrown(() => loadConfig({ flags: { task_log_max_size: "lots" }, env: {} })).message).toContain('task_log_max_size: "lots" is not a size');
    expect(thrown(() => loadConfig({ flags: { task_log_max_size: "1K" }, env: {} })).message).toContain("too small (at least 64K");
  });

  it("the inspect stream's limits: 1 h and 64 MiB by default, set by file, env or flag, checked", () => {
    expect(loadConfig({ flags: {}, env: {} }).config).toMatchObject({ inspectMaxAgeMs: 3600_000, inspectMaxBytes: 64 * 2 ** 20 });
    expect(loadConfig({ flags: { inspect_max_age: "10m" }, env: { FLOTILLA_INSPECT_MAX_SIZE: "1G" } }).config).toMatchObject({ inspectMaxAgeMs: 600_000, inspectMaxBytes: 2 ** 30 });
    expect(thrown(() => loadConfig({ flags: { inspect_max_age: "forever" }, env: {} })).field).toBe("inspect_max_age");
    expect(thrown(() => loadConfig({ flags: { inspect_max_size: "1K" }, env: {} })).message).toContain("inspect_max_size");
  });

  it("takes client TLS files and --no-api from file, env and flags", () => {
    const f = file("tls_ca=/etc/flotilla/ca.pem\ntls_cert=/etc/flotilla/m1.pem\ntls_key=/etc/flotilla/m1-key.pem\ndisable_api=true\n");
    expect(loadConfig({ flags: {}, env: {}, file: f }).config).toMatchObject({
      tls: { ca: "/etc/flotilla/ca.pem", cert: "/etc/flotilla/m1.pem", key: "/etc/flotilla/m1-key.pem" },
      apiEnabled: false,
    });
    const { config } = loadConfig({ flags: { tls_ca: "/flag/ca.pem" }, env: { NATS_CA: "/env/ca.pem", FLOTILLA_DISABLE_API: "false" } });
    expect(config.tls).toEqual({ ca: "/flag/ca.pem", cert: undefined, key: undefined });
    expect(config.apiEnabled).toBe(true);
    expect(loadConfig({ flags: {}, env: {} }).config.tls).toBeUndefined();
    expect(loadConfig({ flags: {}, env: {} }).config.apiEnabled).toBe(true);
  });

  it("a client certificate without its key (or the reverse) names the missing one", () => {
    const a = thrown(() => loadConfig({ flags: { tls_cert: "/c.pem" }, env: {} }));
    expect(a.code).toBe("bad_config");
    expect(a.field).toBe("tls_key");
    const b = thrown(() => loadConfig({ flags: { tls_key: "/k.pem" }, env: {} }));
    expect(b.field).toBe("tls_cert");
  });

  it("auth_env takes user, password and machine ID from a flotilla auth .env file, where nothing else names them", () => {
    const f = file("NATS_USER=machine-a1\nNATS_PASSWORD=s3cret\nFLOTILLA_MACHINE_ID=a1\n");
    expect(loadConfig({ flags: {}, env: { FLOTILLA_AUTH_ENV: f } }).config).toMatchObject({ user: "machine-a1", password: "s3cret", machineId: "a1" });
    expect(loadConfig({ flags: { auth_env: f, machine_id: "b2" }, env: {} }).config).toMatchObject({ user: "machine-a1", machineId: "b2" });
    expect(loadConfig({ flags: { auth_env: f, user: "u", password: "p" }, env: {} }).config).toMatchObject({ user: "u", password: "p", machineId: "a1" });
    const missing = thrown(() => loadConfig({ flags: { auth_env: "/nowhere/machine-a1.env" }, env: {} }));
    expect(missing.field).toBe("auth_env");
    expect(missing.message).toContain("/nowhere/machine-a1.env");
    const empty = thrown(() => loadConfig({ flags: { auth_env: file("# nothing\n") }, env: {} }));
    expect(empty.message).toContain("no NATS_USER= and NATS_PASSWORD= lines");
  });
});
