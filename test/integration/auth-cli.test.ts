// `flotilla auth init` and `flotilla auth add-machine` as a user runs them: the files they
// write, the hashes nats-server checks, and a machine added to a running server (reload).
import { afterAll, describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { headers } from "@nats-io/nats-core";
import { AuthNatsServer } from "../helpers/auth-nats-server.js";
import { uniquePrefix } from "../helpers/nats-server.js";
import { check } from "../helpers/check.js";
import { runCli } from "../helpers/cli.js";
import { readEnvFile, readStore } from "../../src/auth/users.js";
import { inboxPrefixFor } from "../../src/auth/roles.js";
import { permissionViolation } from "../../src/auth/probe.js";
import { Names } from "../../src/protocol/names.js";

const root = mkdtempSync(join(tmpdir(), "flotilla-auth-cli-"));
const servers: AuthNatsServer[] = [];
afterAll(async () => {
  for (const s of servers) await s.dispose();
  rmSync(root, { recursive: true, force: true });
});

describe("flotilla auth", () => {
  it("init writes users.json, auth.conf with bcrypt hashes only, and 0600 .env files; refuses to run twice", async () => {
    const dir = join(root, "a");
    const prefix = uniquePrefix("authcli");
    const r = await runCli(["--prefix", prefix, "auth", "init", "--dir", dir, "--machine", "a1", "--machine", "a2"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(join(dir, "operator.env"));
    expect(r.stdout).toContain("include");
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(readdirSync(dir).sort()).toEqual(["auth.conf", "machine-a1.env", "machine-a2.env", "operator.env", "users.json", "viewer.env"]);
    const conf = readFileSync(join(dir, "auth.conf"), "utf8");
    for (const f of ["operator.env", "viewer.env", "machine-a1.env", "machine-a2.env"]) {
      expect(statSync(join(dir, f)).mode & 0o777, f).toBe(0o600);
      const e = readEnvFile(join(dir, f));
      expect(e.NATS_PASSWORD!.length).toBeGreaterThanOrEqual(24);
      expect(conf).not.toContain(e.NATS_PASSWORD);
    }
    expect(readEnvFile(join(dir, "machine-a1.env")).FLOTILLA_MACHINE_ID).toBe("a1");
    const store = readStore(dir)!;
    expect(store.prefix).toBe(prefix);
    expect(store.users.map((u) => [u.user, u.role])).toEqual([
      ["operator", "operator"],
      ["viewer", "viewer"],
      ["machine-a1", "engine"],
      ["machine-a2", "engine"],
    ]);
    expect(store.users.every((u) => /^\$2[aby]\$10\$/.test(u.hash))).toBe(true);

    const again = await runCli(["--prefix", prefix, "auth", "init", "--dir", dir]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain("exists already");
    expect(again.stderr).toContain("add-machine");
  });

  it("init --if-missing keeps the users and passwords it finds and adds only the machines they lack", async () => {
    const dir = join(root, "k");
    const prefix = uniquePrefix("authcli");
    const first = await runCli(["--prefix", prefix, "auth", "init", "--dir", dir, "--machine", "k1", "--if-missing"]);
    expect(first.code, first.stderr).toBe(0);
    const before = Object.fromEntries(["operator.env", "viewer.env", "machine-k1.env"].map((f) => [f, readFileSync(join(dir, f), "utf8")]));
    const same = await runCli(["--prefix", prefix, "auth", "init", "--dir", dir, "--machine", "k1", "--if-missing"]);
    expect(same.code, same.stderr).toBe(0);
    expect(same.stdout).toContain("nothing changed");
    const more = await runCli(["--prefix", prefix, "auth", "init", "--dir", dir, "--machine", "k1", "--machine", "k2", "--if-missing"]);
    expect(more.code, more.stderr).toBe(0);
    expect(more.stdout).toContain("machine-k2.env");
    for (const [f, text] of Object.entries(before)) expect(readFileSync(join(dir, f), "utf8"), f).toBe(text);
    expect(readStore(dir)!.users.map((u) => u.user)).toEqual(["operator", "viewer", "machine-k1", "machine-k2"]);
    const other = await runCli(["--prefix", `${prefix}x`, "auth", "init", "--dir", dir, "--machine", "k1", "--if-missing"]);
    expect(other.code).toBe(2);
    expect(other.stderr).toContain(`holds the users of prefix "${prefix}"`);
  });

  it("init --machines N makes N machines with new IDs; N together with --machine is a bad flag", async () => {
    const dir = join(root, "b");
    const r = await runCli(["auth", "init", "--dir", dir, "--machines", "2", "--role", "machine"]);
    expect(r.code, r.stderr).toBe(0);
    const machines = readStore(dir)!.users.filter((u) => u.machineId);
    expect(machines).toHaveLength(2);
    for (const m of machines) {
      expect(m.machineId).toMatch(/^[0-9a-f]{32}$/);
      expect(m.role).toBe("machine");
      expect(existsSync(join(dir, `machine-${m.machineId}.env`))).toBe(true);
    }
    const both = await runCli(["auth", "init", "--dir", join(root, "c"), "--machines", "1", "--machine", "x"]);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain("either --machines N or --machine ID");
    const role = await runCli(["auth", "init", "--dir", join(root, "d"), "--role", "admin"]);
    expect(role.code).toBe(2);
    expect(role.stderr).toContain('--role: "admin"');
  });

  it("add-machine adds a user that a running server accepts after a reload, with that machine's permissions", async () => {
    const dir = join(root, "e");
    const prefix = uniquePrefix("authcli");
    const names = new Names(prefix);
    expect((await runCli(["--prefix", prefix, "auth", "init", "--dir", dir])).code).toBe(0);
    const server = await AuthNatsServer.start(join(dir, "auth.conf"));
    servers.push(server);
    const added = await runCli(["auth", "add-machine", "w1", "--role", "machine", "--dir", dir]);
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toContain("--no-engine --no-api");
    const w = readEnvFile(join(dir, "machine-w1.env"));
    server.reload();
    const nc = await check(
      () => connect({ servers: server.url, user: w.NATS_USER, pass: w.NATS_PASSWORD, inboxPrefix: inboxPrefixFor(w.NATS_USER!), reconnect: false }),
      10_000,
      "the new machine's user accepted after the reload",
    );
    const h = headers();
    h.set("Nats-Expected-Last-Subject-Sequence", String(Number.MAX_SAFE_INTEGER));
    const refused = async (subject: string) =>
      nc.request(subject, "x", { timeout: 2000, headers: h }).then(
        () => false,
        (e) => permissionViolation(e) !== undefined,
      );
    expect(await refused(`$KV.${names.bucket("machines")}.w1`)).toBe(false);
    expect(await refused(`$KV.${names.bucket("machines")}.w2`)).toBe(true);
    expect(await refused(`$KV.${names.bucket("schedule")}.w1.x.service`)).toBe(true);
    await nc.close();

    const missing = await runCli(["auth", "add-machine", "w2", "--dir", join(root, "nowhere")]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("flotilla auth init");
  });
});
