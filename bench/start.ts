// npm run bench:start — submit→running latency on a 3-daemon local cluster: 200 /bin/sleep
// units started through the API (`start`, as `flotilla start --no-block` sends it), each one
// timed from its request to the first `running` state record in the states bucket (API →
// units bucket → leader engine → schedule → agent → process → state). Units 0-99 are pinned
// to the first machine ([X-Fleet] MachineID) so that it runs 100 tasks; its RSS is reported
// then. Targets: p50 ≤ 50 ms, p99 ≤ 200 ms, RSS < 120 MB. Bounded in time; stops every process
// it started, the daemons by PID and the sleeps by process group (daemons leave workloads
// running on purpose when they stop).
import { connect } from "@nats-io/transport-node";
import { uniquePrefix } from "../test/helpers/nats-server.js";
import { check } from "../test/helpers/check.js";
import { buildForDaemons, pct, rssMb, runBench, spawnDaemon, startNatsServer } from "./lib.js";
import { ensureBuckets } from "../src/nats/buckets.js";
import { Names, keys } from "../src/protocol/names.js";
import { decode, decodeAs } from "../src/protocol/codec.js";
import { UnitStateRecord } from "../src/protocol/messages.js";
import { ApiClient } from "../src/cli/client.js";

const UNITS = Number(process.env.BENCH_UNITS ?? 200);
const PINNED = Math.min(100, UNITS);
const PACE_MS = Number(process.env.BENCH_PACE_MS ?? 20);
const MACHINES = ["bench-1", "bench-2", "bench-3"];
const DEADLINE_MS = 120_000;

