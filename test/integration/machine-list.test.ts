// list-machines as users see it: the CLI table and --json with two real daemons, the raw API
// request the NATS CLI sends (`nats req flotilla.api.list-machines ''`), the micro service
// discovery (`nats micro ls`), a garbage value in the bucket, and availability changes.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/nats-core";
import { openKv } from "../../src/nats/buckets.js";
import { NatsServer, uniquePrefix } from "../helpers/nats-server.js";
import { check } from "../helpers/check.js";
import { runCli } from "../helpers/cli.js";
import { startDaemon, type RunningDaemon } from "../helpers/daemon.js";
import { Names } from "../../src/protocol/names.js";

let server: NatsServer;
let nc: NatsConnection;
const running: RunningDaemon[] = [];
const prefix = uniquePrefix("list");
let a: RunningDaemon;
let b: RunningDaemon;

beforeAll(async () => {
  server = await NatsServer.start();
  nc = await connect({ servers: server.url });
  const started = await Promise.allSettled([
    startDaemon({ server, prefix, metadata: "region=us-west,az=1", extraArgs: ["--public-ip", "10.0.0.1", "--no-engine"] }),
    startDaemon({ server, prefix, machineId: "beta-machine", metadata: { region: "eu" }, extraArgs: ["--public-ip", "10.0.0.2", "--no-engine"] }),
  ]);
  for (const r of started) if (r.status === "fulfilled") running.push(r.value);
  for (const r of started) if (r.status === "rejected") throw r.reason;
  [a, b] = running;
});

afterAll(async () => {
  for (const d of running) await d.stop();
  await nc?.close();
  await server?.dispose();
});

const cli = (...args: string[]) => runCli(["--nats", server.url, "--prefix", prefix, ...args]);

