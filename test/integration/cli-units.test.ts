// fleetctl's functional cycle through the real CLI against real daemons (API, engine, agent on
// three machines sharing one nats-server): submit 9 / load 6 / start 3 hello@N, each verb
// blocking until the machines report the state, then undone with stop/unload/destroy, twice.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NatsServer, uniquePrefix } from "../helpers/nats-server.js";
import { startDaemon, type RunningDaemon } from "../helpers/daemon.js";
import { killStateDirWorkloads } from "../helpers/agent-host.js";
import { runCli } from "../helpers/cli.js";
import { check } from "../helpers/check.js";

let server: NatsServer;
let daemons: RunningDaemon[] = [];
let dir: string;
let prefix: string;

beforeAll(async () => {
  server = await NatsServer.start();
  prefix = uniquePrefix("cycle");
  dir = mkdtempSync(join(tmpdir(), "flotilla-cli-units-"));
  const started = await Promise.allSettled(
    ["cyc-1", "cyc-2", "cyc-3"].map((machineId) => startDaemon({ server, prefix, machineId, agentTtl: "2s", leaseTtl: "2s" })),
  );
  daemons = started.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
  const failed = started.find((s) => s.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason;
});
afterAll(async () => {
  await Promise.all(daemons.map((d) => d.stop()));
  // Daemons leave their workloads running when they stop, on purpose: kill them here.
  for (const d of daemons) {
    killStateDirWorkloads(d.stateDir);
    rmSync(d.stateDir, { recursive: true, force: true });
  }
  await server?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const cli = (...args: string[]) => runCli(["--nats", server.url, "--prefix", prefix, ...args], { timeoutMs: 40_000 });
const rows = (out: string) => out.split("\n").filter(Boolean).map((l) => l.split(/\s+/));
const logs = () => daemons.map((d) => `--- ${d.machineId}\n${d.output().slice(-3000)}`).join("\n");

const HELLO = "[Unit]\nDescription=Hello %i\n\n[Service]\nExecStart=/bin/sh -c 'while true; do echo hello %i; sleep 1; done'\n";
const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);
const names = (n: number) => range(n).map((i) => `hello@${i}.service`);

/** list-units as rows of [unit, load, active, sub], once it has settled on `want` rows. */
async function listUnits(want: number): Promise<string[][]> {
  return check(
    async () => {
      const r = await cli("list-units", "--no-legend", "--fields", "unit,load,active,sub");
      const got = rows(r.stdout);
      return r.code === 0 && got.length === want ? got : undefined;
    },
    10_000,
    `list-units with ${want} rows`,
    100,
  );
}

describe("the fleetctl cycle through the CLI, blocking on real daemons", () => {
  it("submit 9 / load 6 / start 3 hello@N, list, undo with stop/unload/destroy, twice", async () => {
    // Only the template is on disk: each hello@N.service path is instantiated from it.
    writeFileSync(join(dir, "hello@.service"), HELLO);
    const paths = range(9).map((i) => join(dir, `hello@${i}.service`));
    for (let round = 0; round < 2; round++) {
      const s = await cli("submit", ...paths);
      expect(s.code, s.stderr).toBe(0);
      expect(s.stdout).toContain("Unit hello@9.service inactive");
      const files = await cli("list-unit-files", "--no-legend", "--fields", "unit");
      expect(rows(files.stdout).map((r) => r[0])).toEqual(names(9));
      expect(rows((await cli("list-units", "--no-legend")).stdout)).toHaveLength(0);

      const l = await cli("load", "--block-attempts", "40", ...names(6));
      expect(l.code, l.stderr + logs()).toBe(0);
      expect(l.stdout).toContain("Waiting for hello@6.service to be loaded");
      expect(l.stdout).toMatch(/Unit hello@6\.service loaded on cyc-\d/);
      const loaded = await listUnits(6);
      expect(loaded.map((r) => r[0])).toEqual(names(6));
      expect(loaded.every((r) => r[1] === "loaded")).toBe(true);

      const st = await cli("start", "--block-attempts", "40", ...range(3).map((i) => `hello@${i}`));
      expect(st.code, st.stderr + logs()).toBe(0);
      expect(st.stdout).toMatch(/Unit hello@3\.service launched on cyc-\d/);
      const started = await listUnits(6);
      expect(started.filter((r) => r[2] === "active" && r[3] === "running").map((r) => r[0])).toEqual(names(3));
      expect(started.every((r) => r[1] === "loaded")).toBe(true);
      const lf = rows((await cli("list-unit-files", "--no-legend", "--fields", "unit,dstate,state")).stdout);
      expect(lf).toEqual([
        ...names(3).map((u) => [u, "launched", "launched"]),
        ...names(6).slice(3).map((u) => [u, "loaded", "loaded"]),
        ...names(9).slice(6).map((u) => [u, "inactive", "inactive"]),
      ]);
      expect((await cli("cat", "hello@5")).stdout).toBe(HELLO);

      const stop = await cli("stop", "--block-attempts", "40", ...names(3));
      expect(stop.code, stop.stderr + logs()).toBe(0);
      const stopped = await listUnits(6);
      expect(stopped.filter((r) => r[2] === "active")).toEqual([]);
      expect(stopped.every((r) => r[1] === "loaded")).toBe(true);

      const unload = await cli("unload", "--block-attempts", "40", ...names(6));
      expect(unload.code, unload.stderr + logs()).toBe(0);
      expect(await listUnits(0)).toEqual([]);
      const unloaded = rows((await cli("list-unit-files", "--no-legend", "--fields", "unit,dstate")).stdout);
      expect(unloaded).toEqual(names(9).map((u) => [u, "inactive"]));

      const d = await cli("destroy", "--block-attempts", "40", ...names(9));
      expect(d.code, d.stderr + logs()).toBe(0);
      expect(d.stdout).toContain("Destroyed hello@1.service");
      const empty = await cli("list-unit-files");
      expect(empty.stdout.split(/\s+/).filter(Boolean)).toEqual(["UNIT", "HASH", "DSTATE", "STATE", "TARGET"]);
    }
  });
});
