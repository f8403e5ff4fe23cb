// Runs the real CLI (bin/flotilla.js, compiled by the global setup) as a child process.
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const BIN = join(ROOT, "bin", "flotilla.js");

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `flotilla args...` to completion (bounded by timeoutMs) and returns its output. */
export function runCli(args: string[], opts: { env?: Record<string, string>; timeoutMs?: number; input?: string } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? "warn", ...opts.env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += String(d)));
    child.stderr.on("data", (d) => (stderr += String(d)));
    const t = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`flotilla ${args.join(" ")} did not finish within ${opts.timeoutMs ?? 30_000} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, opts.timeoutMs ?? 30_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(opts.input ?? "");
  });
}

/** Starts a long-running `flotilla ...` (daemon, up) and returns the child; stop it by PID. */
export function spawnCli(args: string[], env: Record<string, string> = {}): ChildProcess & { output: () => string } {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  }) as ChildProcess & { output: () => string };
  let out = "";
  child.stdout?.on("data", (d) => (out = (out + String(d)).slice(-200_000)));
  child.stderr?.on("data", (d) => (out = (out + String(d)).slice(-200_000)));
  child.output = () => out;
  return child;
}

/** SIGTERM (or the given signal) by PID, then wait for exit; SIGKILL after graceMs. */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = "SIGTERM", graceMs = 10_000): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  child.kill(signal);
  const t = setTimeout(() => child.kill("SIGKILL"), graceMs);
  const code = await exited;
  clearTimeout(t);
  return code;
}
