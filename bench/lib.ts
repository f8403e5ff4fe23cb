// What the benchmarks share: the dist/ build the daemons run, a nats-server, daemons spawned
// from the compiled CLI, /proc readings (CPU, RSS), percentiles, and one bounded run that stops
// everything it started — daemons by PID, their workloads by process group, the server last.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NatsServer } from "../test/helpers/nats-server.js";
import { BIN, ROOT } from "../test/helpers/cli.js";
import { killStateDirWorkloads } from "../test/helpers/agent-host.js";
import buildDist from "../test/helpers/global-setup.js";

const children: ChildProcess[] = [];
const stateDirs: string[] = [];
let server: NatsServer | undefined;

/** The same build the tests use: only when sources changed, swapped in whole. */
export function buildForDaemons(): void {
  process.chdir(ROOT);
  try {
    buildDist();
  } catch {
    console.error("building dist/ failed (see above); the daemons run the dist/ already there");
  }
}

export async function startNatsServer(): Promise<NatsServer> {
  server = await NatsServer.start();
  return server;
}

/** `flotilla --nats url --prefix prefix daemon --state-dir <fresh> ...args`, stopped by stopAll(). */
export function spawnDaemon(url: string, prefix: string, args: string[], label = "daemon"): ChildProcess {
  const stateDir = mkdtempSync(join(tmpdir(), "flotilla-bench-"));
  stateDirs.push(stateDir);
  const c = spawn(process.execPath, [BIN, "--nats", url, "--prefix", prefix, "daemon", "--state-dir", stateDir, ...args], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, LOG_LEVEL: "warn" },
  });
  let err = "";
  c.stderr?.on("data", (d) => (err = (err + String(d)).slice(-4000)));
  c.once("exit", (code) => {
    if (code) console.error(`${label} exited ${code}: ${err}`);
  });
  children.push(c);
  return c;
}

/** CPU time (user + system) and RSS of a process, from /proc. */
export function procStat(pid: number): { cpuMs: number; rssKb: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(f[11]) + Number(f[12]); // utime + stime
  const rss = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return { cpuMs: (ticks * 1000) / 100, rssKb: Number(rss?.[1] ?? 0) };
}

export function rssMb(pid: number): number {
  return Math.round(procStat(pid).rssKb / 102.4) / 10;
}

/** The p-th percentile of an ascending array. */
export function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export async function stopAll(): Promise<void> {
  for (const c of children.splice(0)) {
    if (c.exitCode === null && c.signalCode === null) {
      const exited = new Promise((r) => c.once("exit", r));
      c.kill("SIGTERM");
      const t = setTimeout(() => c.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(t);
    }
  }
  // Daemons leave their workloads running when they stop, on purpose.
  for (const d of stateDirs.splice(0)) {
    killStateDirWorkloads(d);
    rmSync(d, { recursive: true, force: true });
  }
  await server?.dispose();
  server = undefined;
}

/** Runs main within boundMs (and on Ctrl-C) and always stops what was started; exits with 0/1. */
export function runBench(name: string, main: () => Promise<void>, boundMs: number): void {
  const timer = setTimeout(() => {
    console.error(`${name} did not finish within ${boundMs} ms; stopping`);
    void stopAll().then(() => process.exit(1));
  }, boundMs);
  process.once("SIGINT", () => void stopAll().then(() => process.exit(130)));
  main()
    .then(
      () => 0,
      (e) => {
        console.error(`${name} failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
        return 1;
      },
    )
    .then(async (code) => {
      clearTimeout(timer);
      await stopAll();
      process.exit(code);
    });
}
