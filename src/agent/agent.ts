// The agent (fleet's agent + AgentReconciler, SwarmKit's Agent/worker): watches this machine's
// slice of the schedule (schedule/<machineId>.>: the watch's first values are the full set, the
// rest are increments) and the Global units that fit this machine, diffs that against the
// tasks it runs (reconcile.ts, pure) and executes the result, one chain at a time per unit. It
// reconciles on every watch event and on a timer.
//
// Losing NATS changes nothing locally: the desired set only changes through the watch, so
// running tasks keep running untouched however long NATS is away. On reconnect the watches are
// recreated, their initial values replace the desired set, and tasks that are no longer
// assigned here are stopped at once; every state record is written again.
//
// What it reads and writes of the cluster goes through its store port (store/agent-store.ts):
// on NATS by default (nats/agent-store.ts), in memory for tests of this logic.
import { hostname } from "node:os";
import type { Logger } from "pino";
import type { ClusterContext, Component } from "../server/context.js";
import { keys } from "../protocol/names.js";
import { decodeAs } from "../protocol/codec.js";
import { describeError } from "../protocol/errors.js";
import { childLogger } from "../log.js";
import { ScheduleEntry, UnitRecord } from "../protocol/messages.js";
import { parseUnitFile, chooseGlobals } from "../unit/index.js";
import { arrivalOf } from "../unit/match.js";
import type { ParsedUnit } from "../unit/types.js";
import type { Executor } from "../exec/executor.js";
import { ProcessExecutor, killStale, logFileOf } from "../exec/process-executor.js";
import type { ActorRefFrom } from "xstate";
import { standaloneHost, type ActorHost } from "../server/actor-system.js";
import { inspector } from "../inspect/publisher.js";
import { agentMachine } from "./agent.machine.js";
import { WorkerStore } from "./worker-store.js";
import { TaskManager } from "./task-manager.js";
import { UnitStatePublisher } from "./unit-state-publisher.js";
import type { AgentStore, BucketEntry, BucketWatch, TaskJournal } from "../store/agent-store.js";
import { NatsAgentStore } from "../nats/agent-store.js";
import { reconcile, type CurrentTask, type DesiredTask, type TaskAction } from "./reconcile.js";

export interface AgentOptions {
  executor?: Executor;
  /** The cluster state it reads and writes; default: NATS, from ctx (its connection and buckets). */
  store?: AgentStore;
  parse?: (name: string, contents: string) => ParsedUnit;
}

export function createAgent(ctx: ClusterContext, o: AgentOptions = {}): Agent {
  return new Agent(ctx, o);
}

/** A Global unit as the agent keeps it: the entry it would run, and when the unit arrived. */
type GlobalEntry = ScheduleEntry & { arrival: number };
type Watched = { iter?: BucketWatch; synced: boolean; values: Map<string, ScheduleEntry | GlobalEntry> };

export class Agent implements Component {
  private readonly log: Logger;
  private readonly parse: (name: string, contents: string) => ParsedUnit;
  private readonly cluster: AgentStore;
  private store?: WorkerStore;
  private publisher?: UnitStatePublisher;
  private journal?: TaskJournal;
  private connection?: { stop(): void };
  private executor?: Executor;
  private readonly tasks = new Map<string, TaskManager>();
  private readonly busy = new Set<string>();
  private schedule: Watched = { synced: false, values: new Map() };
  private globals: Watched = { synced: false, values: new Map() };
  /** The agent's statechart (agent.machine.ts): starting → syncing → steady ⇄ disconnected. */
  private actor?: ActorRefFrom<typeof agentMachine>;
  private actors?: ActorHost;
  private running = false;
  private generation = 0;
  private reconcileQueued = false;
  private starting?: Promise<void>;

  constructor(
    private readonly ctx: ClusterContext,
    private readonly o: AgentOptions = {},
  ) {
    this.log = childLogger(ctx.log, { component: "agent", machineId: ctx.machineId });
    // The hostname once: a system call per unit parsed cost more than the parse itself.
    const host = { machineId: ctx.machineId, hostname: hostname() };
    this.parse = o.parse ?? ((name, contents) => parseUnitFile(name, contents, { host }));
    this.cluster = o.store ?? new NatsAgentStore({ nc: ctx.nc, names: ctx.names, buckets: ctx.buckets, machineId: ctx.machineId, log: this.log });
  }

  /** Units this agent runs, with their last status (for tests and tools). */
  snapshot(): { unit: string; target: string; status?: unknown }[] {
    return [...this.tasks.values()].map((t) => ({ unit: t.unit, target: t.currentTarget, status: t.status }));
  }

