// A daemon cut off from NATS must not swallow API requests (network namespaces,
// test/helpers/netns.ts). Until nats-server misses its pings, the cut-off daemon stays in the
// API's queue group and requests routed to it time out; the CLI asks reads again, and the
// shipped ping settings (2 s, 2 missed) bound how long the server keeps routing to it.
// `flotilla health` is asked inside each host's namespace: it fails on the cut-off host.
import { spawn } from "node:child_process";
import { afterAll, describe, expect, it } from "vitest";
import { NetnsLab, type NetnsHost } from "../helpers/netns.js";
import { check } from "../helpers/check.js";
import { uniquePrefix } from "../helpers/nats-server.js";
import { BIN, runCli, type CliResult } from "../helpers/cli.js";

const labs: NetnsLab[] = [];
afterAll(async () => {
  await Promise.all(labs.map((l) => l.dispose()));
});

/** `flotilla args...` inside a host's namespace. */
function cliIn(host: NetnsHost, args: string[], timeoutMs = 20_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn("ip", ["netns", "exec", host.netns, process.execPath, BIN, ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LOG_LEVEL: "warn" } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += String(d)));
    child.stderr.on("data", (d) => (stderr += String(d)));
    const t = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

describe("API requests while a daemon is cut off", () => {
  it("the CLI's reads succeed although the cut-off daemon stays in the queue group; flotilla health fails only there", async () => {
    // A long ping interval keeps the cut-off daemon in the queue group for the whole test.
    const lab = await NetnsLab.create({ hosts: 2, pingInterval: "2m" });
    labs.push(lab);
    const prefix = uniquePrefix("netns-retry");
    const [d1, d2] = [await lab.startDaemon("h1", { prefix, agentTtl: "3s" }), await lab.startDaemon("h2", { prefix, agentTtl: "3s" })];
    const g = ["--nats", lab.natsUrl, "--prefix", prefix];
    const health = (d: typeof d1) => cliIn(d.host, [...g, "health", "--state-dir", d.stateDir, "--machine-id", d.machineId]);
    expect((await health(d2)).code).toBe(0);

    lab.cut("h2");
    const codes: (number | null)[] = [];
    const started = Date.now();
    for (let i = 0; i < 6; i++) {
      const r = await runCli([...g, "--request-timeout", "1000", "list-machines", "--json"], { timeoutMs: 20_000 });
      codes.push(r.code);
      if (r.code !== 0) process.stderr.write(`list-machines failed: ${r.stderr}\n`);
    }
    process.stderr.write(`netns api retry: 6 list-machines with one responder cut off took ${Date.now() - started} ms\n`);
    // Without the retry each request has one chance in two to reach the cut-off daemon.
    expect(codes).toEqual([0, 0, 0, 0, 0, 0]);

    const cut = await health(d2);
    expect(cut.code).toBe(1);
    expect(cut.stderr).toMatch(/Error: .*\[(nats_unavailable|timeout|unknown_machine)\]/);
    expect((await health(d1)).code).toBe(0);

    lab.heal("h2");
    await check(async () => (await health(d2)).code === 0, 20_000, "flotilla health on h2 after healing");
    await d1.stop();
    const gone = await health(d1);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain(`machine ${d1.machineId} has no record`);
  });

  // nats-server 2.9 pings a client only after a ping interval without traffic either way, and
  // the 2 s idle heartbeats of a daemon's own consumers are traffic: the shipped ping settings
  // never fire for a cut-off daemon (measured: still in the queue group 30 s after the cut).
  // What drops it is the server's TCP giving up on retransmitting those heartbeats; the
  // kernel's default (tcp_retries2 15) takes about 15 minutes, the compose file's 5 about 15 s.
  it("nats-server drops a cut-off daemon once its TCP gives up (tcp_retries2 5, as docker-compose.yml sets)", async () => {
    const lab = await NetnsLab.create({ hosts: 2, tcpRetries2: 5 }); // ping_interval "2s", ping_max 2, as nats.conf
    labs.push(lab);
    const prefix = uniquePrefix("netns-ping");
    await lab.startDaemon("h1", { prefix, agentTtl: "3s" });
    await lab.startDaemon("h2", { prefix, agentTtl: "3s" });
    const h2 = lab.host("h2");
    expect((await lab.connections()).some((c) => c.ip === h2.ip)).toBe(true);
    const cutAt = Date.now();
    lab.cut(h2);
    // Watched on the monitoring endpoint: an API request would be one more message the server
    // tries to deliver to the cut-off client.
    await check(async () => !(await lab.connections()).some((c) => c.ip === h2.ip), 40_000, "nats-server to drop h2's connections", 200);
    const droppedMs = Date.now() - cutAt;
    process.stderr.write(`netns ping: nats-server dropped the cut-off daemon ${droppedMs} ms after the cut (tcp_retries2 5)\n`);
    expect(droppedMs).toBeLessThan(25_000);
  });
});
