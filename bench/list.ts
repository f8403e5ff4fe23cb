// npm run bench:list — listings at 100,000 units through the CLI (issue 15): units (and a state
// per unit) put straight into the buckets of a nats-server at its default max_payload (1 MB), one
// real daemon (no engine: nothing to place, the units are inactive), then `flotilla
// list-unit-files` and `flotilla list-units` as a user runs them, timed from the spawn of the
// CLI to its first row on stdout and to its exit. Prints
//   list 100k: first row <ms> ms, all rows <ms> ms            (list-unit-files; targets 500 ms, 5 s)
// plus the same for list-units, the first listing's cost (the daemon starts its index then), and
// the daemon's RSS idle, before any listing, and with the index of 100,000 units and states, and
//   list 100k: daemon loop max <ms> ms while listing                    (issue 15: about 50 ms at most)
// the longest the daemon held its event loop while it answered the CLI's listings, measured in
// the daemon by bench/loop-monitor.mjs (preloaded with NODE_OPTIONS; the index start's own figure
// is printed beside it).
// Bounded in time; stops everything it started.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { connect } from "@nats-io/transport-node";
import { NatsServer, uniquePrefix } from "../test/helpers/nats-server.js";
import { check } from "../test/helpers/check.js";
import { BIN } from "../test/helpers/cli.js";
import { buildForDaemons, rssMb, runBench, spawnDaemon, stopAll } from "./lib.js";
import { ensureBuckets } from "../src/nats/buckets.js";
import { Names, keys } from "../src/protocol/names.js";
import { encode } from "../src/protocol/codec.js";
import type { UnitRecord, UnitStateRecord } from "../src/protocol/messages.js";

const UNITS = Number(process.env.BENCH_UNITS ?? 100_000);
const WINDOW = 2048;
const CONTENTS = "[Unit]\nDescription=bench %i\n\n[Service]\nExecStart=/bin/sleep 600\n";
const HASH = createHash("sha1").update(CONTENTS).digest("hex");

async function pipelined<T>(items: T[], f: (t: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += WINDOW) await Promise.all(items.slice(i, i + WINDOW).map(f));
}

/** Runs the CLI; ms to the first line after the legend, and to its exit; the rows it printed. */
function timeCli(url: string, prefix: string, args: string[], legend = 1): Promise<{ firstMs: number; allMs: number; rows: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const c = spawn(process.execPath, [BIN, "--nats", url, "--prefix", prefix, ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LOG_LEVEL: "warn" } });
    let firstMs = -1;
    let lines = 0;
    let err = "";
    c.stdout.on("data", (d: Buffer) => {
      for (const b of d) if (b === 10) lines++;
      if (firstMs < 0 && lines >= legend + 1) firstMs = performance.now() - t0;
    });
    c.stderr.on("data", (d) => (err += String(d)));
    c.once("error", reject);
    c.once("close", (code) => {
      if (code !== 0) return reject(new Error(`flotilla ${args.join(" ")} exited ${code}: ${err}`));
      resolve({ firstMs: Math.round(firstMs), allMs: Math.round(performance.now() - t0), rows: lines - legend });
    });
  });
}