  start(): Promise<void> {
    if (this.running) return this.starting ?? Promise.resolve();
    this.running = true;
    this.starting = this.doStart();
    return this.starting;
  }

  private async doStart(): Promise<void> {
    const { ctx } = this;
    const gen = ++this.generation;
    // In the daemon's actor system as `agent` (its inspector sees it); alone, a system of its own.
    this.actors = ctx.actors ?? standaloneHost({ inspect: inspector(ctx.nc, ctx.names, ctx.machineId, "agent", { withContext: true }) });
    const actor = this.actors.spawn(
      agentMachine.provide({
        actions: {
          reconcile: () => this.reconcileSoon(),
          resync: () => this.resync(),
        },
      }),
      { systemId: "agent", input: { reconcileEveryMs: ctx.config.reconcileIntervalMs } },
    ) as ActorRefFrom<typeof agentMachine>;
    this.actor = actor;
    const store = new WorkerStore(ctx.config.stateDir);
    this.store = store;
    this.executor = this.o.executor ?? new ProcessExecutor({ stateDir: ctx.config.stateDir, log: this.log });
    this.publisher = new UnitStatePublisher({ kv: this.cluster.states, machineId: ctx.machineId, ttlMs: ctx.config.agentTtlMs, log: this.log });
    this.journal = await this.cluster.openJournal({ store, log: this.log, maxFileBytes: ctx.config.taskLogMaxBytes });
    this.publisher.start();
    this.journal.start();

    const { resume, dropped } = await store.init();
    for (const t of dropped) {
      this.log.info({ unit: t.entry.unit }, "task was being unloaded when the agent stopped: finishing that");
      if (t.run) killStale(t.run);
    }
    // All at once: a restarted agent with many tasks reads its schedule (and stops what moved
    // away while it was gone) only after it has taken every task back.
    const journal = this.journal;
    await Promise.all(
      resume.map(async (t) => {
        const tm = this.newTask(t.entry, t.target, t);
        await journal.follow(t.entry.unit, logFileOf(ctx.config.stateDir, t.entry.unit), t.journalOffset);
        await tm.start();
      }),
    );
    if (resume.length) this.log.info({ tasks: resume.length }, "resumed tasks from the worker store");
    actor.send({ type: "STARTED", resumed: resume.length });

    this.schedule = { synced: false, values: new Map() };
    this.globals = { synced: false, values: new Map() };
    void this.watchLoop(gen, "schedule");
    void this.watchLoop(gen, "globals");
    this.followConnection(gen);
  }

  /** NATS came back: new watches (their replay replaces the desired set), every state written again. */
  private resync(): void {
    this.schedule.iter?.stop();
    this.globals.iter?.stop();
    this.publisher?.resync();
  }

  /**
   * The daemon is exiting with --stop-tasks-on-exit (`flotilla up`): stop every task gracefully
   * (ExecStop/SIGTERM, SIGKILL after TimeoutStopSec) and forget it, so the next daemon starts it
   * afresh from the schedule instead of finding it stopped.
   */
  async prepareExit(): Promise<void> {
    if (!this.ctx.config.stopTasksOnExit || !this.running) return;
    const tasks = [...this.tasks.entries()];
    if (tasks.length === 0) return;
    this.log.info({ tasks: tasks.length }, "stopping every task before exiting (stop_tasks_on_exit)");
    // No new work while we stop: the watches would start what we just stopped.
    this.generation++;
    this.actor?.send({ type: "STOP" });
    this.schedule.iter?.stop();
    this.globals.iter?.stop();
    await Promise.all(
      tasks.map(async ([unit, t]) => {
        await t.stop().catch((e) => this.log.warn({ unit }, `could not stop ${unit} on exit: ${describeError(e)}`));
        await t.detach();
        await this.store?.delete(unit);
        this.tasks.delete(unit);
      }),
    );
    this.log.info({ tasks: tasks.length }, "stopped every task");
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    await this.starting?.catch(() => undefined);
    this.running = false;
    this.generation++;
    this.actor?.send({ type: "STOP" });
    if (this.actor) this.actors?.stop(this.actor);
    this.actor = undefined;
    this.schedule.iter?.stop();
    this.globals.iter?.stop();
    this.connection?.stop();
    this.connection = undefined;
    // The workloads keep running: the next start adopts them from the worker store.
    await Promise.all([...this.tasks.values()].map((t) => t.detach()));
    this.tasks.clear();
    this.busy.clear();
    await this.journal?.stop();
    await this.publisher?.stop(true);
    await this.store?.close();
  }

