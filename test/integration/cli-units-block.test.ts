// The unit verbs through the real CLI (compiled, as a user runs it) against the API running in
// this process: bad input, and blocking verbs tested without an agent (the test writes the
// states records an agent would).
import { describe, expect, it } from "vitest";
import { join } from "node:path";
import { check } from "../helpers/check.js";
import { keys } from "../../src/protocol/names.js";
import { useCliCluster } from "../helpers/cli-cluster.js";

const cluster = useCliCluster();

describe("bad input through the CLI: a clear error, exit code, nothing changed", () => {
  it("refuses big, binary, badly named, missing and malformed input", async () => {
    const c = await cluster();
    await c.store.start([{ name: "keep.service", contents: "[Service]\nExecStart=/bin/true\n" }]);
    const before = await c.snapshot();
    const big = c.file("big.service", `[Service]\nExecStart=/bin/true\n${"#".repeat(1024 * 1024)}\n`);
    const bin = c.file("bin.service", Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x01, 0x00, 0xff, 0xfe, 0x00, 0x10]) as unknown as string);
    const bad = c.file("bad.service", "[Service]\nExecStart=/bin/true\n[X-Fleet]\nGlobal=true\nMachineOf=other.service\n");
    const cases: [args: string[], code: number, stderr: RegExp][] = [
      [["submit", big], 1, /big\.service is \d+ bytes; a unit file may hold at most 262144 bytes.*\[payload_too_large\]/],
      [["start", "--no-block", bin], 1, /bin\.service.*(NUL|binary|not.*text).*\[invalid_unit_file\]/i],
      [["submit", bad], 1, /bad\.service.*\(line \d+\) \[invalid_unit_file\]/],
      [["start", "--no-block", "my unit"], 1, /invalid unit name "my unit": a space is not allowed.*\[invalid_unit_name\]/],
      [["stop", "etc/x.service"], 1, /etc\/x\.service is a path; give the unit's name.*\[invalid_unit_name\]/],
      [["start", "--no-block", "nope.service"], 1, /nope\.service does not exist in the cluster.*\[unknown_unit\]/],
      [["start", "--no-block", join(c.sub, "missing.service")], 1, /no such unit file: .*missing\.service/],
      [["destroy", "ghost"], 1, /ghost\.service does not exist.*\[unknown_unit\]/],
      [["cat", "ghost"], 1, /\[unknown_unit\]/],
      [["status", "ghost"], 1, /\[unknown_unit\]/],
      [["submit", "--replace", c.file("keep.service", "[Service]\nExecStart=/bin/false\n")], 1, /cannot replace keep\.service: it is launched.*\[illegal_state_change\]/],
      [["start", "--block-attempts", "many", "keep"], 2, /--block-attempts wants a whole number/],
      [["list-unit-files", "--fields", "unit,bogus"], 2, /unknown field\(s\) bogus/],
      [["start", "--frobnicate", "keep"], 2, /unknown option/],
      [["stop"], 2, /missing required argument/],
    ];
    for (const [args, code, stderr] of cases) {
      const r = await c.cli(...args);
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(code);
      expect(r.stderr, args.join(" ")).toMatch(stderr);
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack traces
    }
    expect(await c.snapshot()).toBe(before);
    const ok = await c.cli("list-unit-files", "--no-legend", "--fields", "unit");
    expect(ok.stdout).toBe("keep.service\n");
  });
});

