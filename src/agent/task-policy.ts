// The task's decisions, as pure functions: the statechart's guards and the task manager call
// these, tests call them directly.
import { FlotillaError } from "../protocol/errors.js";
import { taskStateRank, type TaskState } from "../protocol/messages.js";
import type { ExitStatus } from "../exec/executor.js";
import type { RestartPolicy } from "../unit/types.js";
import { formatDuration } from "../util/measure.js";

/** Task states only move forward (DESIGN.md §2); a backwards move is a bug and throws. */
export function advance(prev: TaskState, next: TaskState): TaskState {
  if (taskStateRank(next) < taskStateRank(prev)) {
    throw new FlotillaError("illegal_state_change", `task state cannot move backwards: ${prev} -> ${next}`, {
      field: "taskState",
      value: { prev, next },
    });
  }
  return next;
}

export const MAX_RETRIES = 5;

/** Temporary controller errors are retried with exponential backoff, up to MAX_RETRIES. */
export function canRetry(error: unknown, retries: number): boolean {
  return error instanceof FlotillaError && error.temporary && retries < MAX_RETRIES;
}

export function backoffMs(retries: number): number {
  return Math.min(100 * 2 ** retries, 5000);
}

/** A clean exit: status 0, no signal (what Restart=on-failure does not restart). */
export function exitedOk(exit: ExitStatus | undefined): boolean {
  return exit !== undefined && !exit.unknown && exit.exitCode === 0 && exit.signal === undefined;
}

export function describeExit(exit: ExitStatus | undefined): string {
  if (!exit || exit.unknown) return "exited (status unknown: its supervisor was killed)";
  if (exit.signal) return `killed by ${exit.signal}`;
  return `exited with status ${exit.exitCode}`;
}

export interface RestartInput {
  policy: RestartPolicy;
  restartSecMs: number;
  startLimitBurst: number;
  startLimitIntervalMs: number;
  /** How the attempt ended. */
  outcome: "complete" | "failed";
  /** Times (ms) the unit was started, oldest first, this attempt's included. */
  starts: number[];
  now: number;
}

export type RestartDecision =
  | { restart: true; delayMs: number; reason: string }
  | { restart: false; reason: string; limitHit: boolean };

/**
 * The start history after a start at `now`: only what decideRestart can still count. A start
 * `intervalMs` or more ago never counts again (the window only moves forward), and of the rest
 * only the newest `burst` matter (the limit asks whether `burst` of them are recent, and the
 * recent ones are the newest). So a unit restarted forever keeps at most `burst` entries.
 */
export function recordStart(starts: readonly number[], now: number, burst: number, intervalMs: number): number[] {
  const keep = Math.max(0, burst);
  if (keep === 0) return [];
  const out = starts.filter((t) => now - t < intervalMs);
  out.push(now);
  return out.length > keep ? out.slice(out.length - keep) : out;
}

/** systemd's Restart= with StartLimitBurst= within StartLimitIntervalSec=. */
export function decideRestart(i: RestartInput): RestartDecision {
  const wants = i.policy === "always" || (i.policy === "on-failure" && i.outcome === "failed");
  if (!wants) {
    return { restart: false, reason: `Restart=${i.policy}`, limitHit: false };
  }
  const recent = i.starts.filter((t) => i.now + i.restartSecMs - t < i.startLimitIntervalMs);
  if (i.startLimitBurst > 0 && recent.length >= i.startLimitBurst) {
    return {
      restart: false,
      limitHit: true,
      reason: `start limit hit: ${recent.length} starts within ${formatDuration(i.startLimitIntervalMs)} (StartLimitBurst=${i.startLimitBurst})`,
    };
  }
  return { restart: true, delayMs: i.restartSecMs, reason: `Restart=${i.policy} after ${i.outcome}` };
}
