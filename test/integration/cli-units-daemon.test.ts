// The unit verbs end to end: a real `flotilla daemon` (API, engine, agent) and the real CLI,
// blocking for real — start waits until the process runs, stop until it stopped, destroy
// until no machine reports the unit.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NatsServer, uniquePrefix } from "../helpers/nats-server.js";
import { startDaemon, type RunningDaemon } from "../helpers/daemon.js";
import { runCli } from "../helpers/cli.js";

let server: NatsServer;
let daemon: RunningDaemon;
let dir: string;
let prefix: string;

beforeAll(async () => {
  server = await NatsServer.start();
  prefix = uniquePrefix("cud");
  daemon = await startDaemon({ server, prefix });
  dir = mkdtempSync(join(tmpdir(), "flotilla-cud-"));
});
afterAll(async () => {
  await daemon?.stop();
  await server?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

const cli = (...args: string[]) => runCli(["--nats", server.url, "--prefix", prefix, ...args], { timeoutMs: 40_000 });
const rows = (out: string) => out.trim().split("\n").map((l) => l.split(/\s+/));

describe("unit verbs against a real daemon", () => {
  it("start, restart, stop, destroy block until the machine reports the state", async () => {
    const f = join(dir, "web@.service");
    writeFileSync(f, "[Unit]\nDescription=web %i\n[Service]\nExecStart=/bin/sleep 600\n");
    const sub = await cli("submit", f);
    expect(sub.code, sub.stderr).toBe(0);
    const s = await cli("start", "--block-attempts", "40", "web@1", "web@2");
    expect(s.code, s.stderr + daemon.output()).toBe(0);
    expect(s.stdout).toContain("Waiting for web@1.service to be launched");
    expect(s.stdout).toMatch(/Unit web@2\.service launched on \S+/);

    const lu = await cli("list-units", "--no-legend", "--fields", "unit,active,sub,pid");
    const running = rows(lu.stdout);
    expect(running.map((r) => r.slice(0, 3))).toEqual([
      ["web@1.service", "active", "running"],
      ["web@2.service", "active", "running"],
    ]);
    const pid1 = running[0]![3];

    const r = await cli("restart", "--block-attempts", "40", "web@1");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Unit web@1\.service stopped[\s\S]*Unit web@1\.service launched/);
    const after = rows((await cli("list-units", "--no-legend", "--fields", "unit,pid")).stdout);
    expect(after[0]![1]).not.toBe(pid1);

    const st = await cli("stop", "--block-attempts", "40", "web@2");
    expect(st.code, st.stderr).toBe(0);
    const lf = rows((await cli("list-unit-files", "--no-legend", "--fields", "unit,dstate,state")).stdout);
    expect(lf).toEqual([
      ["web@.service", "inactive", "inactive"],
      ["web@1.service", "launched", "launched"],
      ["web@2.service", "loaded", "loaded"],
    ]);

    const d = await cli("destroy", "--block-attempts", "40", "web@1", "web@2", "web@.service");
    expect(d.code, d.stderr).toBe(0);
    expect((await cli("list-units", "--no-legend")).stdout).toBe("");
    expect((await cli("list-unit-files", "--no-legend")).stdout).toBe("");
  });
});
