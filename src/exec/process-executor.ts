// The default executor: a unit's ExecStart as a plain process on this host.
//
// How a task runs, and why it survives the agent:
//   /bin/sh -c SUPERVISOR flotilla-supervise <runDir> argv...     (setsid: own session + group)
//     └─ argv... (ExecStart, exec'd without a shell unless the line itself runs one; a '@'
//        prefix goes through bash's `exec -a`; $VAR and EnvironmentFile= are src/unit/env.ts)
// The supervisor is six lines of POSIX sh (about 1 MB of memory, no node per task, only
// builtins so it costs no extra exec). It writes the workload's pid to <runDir>/pid, waits for
// it, and writes its exit status to <runDir>/exit (read only once the supervisor is gone; a
// half-written pid file reads as "not yet"). It is started detached with
// stdout/stderr on a file under <state-dir>/logs/ (never a pipe to the agent), so the agent can
// die and the workload neither notices nor loses output. A restarted agent is no longer the
// parent: it identifies the supervisor by pid + start time (/proc/<pid>/stat), polls it until
// it is gone and reads the exit file. The status sh reports is 128+N for a signal N, so an
// exit code above 128 is recorded as that signal (systemd shows it the same way).
// Stop: ExecStop lines if any, then SIGTERM to the whole group, SIGKILL after TimeoutStopSec;
// never before the workload has exec'd (a signal sent to the supervisor's fork is lost).
// The supervisor traps TERM/INT/HUP (a handler, not an ignore, so the workload keeps default
// dispositions) and keeps waiting, so the exit status is still recorded after a SIGTERM.
import { spawn, type ChildProcess } from "node:child_process";
// The few syscalls of prepare/start are synchronous on purpose: each is microseconds, while a
// thread-pool round trip per call costs milliseconds on a busy host (the start latency).
import { promises as fsp, openSync, closeSync, readFileSync, mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import { escapeUnit } from "../protocol/names.js";
import { describeError } from "../protocol/errors.js";
import type { ExecCommand, ServiceOptions } from "../unit/types.js";
import {
  fatalError,
  temporaryError,
  type AdoptResult,
  type Controller,
  type Executor,
  type ExitStatus,
  type RunInfo,
  type TaskSpec,
} from "./executor.js";
import { expandExecArgv, parseEnvironmentFile } from "../unit/env.js";
import { ARGV0_SCRIPT, execStage, findBash, hostId, isAlive, procStat, readExitFile, resolveBinary, signalResetPrefix, supervisorsOf } from "./process-util.js";

export { isAlive, procStat, signalName } from "./process-util.js";

const SUPERVISOR = [
  'd=$1; shift',
  'trap : TERM INT HUP',
  '"$@" & c=$!',
  'echo $c > "$d/pid"',
  'while :; do wait $c; s=$?; kill -0 $c 2>/dev/null || break; done',
  'echo $s > "$d/exit"',
].join("\n");

export interface ProcessExecutorOptions {
  stateDir: string;
  log: Logger;
  /** How often an adopted (not our child) supervisor is checked for exit. */
  pollMs?: number;
}

export function logFileOf(stateDir: string, unit: string): string {
  return join(stateDir, "logs", `${escapeUnit(unit)}.log`);
}

export function runDirOf(stateDir: string, unit: string): string {
  return join(stateDir, "run", escapeUnit(unit));
}

export class ProcessExecutor implements Executor {
  constructor(private readonly o: ProcessExecutorOptions) {}
  controller(task: TaskSpec): Controller {
    return new ProcessController(task, this.o);
  }
  running(unit: string): RunInfo | undefined {
    const runDir = runDirOf(this.o.stateDir, unit);
    const recorded = runningSupervisor(runDir);
    if (recorded) return recorded;
    // Killed inside spawn(): the supervisor runs but not even its own record was written.
    const [found, ...more] = supervisorsOf(runDir);
    if (!found) return undefined;
    for (const extra of more) killStale({ supervisorPid: extra.pid, startTime: extra.startTime, mainPid: extra.pid, startedAt: 0 });
    return { supervisorPid: found.pid, startTime: found.startTime, mainPid: readPidFile(runDir) ?? found.pid, startedAt: Date.now(), host: hostId() };
  }
  isRunning(run: RunInfo): boolean {
    return (run.host === undefined || run.host === hostId()) && isAlive(run.supervisorPid, run.startTime);
  }
  hostId(): string {
    return hostId();
  }
}

/**
 * The supervisor <runDir>/supervisor names (written the moment it is spawned, before anything
 * can record it elsewhere), when it still runs.
 */
function runningSupervisor(runDir: string): RunInfo | undefined {
  let text: string;
  try {
    text = readFileSync(join(runDir, "supervisor"), "utf8");
  } catch {
    return undefined;
  }
  const [pid, startTime, startedAt] = text.trim().split(" ").map(Number);
  if (!Number.isInteger(pid) || !Number.isFinite(startTime) || !isAlive(pid!, startTime!)) return undefined;
  return { supervisorPid: pid!, startTime: startTime!, mainPid: readPidFile(runDir) ?? pid!, startedAt: Number.isFinite(startedAt) ? startedAt! : Date.now(), host: hostId() };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The logs directories this process has made (they are never removed while it runs). */
const logDirsMade = new Set<string>();

class ProcessController implements Controller {
  private readonly runDir: string;
  private readonly logFile: string;
  private env: Record<string, string> = {};
  private cwd = "/";
  private run?: RunInfo;
  private child?: ChildProcess;
  private childExit?: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private killedWith?: string;
  private starting?: Promise<unknown>;
  private closed = false;
  private readonly log: Logger;

  constructor(
    private readonly task: TaskSpec,
    private readonly o: ProcessExecutorOptions,
  ) {
    this.runDir = runDirOf(o.stateDir, task.unit);
    this.logFile = logFileOf(o.stateDir, task.unit);
    this.log = o.log.child({ unit: task.unit });
  }

  private get service(): ServiceOptions {
    return this.task.service;
  }

  async prepare(): Promise<void> {
    const s = this.service;
    if (s.execStart.length === 0 || s.execStart[0]!.argv.length === 0) {
      throw fatalError(`${this.task.unit}: no ExecStart= line`, "ExecStart");
    }
    try {
      mkdirSync(this.runDir, { recursive: true });
      const logs = join(this.o.stateDir, "logs");
      // Once per process: a mkdir is a few hundred µs on an overlay filesystem, per unit loaded.
      if (!logDirsMade.has(logs)) {
        mkdirSync(logs, { recursive: true });
        logDirsMade.add(logs);
      }
    } catch (e) {
      throw temporaryError(`cannot create ${this.runDir}: ${describeError(e)}`, e);
    }
    const env: Record<string, string> = {};
    for (const k of ["PATH", "HOME", "USER", "LOGNAME", "LANG", "TZ", "SHELL"]) {
      const v = process.env[k];
      if (v !== undefined) env[k] = v;
    }
    env.PATH ??= "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin";
    for (const f of s.environmentFile) {
      let text: string;
      try {
        text = readFileSync(f.path, "utf8");
      } catch (e) {
        if (f.optional) continue;
        throw fatalError(`EnvironmentFile=${f.path}: ${describeError(e)}`, "EnvironmentFile", f.path);
      }
      const parsed = parseEnvironmentFile(text);
      for (const l of parsed.skipped) this.log.warn({ file: f.path, line: l.line }, `EnvironmentFile=${f.path}:${l.line}: "${l.text}" is not KEY=VALUE: skipped`);
      Object.assign(env, parsed.env);
    }
    Object.assign(env, s.environment);
    env.FLOTILLA_UNIT = this.task.unit;
    env.FLOTILLA_MACHINE_ID = this.task.machineId;
    this.env = env;
    this.cwd = s.workingDirectory ?? "/";
    try {
      const st = statSync(this.cwd);
      if (!st.isDirectory()) throw new Error("not a directory");
    } catch (e) {
      if (s.workingDirectoryOptional) {
        this.cwd = this.env.HOME ?? "/";
        return;
      }
      throw fatalError(`WorkingDirectory=${this.cwd}: ${describeError(e)}`, "WorkingDirectory", this.cwd);
    }
  }

  /** Runs a short-lived helper command (ExecStartPre/ExecStop) to completion, bounded. */
  private async runHelper(kind: string, cmd: ExecCommand, timeoutMs: number, extraEnv: Record<string, string> = {}): Promise<void> {
    const bin = await resolveBinary(cmd.argv[0]!, this.env.PATH ?? "", this.cwd);
    if (!bin) {
      if (cmd.ignoreFailure) return;
      throw fatalError(`${kind}=${cmd.raw}: ${cmd.argv[0]}: no such executable`, kind, cmd.argv[0]);
    }
    const fd = openSync(this.logFile, "a");
    let child: ChildProcess;
    try {
      child = spawn(bin, expandExecArgv(cmd, this.env).slice(1), {
        argv0: cmd.argv0 ?? cmd.argv[0],
        cwd: this.cwd,
        env: { ...this.env, ...extraEnv },
        stdio: ["ignore", fd, fd],
        detached: true,
      });
    } finally {
      closeSync(fd);
    }
    const res = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; err?: Error }>((resolve) => {
      const t = setTimeout(() => {
        try {
          process.kill(-child.pid!, "SIGKILL");
        } catch {
          /* gone */
        }
      }, Number.isFinite(timeoutMs) ? timeoutMs : 2 ** 31 - 1);
      child.once("error", (err) => {
        clearTimeout(t);
        resolve({ code: null, signal: null, err });
      });
      child.once("exit", (code, signal) => {
        clearTimeout(t);
        resolve({ code, signal });
      });
    });
    if (res.err) throw fatalError(`${kind}=${cmd.raw}: ${res.err.message}`, kind, cmd.raw);
    if ((res.code !== 0 || res.signal) && !cmd.ignoreFailure) {
      const how = res.signal ? `was killed by ${res.signal}` : `exited with status ${res.code}`;
      throw fatalError(`${kind}=${cmd.raw} ${how}`, kind, cmd.raw);
    }
  }

  start(): Promise<RunInfo> {
    const p = this.doStart();
    this.starting = p.catch(() => undefined);
    return p;
  }

  private async doStart(): Promise<RunInfo> {
    const s = this.service;
    for (const pre of s.execStartPre) await this.runHelper("ExecStartPre", pre, s.timeoutStopSecMs);
    const main = s.execStart[0]!;
    const bin = await resolveBinary(main.argv[0]!, this.env.PATH ?? "", this.cwd);
    if (!bin) {
      throw fatalError(`ExecStart=${main.raw}: ${main.argv[0]}: no such executable (not found or not executable)`, "ExecStart", main.argv[0]);
    }
    const bash = main.argv0 === undefined ? undefined : findBash();
    if (main.argv0 !== undefined && !bash) {
      throw fatalError(`ExecStart=@${main.raw}: the "@" prefix (argv[0]) needs /bin/bash on this machine`, "ExecStart", main.raw);
    }
    // Never two copies: a supervisor of this unit still running here (started by an agent that
    // was killed before it could record it, and not adopted) goes before a new one starts.
    const stray = runningSupervisor(this.runDir);
    if (stray) {
      this.log.warn({ pid: stray.mainPid }, `a copy of ${this.task.unit} nobody recorded is still running (pid ${stray.mainPid}): killing it before starting another`);
      killStale(stray);
    }
    rmSync(join(this.runDir, "pid"), { force: true });
    rmSync(join(this.runDir, "exit"), { force: true });
    rmSync(join(this.runDir, "supervisor"), { force: true });
    mkdirSync(this.runDir, { recursive: true });
    const fd = openSync(this.logFile, "a");
    let child: ChildProcess;
    try {
      const args = expandExecArgv(main, this.env).slice(1);
      const exec = main.argv0 === undefined ? [bin, ...args] : [bash!, "-c", ARGV0_SCRIPT, main.argv0, bin, ...args];
      child = spawn("/bin/sh", ["-c", SUPERVISOR, "flotilla-supervise", this.runDir, ...signalResetPrefix(), ...exec], {
        cwd: this.cwd,
        env: this.env,
        stdio: ["ignore", fd, fd],
        detached: true,
      });
    } finally {
      closeSync(fd);
    }
    child.unref();
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.once("exit", (code, signal) => resolve({ code, signal }));
      child.once("error", () => resolve({ code: null, signal: null }));
    });
    this.child = child;
    this.childExit = exited;
    const pid = child.pid;
    if (pid === undefined) throw temporaryError(`ExecStart=${main.raw}: could not spawn /bin/sh`);
    const stat = procStat(pid);
    // At once, synchronously: an agent killed from here on leaves a record of what runs.
    writeFileSync(join(this.runDir, "supervisor"), `${pid} ${stat?.startTime ?? -1} ${Date.now()}\n`);
    // The supervisor writes the workload's pid right after forking it.
    let gone = false;
    void exited.then(() => (gone = true));
    let mainPid: number | undefined;
    const deadline = Date.now() + 5000;
    for (let i = 0; Date.now() < deadline; i++) {
      const delay = i < 8 ? 1 : Math.min(2 ** (i - 7), 20);
      mainPid = readPidFile(this.runDir);
      if (mainPid) break;
      if (gone) break;
      await sleep(delay);
    }
    this.run = {
      supervisorPid: pid,
      startTime: stat?.startTime ?? -1,
      mainPid: mainPid ?? pid,
      startedAt: Date.now(),
      host: hostId(),
    };
    return this.run;
  }

  async adopt(run: RunInfo): Promise<AdoptResult> {
    this.run = run;
    if (isAlive(run.supervisorPid, run.startTime)) return { alive: true, run };
    return { alive: false, exit: readExitFile(this.runDir) ?? { unknown: true } };
  }

  async wait(): Promise<ExitStatus> {
    const run = this.run;
    if (!run) throw fatalError(`${this.task.unit}: wait() before start()`);
    if (this.childExit) {
      const r = await this.childExit;
      return readExitFile(this.runDir) ?? (r.signal ? { signal: r.signal } : this.killedWith ? { signal: this.killedWith } : { unknown: true });
    }
    const poll = this.o.pollMs ?? 250;
    while (!this.closed && isAlive(run.supervisorPid, run.startTime)) await sleep(poll);
    return readExitFile(this.runDir) ?? (this.killedWith ? { signal: this.killedWith } : { unknown: true });
  }

  private alive(): boolean {
    const run = this.run;
    if (!run) return false;
    if (this.child) return this.child.exitCode === null && this.child.signalCode === null;
    return isAlive(run.supervisorPid, run.startTime);
  }

  private async waitGone(ms: number): Promise<boolean> {
    const deadline = Number.isFinite(ms) ? Date.now() + ms : Number.POSITIVE_INFINITY;
    for (let d = 5; ; d = Math.min(d * 2, 100)) {
      if (!this.alive()) return true;
      if (Date.now() >= deadline) return false;
      await sleep(Math.min(d, Math.max(1, deadline - Date.now())));
    }
  }

  private async waitExec(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    for (let d = 1; ; d = Math.min(d * 2, 20)) {
      const run = this.run;
      if (!run) return;
      if (run.mainPid === run.supervisorPid) {
        // start() gave up waiting for the pid file (a very busy host): it may be there now.
        const pid = readPidFile(this.runDir);
        if (pid) this.run = { ...run, mainPid: pid };
      }
      const mainPid = this.run?.mainPid ?? run.mainPid;
      if (mainPid !== run.supervisorPid && execStage(mainPid, SUPERVISOR) !== "forked") return;
      if (!this.alive() || Date.now() >= deadline) return;
      await sleep(d);
    }
  }

  private signalGroup(sig: NodeJS.Signals): void {
    const run = this.run;
    if (!run || !this.alive()) return;
    try {
      process.kill(-run.supervisorPid, sig);
    } catch (e) {
      this.log.debug({ err: describeError(e), sig }, "signal to process group failed");
    }
  }

  async shutdown(): Promise<ExitStatus> {
    if (this.starting) await this.starting;
    const s = this.service;
    const timeout = s.timeoutStopSecMs;
    if (this.alive() && this.run) {
      // A stop right after a start must not lose its signal to a workload that has not
      // exec'd yet (see execStage); bounded, so a wedged fork still ends in SIGKILL.
      await this.waitExec(Math.min(timeout, 5000));
      for (const stop of s.execStop) {
        try {
          await this.runHelper("ExecStop", stop, timeout, { MAINPID: String(this.run.mainPid) });
        } catch (e) {
          this.log.warn({ err: describeError(e) }, "ExecStop failed; falling back to SIGTERM");
        }
      }
      if (s.execStop.length === 0 || !(await this.waitGone(Math.min(timeout, 1000)))) {
        this.signalGroup("SIGTERM");
        // The supervisor survives SIGTERM: wait for the workload itself by pid file.
        if (!(await this.waitGone(timeout))) {
          this.log.warn({ timeoutMs: timeout }, "did not stop within TimeoutStopSec: SIGKILL");
          this.killedWith = "SIGKILL";
          this.signalGroup("SIGKILL");
          await this.waitGone(5000);
        }
      }
    }
    if (!this.run) return {};
    return this.wait();
  }

  async terminate(): Promise<void> {
    this.killedWith = "SIGKILL";
    this.signalGroup("SIGKILL");
    await this.waitGone(5000);
  }

  async remove(): Promise<void> {
    // Never forget a live workload: the run directory is how it is found again.
    if (this.alive()) await this.terminate();
    await fsp.rm(this.runDir, { recursive: true, force: true });
  }

  close(): void {
    this.closed = true;
  }
}

/** The workload's pid as the supervisor wrote it; a half-written file reads as "not yet". */
function readPidFile(runDir: string): number | undefined {
  try {
    const text = readFileSync(join(runDir, "pid"), "utf8");
    const pid = text.endsWith("\n") ? Number(text.trim()) : NaN;
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** For the agent's Init: kill what a task that is no longer assigned left running. */
export function killStale(run: RunInfo): void {
  if (!isAlive(run.supervisorPid, run.startTime)) return;
  try {
    process.kill(-run.supervisorPid, "SIGKILL");
  } catch {
    /* gone */
  }
}
