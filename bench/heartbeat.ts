// npm run bench:heartbeat — 1,000 simulated machines in one process, each a real `heart` actor
// (the daemon's statechart and its KV put) at TTL 10s against a real nats-server; reports
// puts/s, CPU% and RSS of this process and of nats-server, list-machines latency through a real
// daemon's API with 1,000 machines listed (target < 200 ms), and a lone daemon's idle RSS
// (target < 80 MB). Bounded in time; stops everything it started, by PID.
import { connect } from "@nats-io/transport-node";
import { createActor, fromPromise, type Actor } from "xstate";
import { uniquePrefix } from "../test/helpers/nats-server.js";
import { check } from "../test/helpers/check.js";
import { buildForDaemons, pct, procStat, runBench, spawnDaemon, startNatsServer } from "./lib.js";
import { ensureBuckets } from "../src/nats/buckets.js";
import { Names } from "../src/protocol/names.js";
import { heartMachine } from "../src/machine/heart.machine.js";
import { kvBeat } from "../src/server/server.js";
import type { MachineRecord } from "../src/protocol/messages.js";

const MACHINES = Number(process.env.BENCH_MACHINES ?? 1000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 30);
const TTL_MS = 10_000;
const REQUESTS = 20;

async function main(): Promise<void> {
  buildForDaemons();
  const server = await startNatsServer();
  const nc = await connect({ servers: server.url });
  const prefix = uniquePrefix("bench");
  const names = new Names(prefix);
  const buckets = await ensureBuckets(nc, names, { agentTtlMs: TTL_MS, leaseTtlMs: 5000 });
  console.log(`nats-server ${server.url} (pid ${server.pid}); ${MACHINES} machines, TTL ${TTL_MS / 1000}s, ${SECONDS}s run`);

  let oks = 0;
  let fails = 0;
  const hearts: Actor<typeof heartMachine>[] = [];
  const started = Date.now();
  for (let i = 0; i < MACHINES; i++) {
    const id = `sim${String(i).padStart(5, "0")}${"0".repeat(24)}`.slice(0, 32);
    const rec: Omit<MachineRecord, "heartbeatAt"> = {
      id,
      hostname: `sim-${i}`,
      publicIp: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
      metadata: { region: ["us-west", "us-east", "eu"][i % 3]!, rack: String(i % 40) },
      capacity: { cpu: 8, memory: 32 * 1024 ** 3 },
      availability: "active",
      version: "bench",
      startedAt: started,
      session: `s${i}`,
    };
    const heart = createActor(heartMachine.provide({ actors: { beat: fromPromise(kvBeat(buckets, TTL_MS, () => rec)) } }), {
      input: { ttlMs: TTL_MS },
    });
    heart.on("heart.ok", () => oks++);
    heart.on("heart.failed", () => fails++);
    hearts.push(heart);
  }
  // Real machines do not start in the same millisecond: spread the first beats over TTL/2.
  const spread = TTL_MS / 2 / MACHINES;
  for (let i = 0; i < MACHINES; i++) {
    setTimeout(() => hearts[i]!.start(), i * spread);
  }
  await check(() => oks >= MACHINES, 30_000, `${MACHINES} first beats`, 100);
  console.log(`all ${MACHINES} machines registered in ${Date.now() - started} ms`);

  // A real daemon serves list-machines for this prefix.
  const apiDaemon = spawnDaemon(server.url, prefix, ["--agent-ttl", "10s", "--no-engine"], "API daemon");
  await check(async () => {
    const m = await nc.request(names.apiSubject("list-machines"), "", { timeout: 5000 });
    return (JSON.parse(new TextDecoder().decode(m.data)) as unknown[]).length > MACHINES;
  }, 30_000, "the daemon's API", 200);

  // Steady state: count puts and CPU over the measured window.
  const okAt0 = oks;
  const cpu0 = process.cpuUsage();
  const nats0 = procStat(server.pid!);
  const t0 = Date.now();
  let maxRss = 0;
  const sampler = setInterval(() => (maxRss = Math.max(maxRss, process.memoryUsage().rss)), 500);
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  clearInterval(sampler);
  const wall = Date.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const nats1 = procStat(server.pid!);
  const puts = oks - okAt0;
  console.log(`heartbeat puts/s: ${(puts / (wall / 1000)).toFixed(1)} (${puts} puts in ${(wall / 1000).toFixed(1)} s; expected ${(MACHINES / (TTL_MS / 2000)).toFixed(0)}/s; failed beats: ${fails})`);
  console.log(`bench process CPU: ${(((cpu.user + cpu.system) / 1000 / wall) * 100).toFixed(1)}% of one core; RSS ${(process.memoryUsage().rss / 1048576).toFixed(1)} MB (max ${(maxRss / 1048576).toFixed(1)} MB)`);
  console.log(`nats-server CPU: ${(((nats1.cpuMs - nats0.cpuMs) / wall) * 100).toFixed(1)}% of one core; RSS ${(nats1.rssKb / 1024).toFixed(1)} MB`);

  // The first requests warm the daemon's JIT; report the first one, measure after three.
  const cold = performance.now();
  await nc.request(names.apiSubject("list-machines"), "", { timeout: 10_000 });
  const coldMs = performance.now() - cold;
  for (let i = 0; i < 2; i++) await nc.request(names.apiSubject("list-machines"), "", { timeout: 10_000 });
  const lat: number[] = [];
  let count = 0;
  for (let i = 0; i < REQUESTS; i++) {
    const s = performance.now();
    const m = await nc.request(names.apiSubject("list-machines"), "", { timeout: 10_000 });
    lat.push(performance.now() - s);
    count = (JSON.parse(new TextDecoder().decode(m.data)) as unknown[]).length;
  }
  lat.sort((a, b) => a - b);
  console.log(`list-machines with ${count} machines via ${names.apiSubject("list-machines")}: p50 ${pct(lat, 50).toFixed(1)} ms, p99 ${pct(lat, 99).toFixed(1)} ms, max ${lat[lat.length - 1]!.toFixed(1)} ms over ${REQUESTS} requests after 3 warm-up (first request ${coldMs.toFixed(1)} ms) (target < 200 ms)`);
  const apiRss = procStat(apiDaemon.pid!).rssKb;

  for (const h of hearts) h.stop();

  // A lone daemon (engine and agent on, nothing to do) on its own prefix.
  const lonePrefix = uniquePrefix("lone");
  const lone = spawnDaemon(server.url, lonePrefix, ["--agent-ttl", "10s"], "lone daemon");
  await check(async () => {
    const m = await nc.request(new Names(lonePrefix).apiSubject("list-machines"), "", { timeout: 2000 });
    return (JSON.parse(new TextDecoder().decode(m.data)) as unknown[]).length === 1;
  }, 30_000, "the lone daemon", 200);
  await new Promise((r) => setTimeout(r, 5000)); // let it settle (JIT, GC) before reading RSS
  const loneRss = procStat(lone.pid!).rssKb;
  console.log(`lone daemon idle RSS: ${(loneRss / 1024).toFixed(1)} MB (target < 80 MB); API daemon after serving ${MACHINES} machines: ${(apiRss / 1024).toFixed(1)} MB`);
  await nc.close();
}

runBench("bench:heartbeat", main, (SECONDS + 150) * 1000);
