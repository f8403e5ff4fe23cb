// Small pieces of the process executor that need no controller: /proc, signals, systemd's
// EnvironmentFile= and $VAR syntax, PATH lookup and the exit file.
import { execFileSync } from "node:child_process";
import { constants as fsc, accessSync, readFileSync, statSync } from "node:fs";
import { join, isAbsolute, delimiter } from "node:path";
import { constants as osc } from "node:os";
import type { ExecCommand } from "../unit/types.js";
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
  if (argv[1] === "-c" && argv[2] === supervisorScript) return "forked";
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

/** systemd EnvironmentFile= syntax: KEY=VALUE lines, '#'/';' comments, optional quotes. */
export function parseEnvironmentFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith("#") || line.startsWith(";")) continue;
    const eq = line.indexOf("=");
    if (eq <= 0) continue;
    const key = line.slice(0, eq).trim();
    let value = line.slice(eq + 1).trim();
    if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.endsWith(value[0]!)) value = value.slice(1, -1);
    out[key] = value;
  }
  return out;
}

/** systemd's $VAR / ${VAR} expansion in command arguments ($$ is a literal $; not for ':'-prefixed lines). */
export function expandArgs(cmd: ExecCommand, env: Record<string, string>): string[] {
  if (cmd.noEnvExpansion) return cmd.argv;
  return cmd.argv.map((a, i) =>
    i === 0
      ? a
      : a.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (m, a1, a2) =>
          m === "$$" ? "$" : (env[(a1 ?? a2) as string] ?? ""),
        ),
  );
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