  // ---- watches ----

  private async watchLoop(gen: number, which: "schedule" | "globals"): Promise<void> {
    let delay = 250;
    const live = () => this.running && gen === this.generation;
    while (live()) {
      const w: Watched = { synced: false, values: new Map() };
      try {
        const bucket = which === "schedule" ? this.cluster.schedule : this.cluster.units;
        const prev = which === "schedule" ? this.schedule : this.globals;
        // The replay's entries are the current values: the desired set is replaced once it is over.
        const synced = () => {
          w.synced = true;
          if (which === "schedule") this.schedule = w;
          else this.globals = w;
          this.log.debug({ which, count: w.values.size }, "watch synced");
          if (this.schedule.synced && this.globals.synced) this.actor?.send({ type: "SYNCED" });
          this.reconcileSoon();
        };
        const watch = await bucket.watch({
          entry: (e) => {
            if (!live()) return;
            if (which === "schedule") this.applySchedule(w.values, e);
            else this.applyUnit(w.values, e);
            if (w.synced) this.reconcileSoon();
          },
          caughtUp: () => {
            if (live()) synced();
          },
        });
        if (!live()) {
          watch.stop();
          return;
        }
        w.iter = watch;
        prev.iter?.stop();
        delay = 250;
        // Until it is stopped (a resync, the agent stopping) or the connection closes.
        await watch.closed;
      } catch (e) {
        if (!live()) return;
        this.log.warn(`${which} watch failed: ${describeError(e)} (retrying in ${delay} ms)`);
      }
      if (!live()) return;
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 5000);
    }
  }

  private applySchedule(values: Map<string, ScheduleEntry>, e: BucketEntry): void {
    const k = keys.parseSchedule(e.key);
    if (!k || k.machineId !== this.ctx.machineId) return;
    if (e.operation !== "PUT") {
      values.delete(k.unit);
      return;
    }
    try {
      const entry = decodeAs(ScheduleEntry, e.value, `schedule/${e.key}`);
      if (entry.unit !== k.unit) throw new Error(`schedule/${e.key}: entry names unit ${entry.unit}`);
      const prev = values.get(k.unit);
      if (prev && prev.epoch > entry.epoch) {
        this.log.warn({ unit: k.unit, epoch: entry.epoch, current: prev.epoch }, "ignoring a schedule write of an older leader epoch");
        return;
      }
      values.set(k.unit, { ...entry, machineId: this.ctx.machineId });
    } catch (err) {
      this.log.warn({ key: e.key, err: describeError(err) }, "skipping a bad schedule entry");
    }
  }

  private applyUnit(values: Map<string, ScheduleEntry | GlobalEntry>, e: BucketEntry): void {
    const unit = keys.unitFromKey(e.key);
    if (e.operation !== "PUT") {
      values.delete(unit);
      return;
    }
    try {
      const rec = decodeAs(UnitRecord, e.value, `units/${e.key}`);
      const parsed = this.parse(rec.name, rec.contents);
      if (!parsed.fleet.global) {
        values.delete(unit);
        return;
      }
      values.set(unit, {
        unit: rec.name,
        machineId: this.ctx.machineId,
        hash: rec.hash,
        desiredState: rec.desiredState,
        contents: rec.contents,
        epoch: 0,
        scheduledAt: rec.updatedAt,
        arrival: arrivalOf(rec, e.revision),
      });
    } catch (err) {
      values.delete(unit);
      this.log.debug({ key: e.key, err: describeError(err) }, "skipping a unit record (bad or not parseable)");
    }
  }

  private followConnection(gen: number): void {
    this.connection?.stop();
    this.connection = this.cluster.followConnection({
      lost: () => {
        if (!this.running || gen !== this.generation) return;
        this.log.warn("NATS connection lost: tasks keep running; resynchronising when it returns");
        this.actor?.send({ type: "DISCONNECTED" });
      },
      back: () => {
        if (!this.running || gen !== this.generation) return;
        this.log.info("NATS connection back: resynchronising the schedule and states");
        // The chart resyncs (this.resync()) on its way from disconnected to syncing.
        if (this.actor?.getSnapshot().value === "disconnected") this.actor.send({ type: "RECONNECTED" });
        else this.resync();
      },
    });
  }

  // ---- reconcile ----

  /**
   * The desired set: this machine's schedule, plus the Global units chooseGlobals picks here. Globals are
   * taken in arrival order (first come, first served; ties by name) and each one chosen joins
   * the set the later ones are checked against, so of two globals that conflict the one that
   * came first runs, on every machine the same, and a newer one waits instead of pushing it
   * off. Inactive globals take no part (the engine leaves them out too).
   */
  private desired(): Map<string, ScheduleEntry> {
    const out = new Map(this.schedule.values);
    if (this.globals.values.size === 0) return out;
    const metadata = this.ctx.machine().metadata;
    const here = [...out.values()].flatMap((e) => {
      try {
        return [{ name: e.unit, fleet: this.parse(e.unit, e.contents).fleet }];
      } catch {
        return [];
      }
    });
    const globals = [...this.globals.values.values()].flatMap((g) => {
      if (out.has(g.unit) || g.desiredState === "inactive") return [];
      try {
        return [{ name: g.unit, fleet: this.parse(g.unit, g.contents).fleet, entry: g, arrival: (g as GlobalEntry).arrival }];
      } catch {
        return []; // not parseable: never reaches here (applyUnit drops it)
      }
    });
    for (const g of chooseGlobals(globals, metadata, here)) out.set(g.name, g.entry);
    return out;
  }

  reconcileSoon(): void {
    if (this.reconcileQueued || !this.running) return;
    this.reconcileQueued = true;
    setImmediate(() => {
      this.reconcileQueued = false;
      this.reconcileNow();
    });
  }

  private reconcileNow(): void {
    if (!this.running || !this.schedule.synced || !this.globals.synced) return;
    const entries = this.desired();
    const desired = new Map<string, DesiredTask>();
    for (const e of entries.values()) desired.set(e.unit, { unit: e.unit, hash: e.hash, desiredState: e.desiredState });
    const current = new Map<string, CurrentTask>();
    for (const t of this.tasks.values()) current.set(t.unit, { unit: t.unit, hash: t.entry.hash, target: t.currentTarget });
    const actions = reconcile(desired, current);
    const byUnit = new Map<string, TaskAction[]>();
    for (const a of actions) {
      if (this.busy.has(a.unit)) continue;
      const list = byUnit.get(a.unit) ?? [];
      list.push(a);
      byUnit.set(a.unit, list);
    }
    for (const [unit, list] of byUnit) {
      this.busy.add(unit);
      const gen = this.generation;
      void this.execute(list, entries.get(unit), gen)
        .catch((e) => this.log.error({ unit, err: describeError(e) }, "task action failed"))
        .finally(() => {
          if (gen !== this.generation) return;
          this.busy.delete(unit);
          this.reconcileSoon();
        });
    }
  }

  private async execute(actions: TaskAction[], entry: ScheduleEntry | undefined, gen: number): Promise<void> {
    const loadAndStart = actions.some((a) => a.type === "load") && actions.some((a) => a.type === "start");
    for (const a of actions) {
      if (!this.running || gen !== this.generation) return; // stopped meanwhile: the next start resumes from the store
      this.log.info({ unit: a.unit, action: a.type, reason: a.reason }, `${a.type} ${a.unit}: ${a.reason}`);
      const tm = this.tasks.get(a.unit);
      switch (a.type) {
        case "unload":
          if (!tm) break;
          await tm.remove();
          this.tasks.delete(a.unit);
          await this.journal?.unfollow(a.unit);
          this.publisher?.remove(a.unit);
          break;
        case "load": {
          if (!entry || tm) break;
          const t = this.newTask(entry, loadAndStart ? "launched" : "loaded");
          await this.journal?.follow(a.unit, logFileOf(this.ctx.config.stateDir, a.unit));
          await t.start();
          break;
        }
        case "start":
          if (!loadAndStart) tm?.setTarget("launched");
          break;
        case "stop":
          tm?.setTarget("loaded");
          break;
      }
    }
  }

  private newTask(entry: ScheduleEntry, target: "loaded" | "launched", resume?: ConstructorParameters<typeof TaskManager>[0]["resume"]): TaskManager {
    const tm = new TaskManager({
      entry,
      target,
      machineId: this.ctx.machineId,
      executor: this.executor!,
      store: this.store!,
      parse: this.parse,
      report: (unit, status) => this.publisher?.update(unit, status),
      log: this.log,
      resume,
      ...(this.ctx.actors
        ? { actors: this.ctx.actors }
        : { inspect: inspector(this.ctx.nc, this.ctx.names, this.ctx.machineId, "task-manager", { unit: entry.unit }) }),
    });
    this.tasks.set(entry.unit, tm);
    return tm;
  }
}