describe("blocking verbs watch the states bucket", () => {
  it("start returns once a machine reports the unit running; times out with exit 1 when none does", async () => {
    const c = await cluster();
    const f = c.file("blk.service", "[Service]\nExecStart=/bin/sleep 600\n");
    const run = c.cli("start", "--block-attempts", "40", f);
    await check(async () => (await c.store.get("blk.service"))?.desiredState === "launched", 15_000, "blk.service launched in the units bucket");
    await c.putState("blk.service", "starting");
    await c.putState("blk.service", "running", "m-test", { pid: 99 });
    const r = await run;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("Waiting for blk.service to be launched (waiting for the engine to place it)...");
    expect(r.stdout).toContain("Unit blk.service launched on m-test/10.0.0.1");

    const t0 = Date.now();
    const to = await c.cli("start", "--block-attempts", "2", c.file("never.service", "[Service]\nExecStart=/bin/true\n"));
    expect(to.code, to.stderr).toBe(1);
    expect(to.stdout).toContain("Waiting for never.service to be launched");
    expect(to.stderr).toMatch(
      /Error: timed out after 1\.0 s waiting for never\.service to be launched: no machine reports it; no engine has placed it.*\[timeout\]/,
    );
    expect(Date.now() - t0).toBeLessThan(15_000);
    // The request itself was made: the unit is launched in the cluster.
    expect((await c.store.get("never.service"))?.desiredState).toBe("launched");
  });

  it("load waits for ready, stop for not running, destroy for the states to go, restart for stop then run", async () => {
    const c = await cluster();
    await c.store.submit([{ name: "svc.service", contents: "[Service]\nExecStart=/bin/sleep 600\n" }]);
    const load = c.cli("load", "--block-attempts", "40", "svc");
    await check(async () => (await c.store.get("svc.service"))?.desiredState === "loaded", 15_000, "loaded");
    await c.putState("svc.service", "preparing");
    await c.putState("svc.service", "ready");
    const l = await load;
    expect(l.code, l.stderr).toBe(0);
    expect(l.stdout).toContain("Unit svc.service loaded on m-test/10.0.0.1");

    await c.store.start([{ name: "svc.service" }]);
    await c.putState("svc.service", "running");
    const stop = c.cli("stop", "--block-attempts", "40", "svc.service");
    await check(async () => (await c.store.get("svc.service"))?.desiredState === "loaded", 15_000, "stopped in units");
    await c.putState("svc.service", "shutdown");
    const s = await stop;
    expect(s.code, s.stderr).toBe(0);
    expect(s.stdout).toContain("Waiting for svc.service to be stopped...");
    expect(s.stdout).toContain("Unit svc.service stopped");

    await c.store.start([{ name: "svc.service" }]);
    await c.putState("svc.service", "running");
    const restart = c.cli("restart", "--block-attempts", "40", "svc.service");
    await check(async () => (await c.store.get("svc.service"))?.desiredState === "loaded", 15_000, "restart's stop");
    await c.putState("svc.service", "shutdown");
    await check(async () => (await c.store.get("svc.service"))?.desiredState === "launched", 15_000, "restart's start");
    await c.putState("svc.service", "running");
    const rs = await restart;
    expect(rs.code, rs.stderr).toBe(0);
    expect(rs.stdout).toMatch(/Unit svc\.service stopped[\s\S]*Unit svc\.service launched/);

    const destroy = c.cli("destroy", "--block-attempts", "40", "svc");
    await check(async () => (await c.store.get("svc.service")) === undefined, 15_000, "destroyed in units");
    await c.api.buckets.states.delete(keys.state("svc.service", "m-test"));
    const d = await destroy;
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toContain("Destroyed svc.service");
    expect(d.stdout).toContain("Unit svc.service removed from every machine");
  });

  it("load of 200 units waits with one watch and one snapshot of the states bucket, not one watch per unit", async () => {
    const c = await cluster();
    const names = Array.from({ length: 200 }, (_, i) => `many${i}.service`);
    await c.store.submit(names.map((name) => ({ name, contents: "[Service]\nExecStart=/bin/sleep 600\n" })));
    // Half are ready before the CLI starts (the snapshot finds them), half after (the watch does).
    for (const u of names.slice(0, 100)) await c.putState(u, "ready");
    const stream = `KV_${c.api.names.bucket("states")}`;
    const creates: string[] = [];
    const sub = c.nc.subscribe("$JS.API.CONSUMER.>", {
      callback: (_e, m) => {
        if (m.subject.includes(stream) && m.subject.includes("CREATE")) creates.push(m.subject);
      },
    });
    try {
      const load = c.cli("load", "--block-attempts", "60", ...names);
      await check(async () => (await c.store.get(names[199]!))?.desiredState === "loaded", 15_000, "all loaded in the units bucket");
      await check(async () => creates.length > 0, 15_000, "the CLI watches the states bucket");
      for (const u of names.slice(100)) await c.putState(u, "ready");
      const r = await load;
      expect(r.code, r.stderr).toBe(0);
      for (const u of names) expect(r.stdout).toContain(`Unit ${u} loaded on m-test/10.0.0.1`);
      // One watch (and at most a retry or two), where it used to be 200 watches and 200 key listings.
      expect(creates.length, creates.join("\n")).toBeLessThanOrEqual(3);
    } finally {
      sub.unsubscribe();
    }
  });
});
