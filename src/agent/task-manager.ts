// One per task (SwarmKit's taskManager): owns the task's statechart actor, one attempt at a
// time, and reports every status change, writing it to the worker store first. Restarts
// (Restart=, RestartSec=, the start limit) are new attempts decided by task-policy.ts.
import { createActor, fromPromise, type Actor, type InspectionEvent } from "xstate";
import type { Logger } from "pino";
import type { ScheduleEntry, TaskState } from "../protocol/messages.js";
import { describeError } from "../protocol/errors.js";
import type { ParsedUnit, ServiceOptions } from "../unit/types.js";
import { fatalError, type Controller, type Executor, type RunInfo } from "../exec/executor.js";
import { taskMachine, type TaskMachine } from "./task.machine.js";
import { decideRestart, recordStart } from "./task-policy.js";
import type { ResumedTask, TaskStatus, WorkerStore } from "./worker-store.js";

export type Target = "loaded" | "launched";

export interface TaskManagerOptions {
  entry: ScheduleEntry;
  target: Target;
  machineId: string;
  executor: Executor;
  store: WorkerStore;
  parse: (name: string, contents: string) => ParsedUnit;
  /** Called after the status is in the store, in order. */
  report: (unit: string, status: TaskStatus) => void;
  log: Logger;
  /** What the store held for this task when the agent started. */
  resume?: ResumedTask;
  /** XState inspection of each attempt's actor (the live statechart on <prefix>.inspect.…). */
  inspect?: (ev: InspectionEvent) => void;
}

const LIVE_STOPPABLE = new Set(["adopting", "starting", "running"]);

export class TaskManager {
  readonly unit: string;
  readonly entry: ScheduleEntry;
  private target: Target;
  private service?: ServiceOptions;
  private parseError?: string;
  private actor?: Actor<TaskMachine>;
  private controller?: Controller;
  private restarts = 0;
  /** Start times the start limit can still count (bounded by recordStart to StartLimitBurst). */
  private starts: number[] = [];
  private restartTimer?: NodeJS.Timeout;
  private stopRequested = false;
  private detached = false;
  private chain: Promise<unknown> = Promise.resolve();
  private last?: TaskStatus;
  private doneWaiters: (() => void)[] = [];
  private readonly log: Logger;

  constructor(private readonly o: TaskManagerOptions) {
    this.unit = o.entry.unit;
    this.entry = o.entry;
    this.target = o.target;
    this.log = o.log.child({ unit: this.unit });
    try {
      this.service = o.parse(o.entry.unit, o.entry.contents).service;
    } catch (e) {
      this.parseError = describeError(e);
    }
  }

  get currentTarget(): Target {
    return this.target;
  }

  get status(): TaskStatus | undefined {
    return this.last;
  }

  /** The start history the start limit is decided from (for tests: it stays bounded). */
  get startHistory(): readonly number[] {
    return this.starts;
  }

  /** Begins driving the task: resumes what the store knew, else a first attempt. */
  async start(): Promise<void> {
    await this.o.store.putTask({ entry: this.entry, target: this.target, assigned: true });
    const r = this.o.resume;
    if (r?.status && r.status.hash === this.entry.hash) {
      this.restarts = r.status.restarts;
      const st = r.status.taskState;
      if (r.run && (st === "starting" || st === "running")) {
        this.attempt(r.run);
        return;
      }
      if (st === "complete" || st === "failed" || st === "rejected" || st === "shutdown") {
        // Stays as it ended (a failed unit is not restarted by an agent restart).
        this.last = r.status;
        this.enqueue(r.status);
        return;
      }
    }
    this.attempt();
  }

  setTarget(target: Target): void {
    if (target === this.target || this.detached) return;
    this.target = target;
    void this.o.store.putTask({ entry: this.entry, target, assigned: true });
    const snap = this.actor?.getSnapshot();
    const live = snap !== undefined && snap.status === "active";
    if (target === "launched") {
      this.stopRequested = false;
      if (live) this.actor!.send({ type: "START" });
      else {
        this.starts = []; // an explicit start clears the start-limit history, as systemctl start after reset-failed
        this.attempt();
      }
      return;
    }
    this.cancelRestart();
    if (live && typeof snap.value === "string" && LIVE_STOPPABLE.has(snap.value)) this.stopRequested = true;
    if (live && (typeof snap.value !== "string" || snap.value !== "ready")) this.actor!.send({ type: "STOP" });
  }

  /** Stops the workload (graceful, bounded by TimeoutStopSec) and resolves when it is gone. */
  async stop(): Promise<void> {
    this.stopRequested = true;
    this.cancelRestart();
    const a = this.actor;
    if (!a || a.getSnapshot().status !== "active") return;
    const done = new Promise<void>((r) => this.doneWaiters.push(r));
    a.send({ type: "STOP" });
    await done;
  }

