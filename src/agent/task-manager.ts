// One per task (SwarmKit's taskManager): a statechart (task-manager.machine.ts) whose child is
// the task's current attempt (task.machine.ts), one at a time; reports every status change,
// writing it to the worker store first. Restarts (Restart=, RestartSec=, the start limit) are
// new attempts decided by task-policy.ts; this class provides the chart's effects.
import { assign, fromPromise, type ActorRefFrom, type InspectionEvent } from "xstate";
import { standaloneHost, type ActorHost } from "../server/actor-system.js";
import type { Logger } from "pino";
import type { ScheduleEntry, TaskState } from "../protocol/messages.js";
import { describeError } from "../protocol/errors.js";
import type { ParsedUnit, ServiceOptions } from "../unit/types.js";
import { fatalError, type Controller, type Executor, type RunInfo } from "../exec/executor.js";
import { taskMachine, type TaskContext } from "./task.machine.js";
import { taskManagerMachine } from "./task-manager.machine.js";
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
  /** XState inspection of the task manager and its attempts (the live statecharts on <prefix>.inspect.…). */
  inspect?: (ev: InspectionEvent) => void;
  /** Where its chart runs: the daemon's actor system (system id task-manager:<unit>); default: its own, inspected by `inspect`. */
  actors?: ActorHost;
}

const LIVE_STOPPABLE = new Set(["adopting", "starting", "running"]);

