// The unit verbs through the real CLI (compiled, as a user runs it) against the API running in
// this process.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/nats-core";
import { NatsServer } from "../helpers/nats-server.js";
import { cliCluster } from "../helpers/cli-cluster.js";
import type { InProcessApi } from "../helpers/api-in-process.js";
import { connectOnce } from "../../src/nats/connection.js";
let server: NatsServer;
let nc: NatsConnection;
let dir: string;
const apis: InProcessApi[] = [];

beforeAll(async () => {
  server = await NatsServer.start();
  nc = await connectOnce({ url: server.url });
  dir = mkdtempSync(join(tmpdir(), "flotilla-cli-units-"));
});
afterAll(async () => {
  for (const a of apis) await a.stop();
  await nc?.close();
  await server?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

const cluster = () => cliCluster(server, nc, dir, apis);

const HELLO = "[Unit]\nDescription=Hello %i\n\n[Service]\nExecStart=/bin/sh -c 'while true; do echo hello %i; sleep 1; done'\n";
const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

describe("the fleetctl cycle through the CLI", () => {
  it("submit 9 / load 6 / start 3 hello@N, list, undo with stop/unload/destroy, twice", async () => {
    const c = await cluster();
    // Only the template is on disk: each hello@N.service path is instantiated from it.
    c.file("hello@.service", HELLO);
    const paths = range(9).map((i) => join(c.sub, `hello@${i}.service`));
    const names = (n: number) => range(n).map((i) => `hello@${i}.service`);
    for (let round = 0; round < 2; round++) {
      const s = await c.cli("submit", ...paths);
      expect(s.code, s.stderr).toBe(0);
      expect(s.stdout).toContain("Unit hello@9.service inactive");
      const l = await c.cli("load", "--no-block", ...names(6));
      expect(l.code, l.stderr).toBe(0);
      expect(l.stdout).toContain("Triggered unit hello@6.service load");
      const st = await c.cli("start", "--no-block", ...range(3).map((i) => `hello@${i}`));
      expect(st.code, st.stderr).toBe(0);

      const list = await c.cli("list-unit-files", "--no-legend", "--fields", "unit,dstate");
      expect(list.code, list.stderr).toBe(0);
      expect(list.stdout.trim().split("\n").map((r) => r.split(/\s+/).join(" "))).toEqual([
        ...range(3).map((i) => `hello@${i}.service launched`),
        ...[4, 5, 6].map((i) => `hello@${i}.service loaded`),
        ...[7, 8, 9].map((i) => `hello@${i}.service inactive`),
      ]);
      const cat = await c.cli("cat", "hello@5");
      expect(cat.stdout).toBe(HELLO);

      const stop = await c.cli("stop", "--no-block", ...names(3));
      expect(stop.code, stop.stderr).toBe(0);
      const after = await c.store.list();
      expect(after.filter((u) => u.desiredState === "loaded")).toHaveLength(6);
      const unload = await c.cli("unload", "--no-block", ...names(6));
      expect(unload.code, unload.stderr).toBe(0);
      expect((await c.store.list()).every((u) => u.desiredState === "inactive")).toBe(true);
      const d = await c.cli("destroy", "--no-block", ...names(9));
      expect(d.code, d.stderr).toBe(0);
      expect(d.stdout).toContain("Destroyed hello@1.service");
      const empty = await c.cli("list-unit-files");
      expect(empty.stdout.split(/\s+/).filter(Boolean)).toEqual(["UNIT", "HASH", "DSTATE", "STATE", "TARGET"]);
    }
  });
});
