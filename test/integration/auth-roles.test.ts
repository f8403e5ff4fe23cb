// Least privilege on the bus, against a real nats-server running the users of `flotilla auth
// init`: a cluster of an engine daemon and a machine-only daemon does the main paths (start,
// heartbeat, engine lead and schedule, a task on the machine-only daemon, journal, every API
// verb, an availability change, inspection) without one refusal in the server's log, while
// every forbidden write is refused by the server.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { headers, type NatsConnection } from "@nats-io/nats-core";
import { Kvm } from "@nats-io/kv";
import { AuthNatsServer } from "../helpers/auth-nats-server.js";
import { uniquePrefix } from "../helpers/nats-server.js";
import { check } from "../helpers/check.js";
import { runCli, spawnCli, stopChild } from "../helpers/cli.js";
import { killStateDirWorkloads } from "../helpers/workloads.js";
import { AUTH_CONF, initAuth, readEnvFile, type Credentials } from "../../src/auth/users.js";
import { inboxPrefixFor } from "../../src/auth/roles.js";
import { permissionViolation } from "../../src/auth/probe.js";
import { Names } from "../../src/protocol/names.js";

const prefix = uniquePrefix("auth");
const names = new Names(prefix);
const dir = mkdtempSync(join(tmpdir(), "flotilla-auth-"));
const authDir = join(dir, "auth");
let server: AuthNatsServer;
let creds: Record<string, Credentials>;
const children: ReturnType<typeof spawnCli>[] = [];

function envOf(who: string): Record<string, string> {
  const e = readEnvFile(creds[who]!.envFile);
  return { NATS_URL: server.url, NATS_USER: e.NATS_USER!, NATS_PASSWORD: e.NATS_PASSWORD!, FLOTILLA_PREFIX: prefix };
}

function cli(who: string, args: string[], timeoutMs = 60_000) {
  return runCli(args, { env: envOf(who), timeoutMs });
}

async function as(who: string): Promise<NatsConnection> {
  const c = creds[who]!;
  return connect({ servers: server.url, user: c.user, pass: c.password, inboxPrefix: inboxPrefixFor(c.user) });
}

function daemon(who: string, extra: string[] = []) {
  const c = creds[who]!;
  const child = spawnCli(
    ["daemon", "--machine-id", c.machineId!, "--state-dir", join(dir, `state-${c.machineId}`), "--agent-ttl", "2s", "--lease-ttl", "1s", "--stop-tasks-on-exit", ...extra],
    { ...envOf(who), LOG_LEVEL: "info" },
  );
  children.push(child);
  return child;
}

/**
 * A publish the server refuses comes back as a PermissionViolationError on the request. The
 * expected sequence makes JetStream refuse to store an allowed one, so nothing is written.
 */
async function refused(nc: NatsConnection, subject: string): Promise<boolean> {
  const h = headers();
  h.set("Nats-Expected-Last-Subject-Sequence", String(Number.MAX_SAFE_INTEGER));
  try {
    await nc.request(subject, "x", { timeout: 3000, headers: h });
    return false;
  } catch (e) {
    return permissionViolation(e) !== undefined;
  }
}

beforeAll(async () => {
  const made = initAuth({
    dir: authDir,
    prefix,
    machines: [
      { id: "ma", role: "engine" },
      { id: "mb", role: "machine" },
    ],
  });
  creds = Object.fromEntries(made.map((c) => [c.machineId ?? c.role, c]));
  server = await AuthNatsServer.start(join(authDir, AUTH_CONF));
});

