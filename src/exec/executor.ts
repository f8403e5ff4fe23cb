// The runtime contract between a task's statechart and whatever runs the workload (SwarmKit's
// agent/exec/controller.go, reduced to what flotilla needs). The process executor is the
// default; docker or systemd executors implement the same interface.
//
// Every method may throw a FlotillaError whose `temporary` flag says what the statechart does:
// temporary → retry with backoff, fatal → the task fails (or is rejected, from prepare()).
import type { ServiceOptions } from "../unit/types.js";
import { FlotillaError } from "../protocol/errors.js";

/** What an executor needs to run one task. */
export interface TaskSpec {
  unit: string;
  hash: string;
  service: ServiceOptions;
  /** Exported to the workload as FLOTILLA_MACHINE_ID. */
  machineId: string;
}

/**
 * Identity of a running workload, kept in the worker store so that a restarted agent adopts
 * it. `supervisorPid` + `startTime` (clock ticks since boot, /proc/<pid>/stat field 22) name
 * one process for its whole life: a reused pid has another start time and is never adopted.
 */
export interface RunInfo {
  /** The process-group leader flotilla started (the exit-recording supervisor). */
  supervisorPid: number;
  startTime: number;
  /** The workload itself (ExecStart's process): what `status` shows as PID. */
  mainPid: number;
  startedAt: number; // ms since epoch
  /**
   * Which boot and PID namespace it was started in (Executor.hostId): a workload recorded in
   * another one died with it (a host reboot, a restarted container), whatever a pid says now.
   */
  host?: string;
}

export interface ExitStatus {
  exitCode?: number;
  signal?: string;
  /** Set when the exit could not be learned (the supervisor itself was killed). */
  unknown?: boolean;
}

export type AdoptResult = { alive: true; run: RunInfo } | { alive: false; exit: ExitStatus };

export interface Controller {
  /** Checks and readies everything the task needs (environment, directories). */
  prepare(): Promise<void>;
  /** Runs ExecStartPre, then starts ExecStart; resolves once the workload runs. */
  start(): Promise<RunInfo>;
  /** Takes over a workload started by an earlier agent process. */
  adopt(run: RunInfo): Promise<AdoptResult>;
  /** Resolves when the workload exits (it never rejects for a non-zero exit). */
  wait(): Promise<ExitStatus>;
  /** ExecStop or SIGTERM to the group, SIGKILL after TimeoutStopSec; resolves when gone. */
  shutdown(): Promise<ExitStatus>;
  /** SIGKILL to the whole group, now. */
  terminate(): Promise<void>;
  /** Deletes what the task left on disk (run directory; logs stay for the journal). */
  remove(): Promise<void>;
  /** Releases watchers and timers; never touches the workload. */
  close(): void;
}

export interface Executor {
  controller(task: TaskSpec): Controller;
  /**
   * A workload of this unit that is running although nothing recorded it: an agent killed
   * between starting it and writing it to the worker store. The agent adopts it instead of
   * starting a second copy.
   */
  running?(unit: string): RunInfo | undefined;
  /** Whether a recorded workload still runs (pid and start time both match). */
  isRunning?(run: RunInfo): boolean;
  /** This boot and PID namespace (see RunInfo.host). */
  hostId?(): string;
}

export function temporaryError(message: string, cause?: unknown): FlotillaError {
  return new FlotillaError("exec_failed", message, { temporary: true, cause });
}

export function fatalError(message: string, field?: string, value?: unknown): FlotillaError {
  return new FlotillaError("exec_failed", message, { temporary: false, field, value });
}

export function isTemporary(e: unknown): boolean {
  return e instanceof FlotillaError && e.temporary;
}
