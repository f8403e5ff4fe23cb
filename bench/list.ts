// npm run bench:list — listings at 100,000 units through the CLI (issue 15): units (and a state
// per unit) put straight into the buckets of a nats-server at its default max_payload (1 MB), one
// real daemon (no engine: nothing to place, the units are inactive), then `flotilla
// list-unit-files` and `flotilla list-units` as a user runs them, timed from the spawn of the
// CLI to its first row on stdout and to its exit. Prints
//   list 100k: first row <ms> ms, all rows <ms> ms            (list-unit-files; targets 500 ms, 5 s)
// plus the same for list-units, the first listing's cost (the daemon starts its index then), and
// the daemon's RSS idle, before any listing, and with the index of 100,000 units and states.
// Bounded in time; stops everything it started.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
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

    const d = spawnDaemon(server.url, prefix, ["--machine-id", "bench-1", "--agent-ttl", "600s", "--no-engine"], "daemon bench-1");
    await check(async () => (await buckets.machines.get(keys.machine("bench-1")))?.operation === "PUT", 30_000, "the daemon's machine record", 100);
    const idle = rssMb(d.pid!);
    const t1 = performance.now();
    await nc.request(names.apiSubject("list-unit-files"), JSON.stringify({ v: 2, limit: 1 }), { timeout: 120_000 });
    const startMs = Math.round(performance.now() - t1);
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
    console.log(`daemon RSS after the listings: ${rssMb(d.pid!)} MB`);
    await nc.close();
  } finally {
    await stopAll();
    await server.dispose();
  }
}

runBench("bench:list", main, 10 * 60_000);
