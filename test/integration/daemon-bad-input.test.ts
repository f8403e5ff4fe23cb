// Bad input to `flotilla daemon` as a user meets it: a clear one-line error and exit code 2 for
// bad flags, a warning for unknown config keys, a clear error for an unreadable config file,
// visible retry lines (no stack trace) while NATS is unreachable, and API requests that once
// crashed it answered with an error instead.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { NatsServer, natsServerBin, uniquePrefix } from "../helpers/nats-server.js";
import { check } from "../helpers/check.js";
import { runCli, spawnCli, stopChild } from "../helpers/cli.js";
import { startDaemon } from "../helpers/daemon.js";
import { portFree } from "../../src/cli/up.js";
import { connect } from "@nats-io/transport-node";
import { Names } from "../../src/protocol/names.js";

let server: NatsServer;
const stateDir = () => mkdtempSync(join(tmpdir(), "flotilla-state-"));

beforeAll(async () => {
  server = await NatsServer.start();
});
afterAll(async () => {
  await server?.dispose();
});

describe("daemon bad input", () => {
  it.each([["region"], ["=x"], ["a=b,,"]])("malformed --metadata %s exits 2 naming the pair", async (m) => {
    const r = await runCli(["--nats", server.url, "daemon", "--state-dir", stateDir(), "--metadata", m]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^Error: metadata: ".*" in ".*" is not a key=value pair/m);
    expect(r.stderr).toContain("[bad_flag]");
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it("a bad --agent-ttl exits 2 naming the flag's key", async () => {
    const r = await runCli(["--nats", server.url, "daemon", "--state-dir", stateDir(), "--agent-ttl", "soon"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('agent_ttl: "soon" is not a duration');
  });

  it("an unreadable config file is a clear error", async () => {
    const r = await runCli(["--nats", server.url, "daemon", "--config", "/nonexistent/flotilla.conf", "--state-dir", stateDir()]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("cannot read config file /nonexistent/flotilla.conf");
    expect(r.stderr).toContain("[bad_config]");
  });

  it("an unknown config key is warned about and the daemon runs with the rest of the file", async () => {
    const dir = stateDir();
    const conf = join(dir, "flotilla.conf");
    writeFileSync(conf, "metadata=role=web\nmetadta=typo\n");
    const prefix = uniquePrefix("conf");
    const d = await startDaemon({ server, prefix, stateDir: dir, extraArgs: ["--config", conf, "--no-engine"] });
    try {
      expect(d.output()).toMatch(/unknown config key \\?"metadta\\?" ignored/);
      const r = await runCli(["--nats", server.url, "--prefix", prefix, "list-machines"]);
      expect(r.stdout).toContain("role=web");
    } finally {
      expect(await d.stop()).toBe(0);
    }
  });

  it("API requests that once took the daemon down get an error reply with a one-line header; the daemon keeps running", async () => {
    const prefix = uniquePrefix("req");
    const d = await startDaemon({ server, prefix, extraArgs: ["--no-engine"] });
    const nc = await connect({ servers: server.url });
    try {
      const names = new Names(prefix);
      // JSON.parse's message quotes the input: the newline went into the Nats-Service-Error header,
      // nats.js threw from respondError, and the unhandled rejection ended the process.
      const bodies: [string, Uint8Array][] = [
        ["status", new Uint8Array([0xff, 0x0a, 0x7b])],
        ["cat", new TextEncoder().encode("{\r\n\u0000")],
        ["submit", new TextEncoder().encode(JSON.stringify({ units: [{ name: "a\r\nb", contents: "x" }] }))],
      ];
      for (const [verb, body] of bodies) {
        const m = await nc.request(names.apiSubject(verb), body, { timeout: 5000 });
        const header = m.headers?.get("Nats-Service-Error") ?? "";
        expect(header, verb).toMatch(/^(bad_json|invalid_unit_name): /);
        expect(header).not.toMatch(/[\u0000-\u001f]/);
        expect(header.length).toBeLessThanOrEqual(200);
        expect(JSON.parse(new TextDecoder().decode(m.data)).error.code).toMatch(/^(bad_json|invalid_unit_name)$/);
      }
      const machines = await nc.request(names.apiSubject("list-machines"), "", { timeout: 5000 });
      expect(JSON.parse(new TextDecoder().decode(machines.data))[0].id).toBe(d.machineId);
      expect(d.child.exitCode).toBeNull();
      expect(d.output()).not.toMatch(/InvalidArgumentError|unhandled/i);
    } finally {
      await nc.close();
      expect(await d.stop()).toBe(0);
    }
  });

  it("unreachable NATS: visible retry lines, no stack trace, and SIGTERM still stops it", async () => {
    let port = 0;
    for (port = 39_000 + Math.floor(Math.random() * 1000); !(await portFree(port)); port++);
    const child = spawnCli(["--nats", `nats://127.0.0.1:${port}`, "daemon", "--state-dir", stateDir()]);
    try {
      await check(() => (child.output().match(/cannot reach NATS at .*retrying in/g) ?? []).length >= 2, 15_000, "two retry lines");
      expect(child.output()).not.toMatch(/\n\s+at /);
      expect(child.exitCode).toBeNull();
    } finally {
      expect(await stopChild(child, "SIGTERM")).toBe(0);
    }
  });

  it("a NATS server without JetStream is a clear error, not a retry loop", async () => {
    let port = 0;
    for (port = 41_000 + Math.floor(Math.random() * 1000); !(await portFree(port)); port++);
    const plain = spawn(natsServerBin(), ["-a", "127.0.0.1", "-p", String(port)], { stdio: "ignore" });
    try {
      await check(() => portFree(port).then((free) => !free), 10_000, "plain nats-server");
      const r = await runCli(["--nats", `nats://127.0.0.1:${port}`, "daemon", "--state-dir", stateDir()]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("JetStream is not enabled on the NATS server");
      expect(r.stderr).toContain("[nats_unavailable]");
    } finally {
      const exited = new Promise((res) => plain.once("exit", res));
      plain.kill("SIGTERM");
      await exited;
    }
  });
});