async function main(): Promise<void> {
  buildForDaemons();
  const server = await startNatsServer();
  const prefix = uniquePrefix("bench");
  const names = new Names(prefix);
  const nc = await connect({ servers: server.url });
  const buckets = await ensureBuckets(nc, names, { agentTtlMs: 10_000, leaseTtlMs: 5000 });
  const daemons = MACHINES.map((m) => spawnDaemon(server.url, prefix, ["--machine-id", m, "--agent-ttl", "10s", "--lease-ttl", "5s"], `daemon ${m}`));
  await check(async () => {
    let n = 0;
    for (const m of MACHINES) if (await buckets.machines.get(keys.machine(m))) n++;
    return n === MACHINES.length;
  }, 30_000, "3 machines registered", 100);
  await check(async () => (await buckets.leases.get(keys.lease("engine-leader")))?.operation === "PUT", 30_000, "an engine leader", 100);
  console.log(`nats-server ${server.url}; daemons ${daemons.map((d) => d.pid).join(", ")}; ${UNITS} units, one every ${PACE_MS} ms`);

  const submitted = new Map<string, number>();
  const running = new Map<string, number>();
  const where = new Map<string, string>();
  const stages = new Map<string, Map<string, number>>();
  const watch = await buckets.states.watch({ include: "updates" as never });
  void (async () => {
    for await (const e of watch) {
      if (e.operation !== "PUT") continue;
      const now = performance.now();
      try {
        const s = decodeAs(UnitStateRecord, e.value, e.key);
        const seen = stages.get(s.unit) ?? new Map<string, number>();
        if (!seen.has(s.taskState)) seen.set(s.taskState, now);
        stages.set(s.unit, seen);
        if (s.taskState === "running" && !running.has(s.unit)) {
          running.set(s.unit, now);
          where.set(s.unit, s.machineId);
        }
      } catch {
        /* not ours */
      }
    }
  })();

  // The schedule write splits the path: engine (submit→scheduled) and agent (scheduled→running).
  const scheduled = new Map<string, number>();
  const swatch = await buckets.schedule.watch({ include: "updates" as never });
  void (async () => {
    for await (const e of swatch) {
      const k = keys.parseSchedule(e.key);
      if (e.operation === "PUT" && k && !scheduled.has(k.unit)) scheduled.set(k.unit, performance.now());
    }
  })();

  const client = new ApiClient(nc, names, 30_000);
  const requests: Promise<unknown>[] = [];
  const t0 = Date.now();
  for (let i = 0; i < UNITS; i++) {
    const name = `sleep-${i}.service`;
    const machine = i < PINNED ? MACHINES[0]! : MACHINES[1 + (i % 2)]!;
    const contents = `[Service]\nExecStart=/bin/sleep 3600\n[X-Fleet]\nMachineID=${machine}\n`;
    submitted.set(name, performance.now());
    requests.push(client.request("start", { units: [{ name, contents }] }).catch((e) => console.error(`start ${name}: ${e}`)));
    await new Promise((r) => setTimeout(r, PACE_MS));
  }
  await Promise.all(requests);
  await check(() => running.size >= UNITS, DEADLINE_MS - (Date.now() - t0), `${UNITS} units running`, 100);

  const lat = [...submitted].map(([u, t]) => running.get(u)! - t).sort((a, b) => a - b);
  const perMachine = new Map<string, number>();
  for (const m of where.values()) perMachine.set(m, (perMachine.get(m) ?? 0) + 1);
  console.log(
    `submit→running over ${UNITS} units: p50 ${pct(lat, 50).toFixed(1)} ms, p90 ${pct(lat, 90).toFixed(1)} ms, ` +
      `p99 ${pct(lat, 99).toFixed(1)} ms, max ${lat[lat.length - 1]!.toFixed(1)} ms (targets: p50 ≤ 50 ms, p99 ≤ 200 ms)`,
  );
  const eng = [...submitted].map(([u, t]) => (scheduled.get(u) ?? NaN) - t).filter(Number.isFinite).sort((a, b) => a - b);
  const agt = [...scheduled].map(([u, t]) => (running.get(u) ?? NaN) - t).filter(Number.isFinite).sort((a, b) => a - b);
  if (eng.length && agt.length) {
    console.log(
      `  of which submit→scheduled (API + engine): p50 ${pct(eng, 50).toFixed(1)} ms, p99 ${pct(eng, 99).toFixed(1)} ms; ` +
        `scheduled→running (agent): p50 ${pct(agt, 50).toFixed(1)} ms, p99 ${pct(agt, 99).toFixed(1)} ms`,
    );
  }
  const stageLine = ["preparing", "starting", "running"].map((st) => {
    const d = [...scheduled].map(([u, t]) => (stages.get(u)?.get(st) ?? NaN) - t).filter(Number.isFinite).sort((a, b) => a - b);
    return d.length ? `${st} p50 ${pct(d, 50).toFixed(1)} ms` : `${st} -`;
  });
  console.log(`  agent stages after the schedule write (first state record seen): ${stageLine.join(", ")}`);
  const leaseEntry = await buckets.leases.get(keys.lease("engine-leader"));
  let leader = "?";
  try {
    leader = (decode(leaseEntry!.value) as { holder?: string }).holder ?? "?";
  } catch {
    /* unknown */
  }
  const perMachineAgent = MACHINES.map((m) => {
    const d = [...scheduled].filter(([u]) => where.get(u) === m).map(([u, t]) => running.get(u)! - t).sort((a, b) => a - b);
    return `${m}${leader.startsWith(`${m}/`) ? " (engine leader)" : ""} p50 ${d.length ? pct(d, 50).toFixed(1) : "-"} ms`;
  });
  console.log(`  scheduled→running per machine: ${perMachineAgent.join(", ")}`);
  console.log(`tasks per machine: ${[...perMachine].map(([m, n]) => `${m}=${n}`).join(", ")}`);
  // Let the first machine settle (GC, journal tailers) before reading its RSS.
  await new Promise((r) => setTimeout(r, 3000));
  const rss = daemons.map((d, i) => `${MACHINES[i]} ${rssMb(d.pid!)} MB`);
  console.log(`daemon RSS with ${perMachine.get(MACHINES[0]!) ?? 0} running tasks: ${rssMb(daemons[0]!.pid!)} MB (target < 120 MB); all: ${rss.join(", ")}`);
  watch.stop();
  swatch.stop();
  await nc.close();
}

runBench("bench:start", main, DEADLINE_MS + 60_000);
