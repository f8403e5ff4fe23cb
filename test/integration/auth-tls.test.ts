// TLS on the bus: a self-signed CA made here with openssl, a nats-server with the TLS block of
// docs/auth.md (client certificates verified) plus the users of `flotilla auth init`, and a
// daemon and the CLI that connect with --tls-ca/--tls-cert/--tls-key. Without the CA the CLI
// says in one line that it cannot connect.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AuthNatsServer } from "../helpers/auth-nats-server.js";
import { uniquePrefix } from "../helpers/nats-server.js";
import { check } from "../helpers/check.js";
import { runCli, spawnCli, stopChild } from "../helpers/cli.js";
import { AUTH_CONF, initAuth, type Credentials } from "../../src/auth/users.js";

const dir = mkdtempSync(join(tmpdir(), "flotilla-tls-"));
const prefix = uniquePrefix("tls");
const f = (n: string) => join(dir, n);
let server: AuthNatsServer;
let creds: Record<string, Credentials>;
let daemon: ReturnType<typeof spawnCli> | undefined;

function openssl(args: string[]): void {
  execFileSync("openssl", args, { stdio: "pipe" });
}

/** A key and a certificate signed by the test CA. */
function issue(name: string, cn: string, ext: string): void {
  writeFileSync(f(`${name}.ext`), ext + "\n");
  openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", f(`${name}-key.pem`), "-out", f(`${name}.csr`), "-subj", `/CN=${cn}`]);
  openssl(["x509", "-req", "-in", f(`${name}.csr`), "-CA", f("ca.pem"), "-CAkey", f("ca-key.pem"), "-CAcreateserial", "-out", f(`${name}.pem`), "-days", "1", "-extfile", f(`${name}.ext`)]);
}

beforeAll(async () => {
  openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", f("ca-key.pem"), "-out", f("ca.pem"), "-days", "1", "-subj", "/CN=flotilla test CA"]);
  issue("server", "127.0.0.1", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth");
  issue("client", "flotilla client", "extendedKeyUsage=clientAuth");
  const made = initAuth({ dir: f("auth"), prefix, machines: [{ id: "tls1", role: "engine" }] });
  creds = Object.fromEntries(made.map((c) => [c.machineId ?? c.role, c]));
  server = await AuthNatsServer.start(join(f("auth"), AUTH_CONF), [
    "tls {",
    `  cert_file: "${f("server.pem")}"`,
    `  key_file: "${f("server-key.pem")}"`,
    `  ca_file: "${f("ca.pem")}"`,
    "  verify: true",
    "  timeout: 2",
    "}",
  ]);
});

afterAll(async () => {
  if (daemon) await stopChild(daemon, "SIGTERM", 15_000);
  await server?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

function env(who: string): Record<string, string> {
  const c = creds[who]!;
  return { NATS_URL: server.url, NATS_USER: c.user, NATS_PASSWORD: c.password, FLOTILLA_PREFIX: prefix };
}

const TLS = () => ["--tls-ca", f("ca.pem"), "--tls-cert", f("client.pem"), "--tls-key", f("client-key.pem")];

describe("client TLS", () => {
  it("a daemon and the CLI connect with --tls-ca/--tls-cert/--tls-key to a server that verifies client certificates", async () => {
    daemon = spawnCli([...TLS(), "daemon", "--machine-id", "tls1", "--state-dir", f("state"), "--agent-ttl", "2s"], env("tls1"));
    await check(() => daemon!.output().includes("machine tls1 is up") || daemon!.exitCode !== null, 30_000, "daemon up over TLS").catch((e) => {
      throw new Error(`${(e as Error).message}\n${daemon!.output().slice(-3000)}`);
    });
    expect(daemon.exitCode, daemon.output()).toBeNull();
    const r = await runCli([...TLS(), "list-machines", "--json"], { env: env("operator") });
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { id: string }[]).map((m) => m.id)).toEqual(["tls1"]);
    expect(server.violations()).toEqual([]);
  }, 60_000);

  it("without the CA (or without a client certificate) the CLI says in one line that it cannot connect", async () => {
    for (const flags of [[], ["--tls-ca", f("ca.pem")]]) {
      const r = await runCli([...flags, "list-machines"], { env: env("operator") });
      expect(r.code, r.stdout).toBe(1);
      expect(r.stderr.trim().split("\n"), r.stderr).toHaveLength(1);
      expect(r.stderr).toMatch(/^Error: (cannot reach NATS|NATS at)/);
    }
  });

  it("a client certificate without its key is a bad flag naming the missing one", async () => {
    const r = await runCli(["--tls-cert", f("client.pem"), "daemon", "--state-dir", f("state-x")], { env: env("tls1") });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("tls_key is missing");
  });
});