describe("list-machines", () => {
  it("lists both machines with IP and metadata, short IDs by default", async () => {
    const r = await cli("list-machines");
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^MACHINE\s+IP\s+METADATA$/);
    expect(lines).toHaveLength(3);
    const short = `${a.machineId.slice(0, 8)}...`;
    const rowA = lines.find((l) => l.startsWith(short));
    expect(rowA).toMatch(/10\.0\.0\.1\s+az=1,region=us-west$/);
    const rowB = lines.find((l) => l.startsWith("beta-mac..."));
    expect(rowB).toMatch(/10\.0\.0\.2\s+region=eu$/);
    expect(r.stdout).not.toContain(a.machineId); // full ID only with -l
  });

  it("-l shows full IDs, --no-legend drops the header, --fields picks columns", async () => {
    const r = await cli("list-machines", "-l", "--no-legend");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(a.machineId);
    expect(r.stdout).toContain("beta-machine");
    expect(r.stdout).not.toContain("MACHINE");
    const f = await cli("list-machines", "--fields", "machine,availability", "-l");
    expect(f.code, f.stderr).toBe(0);
    expect(f.stdout.split("\n")[0]).toMatch(/^MACHINE\s+AVAILABILITY$/);
    expect(f.stdout).toMatch(/beta-machine\s+active/);
    const bad = await cli("list-machines", "--fields", "nope");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("unknown field(s) nope");
  });

  it("--json prints the machine records", async () => {
    const r = await cli("list-machines", "--json");
    expect(r.code, r.stderr).toBe(0);
    const rows = JSON.parse(r.stdout) as { id: string; publicIp: string; metadata: Record<string, string>; capacity: { cpu: number } }[];
    expect(rows.map((x) => x.id).sort()).toEqual([a.machineId, "beta-machine"].sort());
    const rb = rows.find((x) => x.id === "beta-machine")!;
    expect(rb.metadata).toEqual({ region: "eu" });
    expect(rb.publicIp).toBe("10.0.0.2");
    expect(rb.capacity.cpu).toBeGreaterThan(0);
  });

  it("answers a raw request the way `nats req <prefix>.api.list-machines ''` sends it", async () => {
    const names = new Names(prefix);
    // The NATS CLI sends the literal argument; '' in a shell is an empty body.
    for (const body of ["", "''", "{}"]) {
      const m = await nc.request(names.apiSubject("list-machines"), body, { timeout: 5000 });
      const rows = JSON.parse(new TextDecoder().decode(m.data)) as { id: string }[];
      expect(rows.map((x) => x.id)).toContain("beta-machine");
    }
    const bad = await nc.request(names.apiSubject("list-machines"), "{not json", { timeout: 5000 });
    expect(bad.headers?.get("Nats-Service-Error-Code")).toBe("400");
    expect(JSON.parse(new TextDecoder().decode(bad.data)).error.code).toBe("bad_json");
  });

  it("is found by service discovery as `nats micro ls` does ($SRV.PING.flotilla)", async () => {
    const inbox = `_INBOX.${Math.random().toString(36).slice(2)}`;
    const seen: { name: string; metadata?: Record<string, string> }[] = [];
    const sub = nc.subscribe(inbox, { callback: (_e, m) => {
      seen.push(JSON.parse(new TextDecoder().decode(m.data)));
    } });
    nc.publish("$SRV.PING.flotilla", "", { reply: inbox });
    await check(() => seen.filter((s) => s.metadata?.prefix === prefix).length >= 2, 5000, "two flotilla services of this prefix");
    sub.unsubscribe();
    expect(seen.find((s) => s.metadata?.machine === "beta-machine")?.name).toBe("flotilla");
  });

  it("skips a garbage value written by hand into the machines bucket", async () => {
    const kv = await openKv(nc, new Names(prefix).bucket("machines"));
    await kv.put("garbage-1", new TextEncoder().encode("this is not msgpack {"));
    await kv.put("garbage-2", new TextEncoder().encode(JSON.stringify({ id: 42 })));
    const r = await cli("list-machines", "--json");
    expect(r.code, r.stderr).toBe(0);
    const ids = (JSON.parse(r.stdout) as { id: string }[]).map((x) => x.id);
    expect(ids.sort()).toEqual([a.machineId, "beta-machine"].sort());
    // Both daemons still serve (nothing crashed).
    expect(a.child.exitCode).toBeNull();
    expect(b.child.exitCode).toBeNull();
    await check(() => /skipping a bad record/.test(a.output() + b.output()), 5000, "a log line about the skipped record");
    await kv.purge("garbage-1");
    await kv.purge("garbage-2");
  });

  it("changes availability on the machine control subject and re-puts the record", async () => {
    const subject = new Names(prefix).machineControlSubject("beta-machine", "availability");
    const m = await nc.request(subject, JSON.stringify({ availability: "drain" }), { timeout: 5000 });
    expect(JSON.parse(new TextDecoder().decode(m.data)).availability).toBe("drain");
    const r = await cli("list-machines", "--fields", "machine,availability");
    expect(r.stdout).toMatch(/beta-mac\.\.\.\s+drain/);
    const bad = await nc.request(subject, JSON.stringify({ availability: "sleep" }), { timeout: 5000 });
    expect(JSON.parse(new TextDecoder().decode(bad.data)).error.message).toContain('"sleep"');
    await nc.request(subject, JSON.stringify({ availability: "active" }), { timeout: 5000 });
  });

  it("keeps availability across a restart (state dir)", async () => {
    const subject = new Names(prefix).machineControlSubject(a.machineId, "availability");
    await nc.request(subject, JSON.stringify({ availability: "pause" }), { timeout: 5000 });
    expect(await a.stop()).toBe(0);
    const again = await startDaemon({ server, prefix, stateDir: a.stateDir, extraArgs: ["--no-engine"] });
    running.push(again);
    const r = await cli("list-machines", "--json");
    const row = (JSON.parse(r.stdout) as { id: string; availability: string }[]).find((x) => x.id === a.machineId);
    expect(row?.availability).toBe("pause");
  });
});
