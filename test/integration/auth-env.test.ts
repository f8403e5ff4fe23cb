// A daemon that takes its credentials from one of flotilla auth's .env files (--auth-env /
// FLOTILLA_AUTH_ENV), as the compose file's agents do: started before the file exists (the
// compose auth service has not run yet), it says what it waits for, then runs as that machine.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AuthNatsServer } from "../helpers/auth-nats-server.js";
import { uniquePrefix } from "../helpers/nats-server.js";
import { check } from "../helpers/check.js";
import { runCli, spawnCli, stopChild } from "../helpers/cli.js";
import { killStateDirWorkloads } from "../helpers/workloads.js";
import { AUTH_CONF, initAuth, readEnvFile, type Credentials } from "../../src/auth/users.js";

const prefix = uniquePrefix("authenv");
const dir = mkdtempSync(join(tmpdir(), "flotilla-auth-env-"));
const authDir = join(dir, "auth");
let server: AuthNatsServer;
let creds: Record<string, Credentials>;
const children: ReturnType<typeof spawnCli>[] = [];

beforeAll(async () => {
  creds = Object.fromEntries(initAuth({ dir: authDir, prefix, machines: [{ id: "me1", role: "engine" }] }).map((c) => [c.machineId ?? c.role, c]));
  server = await AuthNatsServer.start(join(authDir, AUTH_CONF));
});

afterAll(async () => {
  for (const c of children) await stopChild(c, "SIGTERM", 15_000);
  killStateDirWorkloads(join(dir, "state"));
  await server?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe("--auth-env", () => {
  it("a daemon waits for its .env file, saying so, then runs as the machine the file names", async () => {
    const later = join(dir, "machine.env");
    const child = spawnCli(["--nats", server.url, "--prefix", prefix, "daemon", "--state-dir", join(dir, "state"), "--agent-ttl", "2s"], {
      FLOTILLA_AUTH_ENV: later,
      NATS_USER: "",
      NATS_PASSWORD: "",
    });
    children.push(child);
    await check(() => child.output().includes(`waiting up to 60 s for ${later}`), 20_000, "the daemon saying what it waits for");
    expect(child.exitCode).toBeNull();
    copyFileSync(creds.me1!.envFile, later);
    await check(() => child.output().includes("machine me1 is up"), 30_000, "the daemon up as me1", 100).catch((e: Error) => {
      throw new Error(`${e.message}\n${child.output().slice(-3000)}`);
    });
    const op = readEnvFile(creds.operator!.envFile);
    const r = await runCli(["--nats", server.url, "--prefix", prefix, "list-machines"], { env: { NATS_USER: op.NATS_USER!, NATS_PASSWORD: op.NATS_PASSWORD! } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^me1\s/m);
    expect(server.violations()).toEqual([]);
  });
});