afterAll(async () => {
  for (const c of children) await stopChild(c, "SIGTERM", 15_000);
  killStateDirWorkloads(join(dir, "state-ma"));
  killStateDirWorkloads(join(dir, "state-mb"));
  await server?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe("flotilla auth init", () => {
  it("writes one 0600 .env file per party and stores only bcrypt hashes", () => {
    for (const c of Object.values(creds)) {
      expect(statSync(c.envFile).mode & 0o777).toBe(0o600);
      const e = readEnvFile(c.envFile);
      expect(e.NATS_USER).toBe(c.user);
      expect(e.NATS_PASSWORD).toBe(c.password);
    }
    expect(statSync(join(authDir, AUTH_CONF)).mode & 0o777).toBe(0o600);
  });
});

describe("roles on a real nats-server", () => {
  it("a cluster of an engine daemon and a machine-only daemon runs the main paths with no refusal", async () => {
    const a = daemon("ma");
    await check(() => a.output().includes("machine ma is up") || a.exitCode !== null, 30_000, "daemon ma up");
    expect(a.exitCode, a.output()).toBeNull();
    const b = daemon("mb", ["--no-engine", "--no-api"]);
    await check(() => b.output().includes("machine mb is up") || b.exitCode !== null, 30_000, "daemon mb up");
    expect(b.exitCode, b.output()).toBeNull();

    const machines = await cli("operator", ["list-machines", "--json"]);
    expect(machines.code, machines.stderr).toBe(0);
    await check(async () => {
      const r = await cli("operator", ["list-machines", "--json"]);
      const ids = (JSON.parse(r.stdout || "[]") as { id: string }[]).map((m) => m.id).sort();
      return ids.join(",") === "ma,mb";
    }, 15_000, "both machines listed");

    const unit = join(dir, "hello.service");
    writeFileSync(unit, '[Service]\nExecStart=/bin/sh -c "while true; do echo hello-from-mb; sleep 0.2; done"\n[X-Fleet]\nMachineID=mb\n');
    const started = await cli("operator", ["start", unit]);
    expect(started.code, started.stderr + a.output().slice(-3000) + b.output().slice(-3000)).toBe(0);
    expect(started.stdout).toContain("mb");

    await check(async () => (await cli("operator", ["journal", "-n", "3", "hello.service"])).stdout.includes("hello-from-mb"), 20_000, "journal of hello.service");
    for (const args of [["list-units"], ["list-unit-files"], ["status", "hello.service"], ["cat", "hello.service"]]) {
      const r = await cli("operator", args);
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(0);
    }
    // Availability goes through the API (on ma) to mb's own daemon.
    const drained = await cli("operator", ["machine", "pause", "mb"]);
    expect(drained.code, drained.stderr).toBe(0);
    const active = await cli("operator", ["machine", "activate", "mb"]);
    expect(active.code, active.stderr).toBe(0);

    // A viewer reads, and watches the inspection subjects.
    const viewer = await as("viewer");
    const seen: string[] = [];
    viewer.subscribe(names.inspectAll(), {
      callback: (_e, m) => {
        seen.push(m.subject);
      },
    });
    const vlist = await cli("viewer", ["list-units", "--json"]);
    expect(vlist.code, vlist.stderr).toBe(0);
    expect(vlist.stdout).toContain("hello.service");
    for (const args of [["list-machines"], ["list-unit-files"], ["status", "hello.service"], ["cat", "hello.service"], ["journal", "-n", "2", "hello.service"]]) {
      const r = await cli("viewer", args);
      expect(r.code, `viewer ${args.join(" ")}: ${r.stderr}`).toBe(0);
    }

    for (const v of ["stop", "unload", "destroy"] as const) {
      const r = await cli("operator", [v, "hello.service"]);
      expect(r.code, `${v}: ${r.stderr}`).toBe(0);
    }
    await check(() => seen.some((s) => s.startsWith(`${prefix}.inspect.mb.`)), 15_000, "inspect messages of mb");
    await viewer.close();

    expect(server.violations()).toEqual([]);
    expect(a.exitCode).toBeNull();
    expect(b.exitCode).toBeNull();
  }, 180_000);

  it("machine A's credentials cannot write machine B's record or states, nor schedule, leases or units", async () => {
    const nc = await as("mb");
    try {
      for (const subject of [
        `$KV.${names.bucket("machines")}.ma`,
        `$KV.${names.bucket("states")}.hello.service.ma`,
        `$KV.${names.bucket("schedule")}.mb.hello.service`,
        `$KV.${names.bucket("leases")}.engine-leader`,
        `$KV.${names.bucket("units")}.hello.service`,
        `$JS.API.STREAM.DELETE.KV_${names.bucket("units")}`,
        names.apiSubject("destroy"),
      ]) {
        expect(await refused(nc, subject), subject).toBe(true);
      }
      // Its own keys are fine (refused by JetStream for the sequence, not by the server).
      expect(await refused(nc, `$KV.${names.bucket("states")}.x.service.mb`)).toBe(false);
    } finally {
      await nc.close();
    }
  });

  it("an operator cannot put into any bucket directly; a viewer can list but not start", async () => {
    const op = await as("operator");
    try {
      const kv = await new Kvm(op).open(names.bucket("units"));
      await expect(kv.put("evil.service", "x")).rejects.toThrow(/permission/i);
      for (const b of ["units", "schedule", "states", "machines", "leases"] as const) {
        expect(await refused(op, `$KV.${names.bucket(b)}.x`), b).toBe(true);
      }
    } finally {
      await op.close();
    }
    const unit = join(dir, "viewer.service");
    writeFileSync(unit, "[Service]\nExecStart=/bin/sleep 600\n");
    const r = await cli("viewer", ["start", "--no-block", unit]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain(`NATS refused user "viewer" to send`);
  });

  it("a CLI with a bad password says so in one line", async () => {
    const r = await runCli(["list-machines"], { env: { ...envOf("operator"), NATS_PASSWORD: "wrong" } });
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain(`refused the credentials of user "operator"`);
    expect(r.stderr).toContain("[auth_failed]");
  });

  it("a daemon with a bad password says so in one line and exits 1 instead of retrying", async () => {
    const r = await runCli(["daemon", "--machine-id", "ma", "--state-dir", join(dir, "state-ma-2")], {
      env: { ...envOf("ma"), NATS_PASSWORD: "wrong" },
      timeoutMs: 30_000,
    });
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toContain(`refused the credentials of user "machine-ma"`);
    expect(r.stderr).not.toContain("retrying");
  });

  it("a machine-only daemon that finds no buckets says only an engine may create them and exits 1", async () => {
    const empty = await AuthNatsServer.start(join(authDir, AUTH_CONF));
    try {
      const r = await runCli(["daemon", "--machine-id", "mb", "--no-engine", "--no-api", "--state-dir", join(dir, "state-mb-3")], {
        env: { ...envOf("mb"), NATS_URL: empty.url },
        timeoutMs: 30_000,
      });
      expect(r.code, r.stdout + r.stderr).toBe(1);
      expect(r.stderr).toContain(`NATS refused user "machine-mb" to publish to $JS.API.STREAM.CREATE.KV_${names.bucket("units")}`);
      expect(r.stderr).toContain("only an engine may create or change them");
      expect(r.stderr).toContain("[permission_denied]");
    } finally {
      await empty.dispose();
    }
  });

  it("a daemon whose user lacks the engine role says which subject was refused and exits 1", async () => {
    const c = creds["mb"]!;
    const r = await runCli(["daemon", "--machine-id", "mb", "--state-dir", join(dir, "state-mb-2")], { env: envOf("mb"), timeoutMs: 30_000 });
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toContain(`NATS refused user "${c.user}" to publish to $KV.${names.bucket("schedule")}.`);
    expect(r.stderr).toContain("needs the engine role");
    expect(r.stderr).toContain("[permission_denied]");
  });
});