  /** Unload: stop, delete what is on disk and in the store. No report follows. */
  async remove(): Promise<void> {
    await this.o.store.setAssigned(this.unit, false);
    await this.stop();
    await this.chain;
    this.detached = true;
    this.actor?.stop();
    await this.controller?.remove().catch(() => undefined);
    this.controller?.close();
    await this.o.store.delete(this.unit);
  }

  /** Agent stop: let go of the actor; the workload keeps running and is adopted next start. */
  async detach(): Promise<void> {
    this.detached = true;
    this.cancelRestart();
    this.actor?.stop();
    this.controller?.close();
    await this.chain;
  }

  private cancelRestart(): void {
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
  }

  private attempt(adopt?: RunInfo): void {
    this.controller?.close();
    this.actor?.stop();
    const service = this.service;
    const parseError = this.parseError;
    const ctrl = service
      ? this.o.executor.controller({ unit: this.unit, hash: this.entry.hash, service, machineId: this.o.machineId })
      : undefined;
    this.controller = ctrl;
    const store = this.o.store;
    const unit = this.unit;
    const machine = taskMachine.provide({
      actors: {
        prepare: fromPromise(async () => {
          if (!ctrl) throw fatalError(`${unit}: invalid unit file: ${parseError}`, "contents");
          await ctrl.prepare();
        }),
        start: fromPromise(async () => {
          this.starts = recordStart(this.starts, Date.now(), service!.startLimitBurst, service!.startLimitIntervalMs);
          const run = await ctrl!.start();
          await store.putRun(unit, run);
          return run;
        }),
        adopt: fromPromise(async ({ input }: { input: RunInfo }) => {
          if (!ctrl) throw fatalError(`${unit}: invalid unit file: ${parseError}`, "contents");
          // adopt() first: from this moment a STOP can reach the workload it names.
          const adopted = ctrl.adopt(input);
          await ctrl.prepare().catch(() => undefined); // ExecStop needs the environment
          return adopted;
        }),
        wait: fromPromise(() => ctrl!.wait()),
        shutdown: fromPromise(async () => (ctrl ? ctrl.shutdown() : {})),
        terminate: fromPromise(async () => ctrl?.terminate()),
      },
    });
    const actor = createActor(machine, { id: unit, input: { unit, desired: this.target, adopt }, inspect: this.o.inspect });
    this.actor = actor;
    let lastState: TaskState | undefined;
    let lastPid: number | undefined;
    actor.subscribe({
      next: (snap) => {
        if (this.actor !== actor || this.detached) return;
        const c = snap.context;
        const pid = c.taskState === "running" || c.taskState === "starting" ? c.run?.mainPid : undefined;
        if (c.taskState !== lastState || pid !== lastPid) {
          lastState = c.taskState;
          lastPid = pid;
          this.enqueue({
            taskState: c.taskState,
            hash: this.entry.hash,
            pid,
            exitCode: c.exit?.exitCode,
            signal: c.exit?.signal,
            restarts: this.restarts,
            since: Date.now(),
            error: c.error,
          });
        }
        if (snap.status === "done") this.finished(c.taskState);
      },
      error: (err) => {
        this.log.error({ err: describeError(err) }, "task statechart failed");
        this.enqueue({ taskState: "failed", hash: this.entry.hash, restarts: this.restarts, since: Date.now(), error: describeError(err) });
        this.finished("failed");
      },
    });
    actor.start();
  }

  private finished(state: TaskState): void {
    this.controller?.close();
    const waiters = this.doneWaiters.splice(0);
    for (const w of waiters) w();
    if (this.stopRequested || this.detached || this.target !== "launched") return;
    if (state !== "complete" && state !== "failed") return;
    const s = this.service;
    if (!s) return;
    const d = decideRestart({
      policy: s.restart,
      restartSecMs: s.restartSecMs,
      startLimitBurst: s.startLimitBurst,
      startLimitIntervalMs: s.startLimitIntervalMs,
      outcome: state,
      starts: this.starts,
      now: Date.now(),
    });
    if (d.restart) {
      this.log.info({ delayMs: d.delayMs, reason: d.reason }, "restarting");
      this.restartTimer = setTimeout(() => {
        this.restartTimer = undefined;
        if (this.detached || this.target !== "launched") return;
        this.restarts += 1;
        this.attempt();
      }, d.delayMs);
    } else if (d.limitHit) {
      const prev = this.last;
      const error = prev?.error ? `${d.reason}; last: ${prev.error}` : d.reason;
      this.log.warn({ reason: d.reason }, "not restarting");
      this.enqueue({ ...(prev ?? { hash: this.entry.hash, restarts: this.restarts }), taskState: "failed", since: Date.now(), error });
    }
  }

  /** Store first, then report; in order. */
  private enqueue(status: TaskStatus): void {
    this.last = status;
    this.chain = this.chain
      .then(() => this.o.store.putStatus(this.unit, status))
      .catch((e) => this.log.error({ err: describeError(e) }, "worker store write failed"))
      .then(() => {
        if (!this.detached) this.o.report(this.unit, status);
      });
  }
}