export class TaskManager {
  readonly unit: string;
  readonly entry: ScheduleEntry;
  private target: Target;
  private service?: ServiceOptions;
  private parseError?: string;
  /** The task manager's statechart (task-manager.machine.ts); each attempt is its child `task`. */
  private actor?: ActorRefFrom<ReturnType<typeof TaskManager.buildChart>>;
  private host?: ActorHost;
  private controller?: Controller;
  private restarts = 0;
  /** Start times the start limit can still count (bounded by recordStart to StartLimitBurst). */
  private starts: number[] = [];
  private stopRequested = false;
  private detached = false;
  private chain: Promise<unknown> = Promise.resolve();
  private last?: TaskStatus;
  private doneWaiters: (() => void)[] = [];
  private readonly log: Logger;
  /** The current attempt's last reported task state and pid (a report goes out when either changes). */
  private lastState?: TaskState;
  private lastPid?: number;
  /** The restart decision taken when the last attempt ended (restartDue), acted on by attemptEnded. */
  private decision?: ReturnType<typeof decideRestart>;

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
    const resumed = r?.status && r.status.hash === this.entry.hash ? r.status : undefined;
    if (resumed) this.restarts = resumed.restarts;
    const host = (this.host = this.o.actors ?? standaloneHost({ inspect: this.o.inspect }));
    const systemId = `task-manager:${this.unit}`;
    const stale = host.get(systemId);
    if (stale) {
      // The agent runs one manager per unit and stops the old one first; one left over would
      // hold the unit's id (and its workload's supervision) against the new one.
      this.log.warn("a task manager of this unit was still running: stopping it");
      host.stop(stale);
    }
    const actor = host.spawn(TaskManager.chart(), { systemId, input: { unit: this.unit, target: this.target, restarts: this.restarts, owner: this } }) as ActorRefFrom<
      ReturnType<typeof TaskManager.buildChart>
    >;
    this.actor = actor;
    actor.subscribe({ error: (err) => this.log.error({ err: describeError(err) }, "task manager statechart failed") });
    // A workload that still runs is adopted, whatever state the store holds: an agent killed
    // while adopting wrote `accepted` over `running`; one killed between starting the workload
    // and recording it left no run record at all (the executor finds it by its supervisor).
    const st = resumed?.taskState;
    const terminal = st === "complete" || st === "failed" || st === "rejected" || st === "shutdown";
    // Recorded in another boot or PID namespace (a rebooted host, a restarted container): the
    // workload went with it. Started again, as systemd starts its units at boot (no restart counted).
    if (!terminal && r?.run?.host !== undefined && this.o.executor.hostId && r.run.host !== this.o.executor.hostId()) {
      this.log.info({ pid: r.run.mainPid }, "the task's process went with the host or container it ran in (another boot or PID namespace): starting it again");
      actor.send({ type: "ATTEMPT", target: this.target });
      return;
    }
    const run = r?.run ?? (terminal || !r ? undefined : this.o.executor.running?.(this.unit));
    if (run && !terminal && this.o.executor.isRunning?.(run)) {
      if (!r?.run) this.log.warn({ pid: run.mainPid }, "found the task running although the worker store never recorded it (the agent was killed as it started it): adopting it");
      actor.send({ type: "ATTEMPT", adopt: run, target: this.target });
      return;
    }
    if (resumed) {
      if (r!.run && (st === "starting" || st === "running")) {
        actor.send({ type: "ATTEMPT", adopt: r!.run, target: this.target });
        return;
      }
      if (terminal) {
        // Stays as it ended (a failed unit is not restarted by an agent restart).
        this.last = resumed;
        this.enqueue(resumed);
        actor.send({ type: "HOLD" });
        return;
      }
    }
    actor.send({ type: "ATTEMPT", target: this.target });
  }

  /** The current attempt's snapshot, while it runs. */
  private attemptSnapshot(): { status: string; value: unknown } | undefined {
    const child = this.actor?.getSnapshot().children.task as { getSnapshot(): { status: string; value: unknown } } | undefined;
    const snap = child?.getSnapshot();
    return snap && snap.status === "active" ? snap : undefined;
  }

  setTarget(target: Target): void {
    if (target === this.target || this.detached) return;
    this.target = target;
    void this.o.store.putTask({ entry: this.entry, target, assigned: true });
    const snap = this.attemptSnapshot();
    if (target === "launched") {
      this.stopRequested = false;
      if (snap) this.actor!.send({ type: "START" });
      else {
        this.starts = []; // an explicit start clears the start-limit history, as systemctl start after reset-failed
        this.actor?.send({ type: "ATTEMPT", target });
      }
      return;
    }
    this.actor?.send({ type: "HOLD" }); // a restart that was due is off
    if (snap && typeof snap.value === "string" && LIVE_STOPPABLE.has(snap.value)) this.stopRequested = true;
    if (snap && (typeof snap.value !== "string" || snap.value !== "ready")) this.actor!.send({ type: "STOP" });
  }

  /** Stops the workload (graceful, bounded by TimeoutStopSec) and resolves when it is gone. */
  async stop(): Promise<void> {
    this.stopRequested = true;
    this.actor?.send({ type: "HOLD" });
    if (!this.attemptSnapshot()) return;
    const done = new Promise<void>((r) => this.doneWaiters.push(r));
    this.actor!.send({ type: "STOP" });
    await done;
  }

  /** Unload: stop, delete what is on disk and in the store. No report follows. */
  async remove(): Promise<void> {
    await this.o.store.setAssigned(this.unit, false);
    await this.stop();
    await this.chain;
    this.detached = true;
    const ctrl = this.controller;
    this.actor?.send({ type: "DETACH" });
    if (this.actor) this.host?.stop(this.actor);
    await ctrl?.remove().catch(() => undefined);
    ctrl?.close();
    await this.o.store.delete(this.unit);
  }

  /** Agent stop: let go of the actor; the workload keeps running and is adopted next start. */
  async detach(): Promise<void> {
    this.detached = true;
    this.actor?.send({ type: "DETACH" });
    if (this.actor) this.host?.stop(this.actor);
    this.controller?.close();
    await this.chain;
  }

  /**
   * The chart with the task managers' effects: attempts with a fresh controller each, the
   * restart policy, the reports. Provided once for every unit (a .provide() per unit cost about
   * 0.7 ms of a 1,000-unit load each); each action finds its TaskManager in the chart's context
   * (`owner`), and an attempt's invoked work finds it through the attempt's parent.
   */
  private static provided?: ReturnType<typeof TaskManager.buildChart>;

  private static chart() {
    return (TaskManager.provided ??= TaskManager.buildChart());
  }

  private static buildChart() {
    const of = (context: { owner?: unknown }): TaskManager => context.owner as TaskManager;
    /** An attempt's invoked actor -> the attempt -> its task manager (whose context names the owner). */
    const up = (self: { _parent?: { _parent?: { getSnapshot(): { context?: { owner?: unknown } } } } }): TaskManager => {
      const mgr = self._parent?._parent?.getSnapshot().context;
      if (!mgr?.owner) throw new Error("a task attempt runs outside its task manager");
      return mgr.owner as TaskManager;
    };
    const task = taskMachine.provide({
      actors: {
        prepare: fromPromise(async ({ self }) => {
          await up(self).ctrlNow().prepare();
        }),
        start: fromPromise(async ({ self }) => {
          const tm = up(self);
          const ctrl = tm.ctrlNow();
          const s = tm.service!;
          tm.starts = recordStart(tm.starts, Date.now(), s.startLimitBurst, s.startLimitIntervalMs);
          const run = await ctrl.start();
          await tm.o.store.putRun(tm.unit, run);
          return run;
        }),
        adopt: fromPromise(async ({ input, self }: { input: RunInfo; self: Parameters<typeof up>[0] }) => {
          const ctrl = up(self).ctrlNow();
          // adopt() first: from this moment a STOP can reach the workload it names.
          const adopted = ctrl.adopt(input);
          await ctrl.prepare().catch(() => undefined); // ExecStop needs the environment
          return adopted;
        }),
        wait: fromPromise(({ self }) => up(self).ctrlNow().wait()),
        shutdown: fromPromise(async ({ self }) => {
          const tm = up(self);
          return tm.controller ? tm.controller.shutdown() : {};
        }),
        terminate: fromPromise(async ({ self }) => up(self).controller?.terminate()),
      },
    });
    return taskManagerMachine.provide({
      actors: { task },
      guards: { restartDue: ({ context, event }) => of(context).restartDue((event as unknown as { output?: TaskContext }).output?.taskState) },
      actions: {
        newAttempt: ({ context }) => of(context).newAttempt(),
        closeAttempt: ({ context }) => of(context).controller?.close(),
        attemptChanged: ({ context, event }) => of(context).attemptChanged((event as unknown as { snapshot: { status: string; context: TaskContext } }).snapshot),
        attemptEnded: ({ context, event }) => {
          const tm = of(context);
          const final = (event as unknown as { output?: TaskContext }).output;
          if (final) tm.attemptChanged({ status: "done", context: final });
          tm.attemptEnded();
        },
        attemptCrashed: ({ context, event }) => {
          const tm = of(context);
          const err = (event as { error?: unknown }).error;
          tm.log.error({ err: describeError(err) }, "task statechart failed");
          tm.enqueue({ taskState: "failed", hash: tm.entry.hash, restarts: tm.restarts, since: Date.now(), error: describeError(err) });
          tm.wakeWaiters();
        },
        takeRestart: assign(({ context }) => {
          const tm = of(context);
          tm.restarts += 1;
          return { adopt: undefined, attempts: context.attempts + 1, restarts: tm.restarts, target: "launched" as const };
        }),
        noteDelay: assign({ restartDelayMs: ({ context }) => {
          const d = of(context).decision;
          return d?.restart ? d.delayMs : 0;
        } }),
      },
    });
  }

  /** The current attempt's controller, or why there is none (the unit file does not parse). */
  private ctrlNow(): Controller {
    if (!this.controller) throw fatalError(`${this.unit}: invalid unit file: ${this.parseError}`, "contents");
    return this.controller;
  }

  /** A new attempt begins: a controller of its own (the previous one is closed on leaving it). */
  private newAttempt(): void {
    this.lastState = undefined;
    this.lastPid = undefined;
    this.decision = undefined;
    const service = this.service;
    this.controller = service
      ? this.o.executor.controller({ unit: this.unit, hash: this.entry.hash, service, machineId: this.o.machineId })
      : undefined;
  }

  private attemptChanged(snap: { status: string; context: TaskContext }): void {
    if (this.detached) return;
    const c = snap.context;
    const pid = c.taskState === "running" || c.taskState === "starting" ? c.run?.mainPid : undefined;
    if (c.taskState === this.lastState && pid === this.lastPid) return;
    this.lastState = c.taskState;
    this.lastPid = pid;
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

  /** The attempt ended: whether Restart=, RestartSec= and the start limit call for another (the chart's guard). */
  private restartDue(state: TaskState | undefined): boolean {
    const s = this.service;
    this.decision = undefined;
    if (this.stopRequested || this.detached || this.target !== "launched" || !s) return false;
    if (state !== "complete" && state !== "failed") return false;
    this.decision = decideRestart({
      policy: s.restart,
      restartSecMs: s.restartSecMs,
      startLimitBurst: s.startLimitBurst,
      startLimitIntervalMs: s.startLimitIntervalMs,
      outcome: state,
      starts: this.starts,
      now: Date.now(),
    });
    return this.decision.restart;
  }

  private attemptEnded(): void {
    this.wakeWaiters();
    const d = this.decision;
    if (!d) return;
    if (d.restart) this.log.info({ delayMs: d.delayMs, reason: d.reason }, "restarting");
    else if (d.limitHit) {
      const prev = this.last;
      const error = prev?.error ? `${d.reason}; last: ${prev.error}` : d.reason;
      this.log.warn({ reason: d.reason }, "not restarting");
      this.enqueue({ ...(prev ?? { hash: this.entry.hash, restarts: this.restarts }), taskState: "failed", since: Date.now(), error });
    }
  }

  private wakeWaiters(): void {
    for (const w of this.doneWaiters.splice(0)) w();
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
