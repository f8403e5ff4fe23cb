// Small pieces of the process executor that need no controller: /proc, signals, PATH lookup
// and the exit file. (EnvironmentFile= and $VAR syntax are src/unit/env.ts, the one copy.)
import { execFileSync } from "node:child_process";
import { constants as fsc, accessSync, readdirSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { join, isAbsolute, delimiter } from "node:path";
import { constants as osc } from "node:os";
import type { ExitStatus } from "./executor.js";

/**
 * A non-interactive sh starts background commands with SIGINT and SIGQUIT ignored, and an
 * ignored signal survives exec. GNU env (coreutils ≥ 8.31) can put them back to default just
 * before it execs the workload (same pid). Checked once; without it (busybox) the workload
 * ignores SIGINT/SIGQUIT, which only matters to an ExecStop that sends them.
 */
let resetSignalsPrefix: string[] | undefined;
export function signalResetPrefix(): string[] {
  if (resetSignalsPrefix) return resetSignalsPrefix;
  resetSignalsPrefix = [];
  for (const env of ["/usr/bin/env", "/bin/env"]) {
    try {
      execFileSync(env, ["--default-signal=INT,QUIT", "true"], { stdio: "ignore", timeout: 5000 });
      resetSignalsPrefix = [env, "--default-signal=INT,QUIT"];
      break;
    } catch {
      /* not GNU env, or not there */
    }
  }
  return resetSignalsPrefix;
}

/**
 * ExecStart's '@' prefix (argv[0] given to the process): dash cannot exec under another name
 * and GNU env only learnt --argv0 in coreutils 9.5, so bash does it, for those units only.
 * Used as: bash -c ARGV0_SCRIPT <argv0> <file> args...
 */
export const ARGV0_SCRIPT = 'f=$1; shift; exec -a "$0" "$f" "$@"';

export function findBash(): string | undefined {
  for (const b of ["/bin/bash", "/usr/bin/bash"]) {
    try {
      accessSync(b, fsc.X_OK);
      return b;
    } catch {
      /* next */
    }
  }
  return undefined;
}

// ---- /proc helpers ----

/**
 * Has the workload reached its own program yet? Between the supervisor's fork and the exec of
 * ExecStart, the child is still a copy of the supervisor's sh with its `trap : TERM` handler
 * installed: a SIGTERM landing there is swallowed (dash resets the trap just before the exec
 * and the pending signal goes with it), and the workload then runs on until SIGKILL. The GNU
 * env step that follows ignores SIGINT/SIGQUIT until it resets them. So a stop waits for this
 * to say "exec'd" (or "gone") before it signals anything. Read from /proc/<pid>/cmdline: the
 * fork shows the supervisor's own argv, the env step shows the reset prefix.
 */
export function execStage(pid: number, supervisorScript: string): "gone" | "forked" | "exec'd" {
  let argv: string[];
  try {
    argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
  } catch {
    return "gone";
  }
  const st = procStat(pid);
  if (!st || st.state === "Z" || st.state === "X" || argv.length < 2) return "gone";
  if (argv[1] === "-c" && (argv[2] === supervisorScript || argv[2] === ARGV0_SCRIPT)) return "forked";
  const reset = signalResetPrefix();
  if (reset.length > 0 && argv[0] === reset[0] && argv[1] === reset[1]) return "forked";
  return "exec'd";
}


/** Start time (clock ticks since boot) and state letter of a pid, or undefined if gone. */
export function procStat(pid: number): { startTime: number; state: string } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
    // rest[0] is field 3 (state); field 22 (starttime) is rest[19].
    return { state: rest[0]!, startTime: Number(rest[19]) };
  } catch {
    return undefined;
  }
}

/** One pass over /proc serves the lookups of this long (an agent resuming many tasks at once). */
const SCAN_TTL_MS = 1000;
let scan: { at: number; byRunDir: Map<string, number[]> } | undefined;