/** fn() with these environment variables set (spawnDaemon hands the children process.env). */
function withEnv<T>(vars: Record<string, string>, fn: () => T): T {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  try {
    return fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

interface LoopWindow {
  n: number;
  maxMs: number;
  p99Ms: number;
  meanMs: number | null;
  samples: number;
}

/** The daemon's event-loop delays since the last call (bench/loop-monitor.mjs, in the daemon). */
async function loopWindow(pid: number, file: string, n: number): Promise<LoopWindow> {
  process.kill(pid, "SIGUSR2");
  let got: LoopWindow | undefined;
  await check(
    () => {
      const lines = existsSync(file) ? readFileSync(file, "utf8").trim().split("\n").filter(Boolean) : [];
      got = lines.length >= n ? (JSON.parse(lines[n - 1]!) as LoopWindow) : undefined;
      return got !== undefined;
    },
    10_000,
    `the daemon's event-loop figures (window ${n}) in ${file}`,
    20,
  );
  return got!;
}

async function main(): Promise<void> {
  buildForDaemons();
  const server = await NatsServer.start({ defaultMaxPayload: true });
  try {
    const prefix = uniquePrefix("bench");
    const names = new Names(prefix);
    const nc = await connect({ servers: server.url });
    const buckets = await ensureBuckets(nc, names, { agentTtlMs: 600_000, leaseTtlMs: 5000 });
    const t0 = performance.now();
    const all = Array.from({ length: UNITS }, (_, i) => `bench@${String(i).padStart(6, "0")}.service`);
    await pipelined(all, (name) => {
      const r: UnitRecord = { name, contents: CONTENTS, hash: HASH, desiredState: "inactive", version: 1, createdAt: Date.now(), updatedAt: Date.now() };
      return buckets.units.put(keys.unit(name), encode(r));
    });
    await pipelined(all, (unit) => {
      const s: UnitStateRecord = {
        unit, machineId: "bench-m", hash: HASH, taskState: "running", load: "loaded", active: "active", sub: "running",
        pid: 1000, restarts: 0, since: Date.now(), updatedAt: Date.now(),
      };
      return buckets.states.put(keys.state(unit, "bench-m"), encode(s));
    });
    console.log(`${UNITS} units and states put in ${Math.round(performance.now() - t0)} ms`);

    // The loop monitor goes into the daemon alone (the CLI runs get the environment without it).
    const loopDir = mkdtempSync(join(tmpdir(), "flotilla-bench-loop-"));
    const loopFile = join(loopDir, "loop.jsonl");
    const monitor = pathToFileURL(fileURLToPath(new URL("./loop-monitor.mjs", import.meta.url))).href;
    const d = withEnv({ NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --import=${monitor}`.trim(), FLOTILLA_LOOP_MONITOR: loopFile }, () =>
      spawnDaemon(server.url, prefix, ["--machine-id", "bench-1", "--agent-ttl", "600s", "--no-engine"], "daemon bench-1"),
    );
    await check(async () => (await buckets.machines.get(keys.machine("bench-1")))?.operation === "PUT", 30_000, "the daemon's machine record", 100);
    const idle = rssMb(d.pid!);
    await loopWindow(d.pid!, loopFile, 1); // the daemon's start, not measured
    const t1 = performance.now();
    await nc.request(names.apiSubject("list-unit-files"), JSON.stringify({ v: 2, limit: 1 }), { timeout: 120_000 });
    const startMs = Math.round(performance.now() - t1);
    const startLoop = await loopWindow(d.pid!, loopFile, 2);
    const indexed = rssMb(d.pid!);
    console.log(`daemon RSS: ${idle} MB idle before any listing, ${indexed} MB with the index of ${UNITS} units and states; the first listing (index start) took ${startMs} ms`);

    const lf = await timeCli(server.url, prefix, ["list-unit-files"]);
    if (lf.rows !== UNITS) throw new Error(`list-unit-files printed ${lf.rows} rows, not ${UNITS}`);
    console.log(`list ${Math.round(UNITS / 1000)}k: first row ${lf.firstMs} ms, all rows ${lf.allMs} ms (list-unit-files; targets < 500 ms, < 5 s)`);
    const lu = await timeCli(server.url, prefix, ["list-units"]);
    if (lu.rows !== UNITS) throw new Error(`list-units printed ${lu.rows} rows, not ${UNITS}`);
    console.log(`list-units ${Math.round(UNITS / 1000)}k: first row ${lu.firstMs} ms, all rows ${lu.allMs} ms`);
    const nd = await timeCli(server.url, prefix, ["list-unit-files", "--ndjson"], 0);
    console.log(`list-unit-files --ndjson ${Math.round(UNITS / 1000)}k: first row ${nd.firstMs} ms, all rows ${nd.allMs} ms`);
    const listLoop = await loopWindow(d.pid!, loopFile, 3);
    console.log(
      `list ${Math.round(UNITS / 1000)}k: daemon loop max ${listLoop.maxMs} ms while listing (p99 ${listLoop.p99Ms} ms; the three listings above; target about 50 ms at most); ` +
        `${startLoop.maxMs} ms while the first listing waited (index start; the rest of the daemon's start goes on meanwhile)`,
    );
    console.log(`daemon RSS after the listings: ${rssMb(d.pid!)} MB`);
    rmSync(loopDir, { recursive: true, force: true });
    await nc.close();
  } finally {
    await stopAll();
    await server.dispose();
  }
}

runBench("bench:list", main, 10 * 60_000);
