// The unit verbs through the real CLI (compiled, as a user runs it) against the API running in
// this process: listings.
import { describe, expect, it } from "vitest";
import { useCliCluster } from "../helpers/cli-cluster.js";

const cluster = useCliCluster();

const HELLO = "[Unit]\nDescription=Hello %i\n\n[Service]\nExecStart=/bin/sh -c 'while true; do echo hello %i; sleep 1; done'\n";
const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

describe("listings through the CLI", () => {
  it("list-unit-files: 20 units sorted by name, legend, --json, --fields, --full; --replace changes cat and keeps the count", async () => {
    const c = await cluster();
    const order = [...range(20)].sort(() => Math.random() - 0.5);
    const files = order.map((i) => c.file(`u${String(i).padStart(2, "0")}.service`, `[Unit]\nDescription=unit ${i}\n[Service]\nExecStart=/bin/true\n`));
    const sub = await c.cli("submit", ...files);
    expect(sub.code, sub.stderr).toBe(0);
    const t = await c.cli("list-unit-files");
    const lines = t.stdout.trim().split("\n");
    expect(lines[0]!.split(/\s+/)).toEqual(["UNIT", "HASH", "DSTATE", "STATE", "TARGET"]);
    expect(lines.slice(1).map((l) => l.split(/\s+/)[0])).toEqual(range(20).map((i) => `u${String(i).padStart(2, "0")}.service`));
    expect(lines[1]!.split(/\s+/).slice(1)).toEqual([expect.stringMatching(/^[0-9a-f]{7}$/), "inactive", "inactive", "-"]);
    const full = await c.cli("list-unit-files", "-l", "--no-legend", "--fields", "hash,desc");
    expect(full.stdout.split("\n")[0]).toMatch(/^[0-9a-f]{40}\s+unit 1$/);
    const j = await c.cli("list-unit-files", "--json");
    const rows = JSON.parse(j.stdout);
    expect(rows).toHaveLength(20);
    expect(rows[0]).toMatchObject({ unit: "u01.service", desiredState: "inactive", global: false, description: "unit 1" });

    const replaced = c.file("u07.service", "[Unit]\nDescription=replaced\n[Service]\nExecStart=/bin/false\n");
    const noReplace = await c.cli("submit", replaced);
    expect(noReplace.code, noReplace.stderr).toBe(0);
    expect(noReplace.stderr).toMatch(/WARNING: unit u07\.service in the cluster differs.*--replace/);
    expect((await c.cli("cat", "u07.service")).stdout).toBe("[Unit]\nDescription=unit 7\n[Service]\nExecStart=/bin/true\n");
    const r = await c.cli("submit", "--replace", replaced);
    expect(r.code, r.stderr).toBe(0);
    expect((await c.cli("cat", "u07.service")).stdout).toBe("[Unit]\nDescription=replaced\n[Service]\nExecStart=/bin/false\n");
    expect(JSON.parse((await c.cli("list-unit-files", "--json")).stdout)).toHaveLength(20);
  });

  it("list-units and status show what the machines report", async () => {
    const c = await cluster();
    await c.store.start([{ name: "web.service", contents: "[Unit]\nDescription=Web\n[Service]\nExecStart=/bin/sleep 600\n" }]);
    await c.putState("web.service", "running", "m-test", { pid: 321 });
    await c.putState("web.service", "failed", "m2", { exitCode: 2, error: "exited with 2" });
    const lu = await c.cli("list-units");
    expect(lu.stdout.trim().split("\n").map((l) => l.split(/\s+/))).toEqual([
      ["UNIT", "MACHINE", "ACTIVE", "SUB"],
      ["web.service", "m-test/10.0.0.1", "active", "running"],
      ["web.service", "m2", "failed", "failed"],
    ]);
    const lj = JSON.parse((await c.cli("list-units", "--json")).stdout);
    expect(lj[0]).toMatchObject({ unit: "web.service", machine: "m-test", pid: 321, taskState: "running" });
    const s = await c.cli("status", "web");
    expect(s.code, s.stderr).toBe(0);
    expect(s.stdout).toContain("● web.service - Web");
    expect(s.stdout).toContain("Desired: launched");
    expect(s.stdout).toMatch(/m-test\/10\.0\.0\.1: loaded active running \(task running\).*pid 321/);
    expect(s.stdout).toContain("Last error: m2: failed, exit code 2, exited with 2");
  });
});