/** runDir -> pids of the processes whose argv is `sh -c SUPERVISOR flotilla-supervise <runDir> ...`. */
function supervisorRunDir(pid: number | string): string | undefined {
  let argv: string[];
  try {
    argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
  } catch {
    return undefined;
  }
  const i = argv.indexOf("flotilla-supervise");
  return i < 0 ? undefined : argv[i + 1];
}

function supervisorScan(): Map<string, number[]> {
  const now = Date.now();
  if (scan && now - scan.at < SCAN_TTL_MS) return scan.byRunDir;
  const byRunDir = new Map<string, number[]>();
  let pids: string[] = [];
  try {
    pids = readdirSync("/proc").filter((p) => /^\d+$/.test(p));
  } catch {
    /* no /proc: nothing found */
  }
  for (const p of pids) {
    const dir = supervisorRunDir(p);
    if (dir !== undefined) byRunDir.set(dir, [...(byRunDir.get(dir) ?? []), Number(p)]);
  }
  scan = { at: now, byRunDir };
  return byRunDir;
}

/**
 * The supervisors running on this host whose argv names runDir (`sh -c SUPERVISOR
 * flotilla-supervise <runDir> ...`): what an agent killed in the middle of spawn() left behind
 * before it could record anything. For resumed tasks only; one pass over /proc serves every
 * unit looked up within a second (a resume of 1,000 tasks read /proc 1,000 times: 0.6 s).
 * Each pid found is checked again when asked (still that supervisor: a pid reused since the
 * scan is not; alive, not a zombie).
 */
export function supervisorsOf(runDir: string): { pid: number; startTime: number }[] {
  const out: { pid: number; startTime: number }[] = [];
  for (const pid of supervisorScan().get(runDir) ?? []) {
    if (supervisorRunDir(pid) !== runDir) continue;
    const st = procStat(pid);
    if (st && st.state !== "Z" && st.state !== "X") out.push({ pid, startTime: st.startTime });
  }
  return out;
}

let hostIdentity: string | undefined;
/**
 * This boot (the kernel's boot_id) and PID namespace (/proc/self/ns/pid): pids and start times
 * mean something only within both. A restarted container has a new PID namespace; a rebooted
 * host a new boot id.
 */
export function hostId(): string {
  if (hostIdentity === undefined) {
    let boot = "";
    let ns = "";
    try {
      boot = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
    } catch {
      /* not Linux: pids are all we have */
    }
    try {
      ns = readlinkSync("/proc/self/ns/pid");
    } catch {
      /* no namespaces */
    }
    hostIdentity = `${boot}/${ns}`;
  }
  return hostIdentity;
}

/** Alive = exists, is not a zombie, and is the same process (start time) we started. */
export function isAlive(pid: number, startTime: number): boolean {
  const s = procStat(pid);
  return s !== undefined && s.state !== "Z" && s.state !== "X" && s.startTime === startTime;
}

export function signalName(n: number): string | undefined {
  for (const [name, num] of Object.entries(osc.signals)) if (num === n) return name;
  return undefined;
}

export function readExitFile(runDir: string): ExitStatus | undefined {
  try {
    const code = Number(readFileSync(join(runDir, "exit"), "utf8").trim());
    if (!Number.isInteger(code)) return undefined;
    if (code > 128) {
      const sig = signalName(code - 128);
      if (sig) return { signal: sig };
    }
    return { exitCode: code };
  } catch {
    return undefined;
  }
}

export async function resolveBinary(argv0: string, path: string, cwd: string): Promise<string | undefined> {
  const candidates = argv0.includes("/")
    ? [isAbsolute(argv0) ? argv0 : join(cwd, argv0)]
    : path.split(delimiter).filter(Boolean).map((d) => join(d, argv0));
  for (const c of candidates) {
    try {
      const st = statSync(c);
      if (!st.isFile()) continue;
      accessSync(c, fsc.X_OK);
      return c;
    } catch {
      /* next */
    }
  }
  return undefined;
}
