// npx tsx bench/agent-start.ts — the agent alone (in process, no engine): N=100 schedule entries
// written as the leader would, one every 20 ms; schedule put → first state record per task state
// (preparing, starting, running): p50/p99. Stops every process it started.
import { NatsServer, uniquePrefix } from "../test/helpers/nats-server.js";
import { agentHost, schedule, killStateDirWorkloads } from "../test/helpers/agent-host.js";
import { decodeAs } from "../src/protocol/codec.js";
import { UnitStateRecord } from "../src/protocol/messages.js";
import { check } from "../test/helpers/check.js";
const server = await NatsServer.start();
const h = await agentHost({ url: server.url, prefix: uniquePrefix("ab"), machineId: "m1", agentTtlMs: 10_000 });
const running = new Map<string, number>();
const firstSeen = new Map<string, Map<string, number>>();
const w = await h.ctx.buckets.states.watch();
void (async () => { for await (const e of w) { if (e.operation !== "PUT") continue; const s = decodeAs(UnitStateRecord, e.value, "x"); const m = firstSeen.get(s.unit) ?? new Map(); if (!m.has(s.taskState)) m.set(s.taskState, performance.now()); firstSeen.set(s.unit, m); if (s.taskState === "running" && !running.has(s.unit)) running.set(s.unit, performance.now()); } })();
const sub = new Map<string, number>();
const N = Number(process.env.N ?? 100);
for (let i = 0; i < N; i++) { const u = `s${i}.service`; sub.set(u, performance.now()); await schedule(h.ctx.buckets, "m1", u, "[Service]\nExecStart=/bin/sleep 3600\n"); await new Promise((r) => setTimeout(r, 20)); }
await check(() => running.size >= N, 60_000, "all running", 50);
const lat = [...sub].map(([u, t]) => running.get(u)! - t).sort((a, b) => a - b);
console.log("p50", lat[Math.floor(N / 2)]!.toFixed(1), "p99", lat[Math.floor(N * 0.99)]!.toFixed(1));
const stages = ["preparing", "ready", "starting", "running"];
for (const st of stages) { const d = [...sub].map(([u, t]) => (firstSeen.get(u)?.get(st) ?? NaN) - t).filter(Number.isFinite).sort((a, b) => a - b); console.log(st, "p50", d[Math.floor(d.length / 2)]?.toFixed(1)); }
w.stop(); await h.close(); killStateDirWorkloads(h.stateDir); await server.dispose(); process.exit(0);
