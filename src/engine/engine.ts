// The engine component (fleet's engine): every engine-enabled daemon stands for the lease; only
// the leader reconciles. The leader keeps in-memory views fed by watches on `units` and
// `machines` and by a replay of `schedule` plus its own acknowledged writes (no full re-read
// per round; a write by anyone else shows as a gap in the schedule's stream sequence and
// triggers a replay), runs the pure reconciler on watch events (debounced) and on a timer
// (reconcileIntervalMs, plus the moment a machine's silence reaches the agent TTL), and
// executes the actions through the guarded, pipelined writer.
//
// On becoming leader it opens the watches and waits until each has replayed its bucket before
// the first round: deciding on half a schedule could place a unit twice. Every known machine
// then gets one full agent TTL of grace. On stepping down it stops at once: the watches close,
// the views are dropped, an in-flight batch stops at its next window.
import { randomBytes } from "node:crypto";
import type { NatsConnection } from "@nats-io/nats-core";
import { fromCallback, fromPromise, type ActorRefFrom, type InspectionEvent } from "xstate";
import { standaloneHost, type ActorHost } from "../server/actor-system.js";
import type { Logger } from "pino";
import { describeError } from "../protocol/errors.js";
import type { Buckets } from "../nats/buckets.js";
import type { BucketEntry, BucketWatch } from "../nats/kv-watch.js";
import { NatsEngineStore } from "../nats/engine-store.js";
import type { EngineStore } from "../store/engine-store.js";
import type { ClusterContext, Component } from "../server/context.js";
import { inspector } from "../inspect/publisher.js";
import { childLogger } from "../log.js";
import { engineMachine, type EngineEvent, type RoundOutput } from "./engine.machine.js";
import { leaseMachineFor } from "./lease.js";
import { Liveness } from "./liveness.js";
import { reconcileAtOnce, reconcileKeeping } from "./reconciler.js";
import { placeIncrementallySliced } from "./incremental.js";
import { machinesSignature, placeFreshSliced } from "./fast-path.js";
import { ScheduleWriter } from "./schedule-writer.js";
import { Slicer } from "./slicer.js";
import { ClusterViews } from "./views.js";
import type { ClusterState } from "./scheduler.js";
import type { Action } from "./model.js";

export interface EngineOptions {
  /** What the engine reads and writes (store/engine-store.ts); without it, NATS from buckets and nc. */
  store?: EngineStore;
  buckets?: Pick<Buckets, "units" | "schedule" | "machines" | "leases">;
  /** For the watches and the schedule writes: core publishes proven by acknowledged checkpoints (ack-publisher.ts). */
  nc?: NatsConnection;
  log: Logger;
  machineId: string;
  leaseTtlMs: number;
  agentTtlMs: number;
  reconcileIntervalMs: number;
  /** Publishes the engine statechart's (and its lease child's) transitions (inspect/publisher.ts), when given. */
  inspect?: (ev: InspectionEvent) => void;
  /** Where its statechart runs: the daemon's actor system (system id "engine"); default: a system of its own, inspected by `inspect`. */
  actors?: ActorHost;
  /** Wait after a watch event before a round, gathering the changes that come with it (default 5 ms). */
  debounceMs?: number;
  /**
   * The lease on a connection of its own (ClusterContext.connect), opened at start and closed at
   * stop. On the shared connection a renewal queues behind the flood of watch deliveries of a
   * large intake, times out, and the leader steps down. Without it, buckets.leases is used.
   */
  leaseConnection?: { connect(name: string): Promise<NatsConnection>; bucket: string };
}

export interface EngineStats {
  rounds: number;
  scheduled: number;
  unscheduled: number;
  lastRoundMs: number;
  /** Date.now() of the first acknowledged write of the current term (0: none yet). */
  firstWriteAt: number;
  /** Date.now() when the latest batch with placements or removals was proven written. */
  lastWriteAt: number;
  /** Answered lease renewals, and the slowest answer in ms (renewals time out at TTL/2). */
  renewals: number;
  renewMaxMs: number;
  /** Time spent deciding (the reconciler, or the fast path), in ms. */
  reconcileMs: number;
  /** Rounds that took the fast path (fast-path.ts). */
  fastRounds: number;
  /** Rounds that placed new units on the last full pass's picture (incremental.ts). */
  incrementalRounds: number;
}

/**
 * After a round that changed something, while changes still arrive (one in the last QUIET_MS),
 * the next round waits DUTY × the time the last one took to decide (capped at 250 ms): during a
 * flood, passes over the whole cluster then take at most about half of the engine's time, and
 * the rest goes to taking the flood in (bench:schedule, 100,000 units: about half the rounds and
 * reconcile time of back-to-back rounds). Once the flood stops, the next round starts at once,
 * and a pause under way ends (the chart's `quiet` child): it has no intake left to make room for.
 */
const DUTY = 1;
/** Changes waiting that start a round at once, without waiting for the debounce timer. */
const BATCH = 1000;
/** No change for this long: the flood (if any) is over. */
const QUIET_MS = 10;
/** Units plus placements above which a reconcile pass is sliced (reconcileSliced), and the slice. */
const SLICE_ABOVE = 1000;
const SLICE_MS = 10;

export class Engine implements Component {
  readonly holder: string;
  readonly stats: EngineStats = { rounds: 0, scheduled: 0, unscheduled: 0, lastRoundMs: 0, firstWriteAt: 0, lastWriteAt: 0, renewals: 0, renewMaxMs: 0, reconcileMs: 0, fastRounds: 0, incrementalRounds: 0 };
  private readonly log: Logger;
  private readonly writer: ScheduleWriter;
  /** The engine statechart (engine.machine.ts), with the lease as its child. */
  private actor?: ActorRefFrom<typeof engineMachine>;
  private readonly actors: ActorHost;
  /**
   * start() and stop() run one at a time, in call order: a stop that outlasts its caller's
   * patience (the monitor gives components a budget, then starts them again) must not tear down
   * the start that came after it.
   */
  private lifecycle: Promise<void> = Promise.resolve();
  private started = false;
  private readonly store: EngineStore;
  private leading = false;
  private epoch = 0;
  /** Bumped on every term change: loops of an old term see it and end. */
  private gen = 0;
  private watches: BucketWatch[] = [];
  private ready = { units: false, schedule: false, machines: false };
  private readonly views: ClusterViews;
  private liveness: Liveness;
  /** The schedule stream's sequence our view accounts for (we know the revision of every write). */
  private scheduleSeq = 0;
  private graced = false;
  /** The round in flight, awaited before the lease is released. */
  private roundDone?: Promise<unknown>;
  /** Calls of stop() so far: a stand-again does not undo a stop that came meanwhile. */
  private stops = 0;
  private lastReconcileMs = 0;
  /** The last round wrote all it decided and left nothing unplaced (fast-path.ts, incremental.ts). */
  private settled = false;
  /**
   * The last full pass's picture of the cluster, as the incremental rounds since have grown it
   * (incremental.ts); dropped by any round that does not keep it right.
   */
  private kept?: ClusterState;
  /** The live machines of the last round (machinesSignature). */
  private lastSignature = "";
  /** Date.now() of the latest change that called for a round. */
  private lastChangeAt = 0;
  /** Changes that called for a round since the last one started, and whether the chart was told. */
  private pending = 0;
  private told = false;
  /** Tells the chart of the current term's watches (CHANGE, FLOOD, READY, WATCH_FAILED). */
  private sendBack?: (e: EngineEvent) => void;

  constructor(private readonly o: EngineOptions) {
    this.holder = `${o.machineId}/${randomBytes(4).toString("hex")}`;
    this.log = o.log;
    this.store =
      o.store ??
      new NatsEngineStore({ buckets: o.buckets!, nc: o.nc!, log: o.log, leaseConnection: o.leaseConnection });
    this.writer = new ScheduleWriter(this.store, o.log, this.store.schedulePublisher());
    this.liveness = new Liveness(o.agentTtlMs);
    this.views = new ClusterViews(o.log, this.liveness);
    this.actors = o.actors ?? standaloneHost({ inspect: o.inspect });
  }

  get isLeader(): boolean {
    return this.leading;
  }
  get term(): number {
    return this.epoch;
  }
  /** The statechart's state value (for tests and the logs). */
  get state(): unknown {
    return this.actor?.getSnapshot().value;
  }
  /** The lease statechart's state value: candidate, follower, leader (for tests and the logs). */
  get leaseState(): unknown {
    return this.leaseSnapshot()?.value;
  }

  start(): Promise<void> {
    return this.serially(async () => {
      if (this.started) return;
      await this.startInner();
      this.started = true;
    });
  }

  private serially(f: () => Promise<void>): Promise<void> {
    const p = this.lifecycle.then(f);
    this.lifecycle = p.catch(() => undefined);
    return p;
  }

  private async startInner(): Promise<void> {
    // The lease's own connection keeps renewals clear of a flood of watch traffic (engine-store.ts).
    const kv = await this.store.openLease();
    const onRenewed = (ms: number): void => {
      this.stats.renewals++;
      if (ms > this.stats.renewMaxMs) this.stats.renewMaxMs = ms;
    };
    const actor = this.actors.spawn(this.provided(leaseMachineFor(kv, this.log, onRenewed, (h) => this.store.watchLease(h))), {
      systemId: "engine",
      input: { holder: this.holder, leaseTtlMs: this.o.leaseTtlMs, debounceMs: this.o.debounceMs ?? 5 },
    }) as ActorRefFrom<typeof engineMachine>;
    this.actor = actor;
    actor.subscribe({
      next: (snap) => {
        if (snap.status === "done" && snap.value === "stoodDown") void this.standAgain(snap.context.lastWhy, actor);
      },
      error: (err) => this.log.error({ err: describeError(err) }, "the engine statechart failed"),
    });
  }

  /** The chart with this engine's effects: the work is here, the sequencing there. */
  private provided(lease: ReturnType<typeof leaseMachineFor>) {
    return engineMachine.provide({
      actors: {
        lease,
        watches: fromCallback<EngineEvent, { epoch: number }>(({ sendBack }) => {
          const gen = this.gen;
          this.sendBack = sendBack;
          void this.openWatches(gen).catch((e) => {
            if (gen === this.gen) sendBack({ type: "WATCH_FAILED", why: `cannot watch the cluster state (${describeError(e)})` });
          });
          return () => {
            if (this.sendBack === sendBack) this.sendBack = undefined;
          };
        }),
        round: fromPromise<RoundOutput, { periodic: boolean }>(({ input }) => {
          const p = this.round(input.periodic);
          this.roundDone = p.catch(() => undefined);
          return p;
        }),
        quiet: quietAfter(() => this.lastChangeAt, QUIET_MS),
        resync: fromPromise<void, { why: string }>(({ input }) => this.resyncSchedule(input.why)),
        drain: fromPromise<void>(async () => {
          await this.roundDone;
        }),
      },
      actions: {
        beginTerm: ({ context }) => this.becomeLeader(context.epoch),
        endTerm: ({ event }) => this.stepDown(this.stopping ? "stopping" : (event as { why?: string }).why || "lost the lease"),
        clusterLoaded: () => this.clusterLoaded(),
      },
    });
  }

  private stopping = false;

  stop(): Promise<void> {
    this.stops++;
    return this.serially(() => this.stopInner());
  }

  /**
   * The leader cannot see the cluster (its watches could not be opened): its chart gave the
   * lease up (standingDown); it stands again, as after a restart of the component, unless
   * someone stopped it meanwhile. Giving up for good would leave a one-daemon cluster without an
   * engine until the daemon's next restart.
   */
  private async standAgain(why: string, actor: ActorRefFrom<typeof engineMachine>): Promise<void> {
    if (actor !== this.actor || !this.started) return;
    this.log.error(`${why}; giving up the lease and standing again`);
    const stops = this.stops;
    await this.serially(() => this.stopInner());
    // A pause first, so that a cluster state that stays unreadable costs a try per pause.
    await new Promise((r) => setTimeout(r, Math.max(100, Math.floor(this.o.leaseTtlMs / 5))));
    if (this.stops === stops) await this.start().catch((e) => this.log.error({ err: describeError(e) }, "cannot stand again for the lease"));
  }

  private async stopInner(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    const actor = this.actor;
    this.actor = undefined;
    if (actor) {
      // The chart stops writing, lets the batch in flight end, then releases the lease, so that
      // the next leader never reads a schedule we are still changing (bounded: 1 s + 1 s).
      this.stopping = true;
      actor.send({ type: "STOP" });
      await new Promise<void>((resolve) => {
        if (actor.getSnapshot().status !== "active") return resolve();
        const t = setTimeout(() => {
          sub.unsubscribe();
          resolve();
        }, 2500);
        const sub = actor.subscribe({
          next: (s) => {
            if (s.status !== "active") {
              clearTimeout(t);
              resolve();
            }
          },
          error: () => resolve(),
        });
      });
      this.actors.stop(actor);
      this.stopping = false;
      if (this.leading) this.stepDown("stopping");
    }
    this.writer.close();
    await this.store.closeLease();
  }

  // ---- terms ----

  private becomeLeader(epoch: number): void {
    this.leading = true;
    this.epoch = epoch;
    this.stats.firstWriteAt = 0;
    ++this.gen;
    this.log.info({ epoch, holder: this.holder }, "elected engine leader");
    this.ready = { units: false, schedule: false, machines: false };
    this.settled = false;
    this.kept = undefined;
    this.graced = false;
    this.pending = 0;
    this.told = false;
  }

  private stepDown(why: string): void {
    if (!this.leading) return;
    this.leading = false;
    this.gen++;
    // Handing over on our own stop is routine; losing the lease otherwise is worth a warning.
    const level = why === "stopping" ? "info" : "warn";
    this.log[level]({ epoch: this.epoch, why }, "no longer engine leader: stopped writing");
    for (const w of this.watches) w.stop();
    this.watches = [];
    this.views.clear();
    this.liveness.clear();
  }

  private async openWatches(gen: number): Promise<void> {
    for (const name of ["units", "schedule", "machines"] as const) await this.openWatch(name, gen);
  }
  /**
   * Replays a bucket into its view, then follows it. The schedule is special: we know the
   * revision of each of our writes and are its only writer, so after the replay its watch is
   * closed (no echo of our own 100,000 writes) and the view follows our acknowledged writes;
   * any write of someone else shows as a gap in the stream sequence (checked after each batch
   * and before each round) and makes us replay the schedule again.
   */
  private async openWatch(name: keyof Engine["ready"], gen: number): Promise<void> {
    const handle = (e: BucketEntry): boolean =>
      name === "units" ? this.views.onUnit(e) : name === "schedule" ? this.views.onSchedule(e) : this.views.onMachine(e);
    const bucket = this.store[name];
    let maxRev = await bucket.lastRevision();
    if (gen !== this.gen) return;
    const follow = name !== "schedule";
    let w: BucketWatch | undefined;
    let caughtUp = false;
    const replayed = () => {
      if (name === "schedule") this.scheduleSeq = maxRev;
      if (!follow) w?.stop();
      this.markReady(name, gen);
    };
    w = await bucket.watch({
      entry: (e) => {
        if (gen !== this.gen) return;
        if (e.revision > maxRev) maxRev = e.revision;
        let kick = false;
        try {
          kick = handle(e);
        } catch (err) {
          this.log.warn({ bucket: name, key: e.key, err: describeError(err) }, "skipping a watch entry");
        }
        if (kick && this.ready[name] && this.allReady()) this.changed();
      },
      caughtUp: () => {
        caughtUp = true;
        if (gen === this.gen && w) replayed();
      },
    });
    if (gen !== this.gen) {
      w.stop();
      return;
    }
    this.watches.push(w);
    // The replay may have ended while watchBucket was still returning.
    if (caughtUp) replayed();
    // No timer ends a replay (watchBucket ends it from what the consumer has left, also when keys
    // expire mid-replay): a first round on half the machines would unschedule the units of the
    // rest, the mass eviction the grace period exists to prevent.
    w.closed.catch((err) => this.log.warn({ bucket: name, err: describeError(err) }, "watch ended"));
  }

  /** Someone else wrote into the schedule: forget our view of it and replay it; resolves once replayed. */
  private resyncSchedule(why: string): Promise<void> {
    this.log.warn({ why }, "the schedule changed behind our back; reloading it");
    this.settled = false;
    this.kept = undefined;
    this.ready.schedule = false;
    this.views.clearSchedule();
    const gen = this.gen;
    return new Promise<void>((resolve, reject) => {
      this.scheduleReplayed = resolve;
      this.openWatch("schedule", gen).catch((e) => reject(new Error(`cannot reload the schedule (${describeError(e)})`)));
    });
  }
  private scheduleReplayed?: () => void;

  /** Checks that our proven writes are the only ones since scheduleSeq; a reason to resync otherwise. */
  private accountWrites(revisions: number[], failures: number): string | undefined {
    if (failures > 0) return `${failures} write(s) failed and may or may not have landed`;
    revisions.sort((a, b) => a - b);
    let expected = this.scheduleSeq + 1;
    for (const r of revisions) {
      if (r !== expected) return `stream sequence ${expected} is not ours`;
      expected++;
    }
    this.scheduleSeq = expected - 1;
    return undefined;
  }

  private markReady(name: keyof Engine["ready"], gen: number): void {
    if (gen !== this.gen || this.ready[name]) return;
    this.ready[name] = true;
    if (name === "schedule" && this.scheduleReplayed) {
      const done = this.scheduleReplayed;
      this.scheduleReplayed = undefined;
      done();
    }
    if (this.allReady() && !this.graced) this.sendBack?.({ type: "READY" });
  }

  /** The chart took READY: one full TTL of grace for every known machine, once per term (not on a reload). */
  private clusterLoaded(): void {
    this.liveness.graceAll(Date.now());
    this.graced = true;
    this.log.info(
      { units: this.views.units.size, placements: this.views.placements.size, machines: this.views.machines.size },
      "cluster state loaded; reconciling",
    );
  }

  private allReady(): boolean {
    return this.ready.units && this.ready.schedule && this.ready.machines;
  }

  // ---- rounds ----

  /**
   * A watch event that calls for a round. The chart hears of the first change since the last
   * round began (CHANGE: a round follows debounceMs later, with whatever else came meanwhile),
   * and of the BATCH-th (FLOOD). While a flood arrives the debounce timer cannot fire (Node
   * reads a busy socket up to 32 times before it looks at timers, so a 3 MB burst is taken in
   * whole first), and the writes would only start once the flood is in; a FLOOD starts the round
   * at once, so intake and writes overlap (the duty bound still holds). Two events per round at
   * most, whatever the flood: the chart is not fed one event per unit.
   */
  private changed(): void {
    this.pending++;
    this.lastChangeAt = Date.now();
    if (!this.told) {
      this.told = true;
      this.sendBack?.({ type: "CHANGE" });
    }
    if (this.pending === BATCH) this.sendBack?.({ type: "FLOOD" });
  }

  /** The chart's lease child, as it stands now. */
  private leaseSnapshot(): { value: unknown; context: { epoch: number; validUntil: number } } | undefined {
    const child = this.actor?.getSnapshot().children.lease as { getSnapshot(): { value: unknown; context: { epoch: number; validUntil: number } } } | undefined;
    return child?.getSnapshot();
  }

  /** The lease's context, as the chart's child holds it. */
  private leaseContext(): { epoch: number; validUntil: number } | undefined {
    return this.leaseSnapshot()?.context;
  }

  /**
   * One round: decide (the fast path or the reconciler) and write. periodic: a timer round,
   * which also checks the schedule for foreign writes. Tells the chart what comes next.
   */
  private async round(periodic: boolean): Promise<RoundOutput> {
    const gen = this.gen;
    this.pending = 0;
    this.told = false;
    let progress = false;
    const nextWake = (): number => {
      const nextLoss = this.liveness.nextExpiry(Date.now());
      return Math.max(0, Math.min(this.o.reconcileIntervalMs, nextLoss === undefined ? Infinity : nextLoss + 5));
    };
    if (!this.leading || !this.allReady()) return { progress: false, dutyMs: 0, nextWakeMs: nextWake() };
    let resync: string | undefined;
    try {
      const t0 = performance.now();
      if (periodic) {
        const last = await this.store.schedule.lastRevision();
        if (gen !== this.gen || !this.ready.schedule) return { progress: false, dutyMs: 0, nextWakeMs: nextWake() };
        if (last !== this.scheduleSeq) return { progress: false, dutyMs: 0, nextWakeMs: 0, resync: `stream at ${last}, our view at ${this.scheduleSeq}` };
      }
      const now = Date.now();
      const v = this.views;
      const r0 = performance.now();
      const live = v.liveMachines(now);
      const sig = machinesSignature(live);
      const changes = v.takeChanges();
      // Only news that a full pass would answer by placing new units, on the same machines,
      // after a round whose writes all landed: the fast path (all plain, fast-path.ts) or an
      // incremental round on the last pass's picture (incremental.ts). A timer round always
      // takes the full pass, which also repairs anything their bookkeeping could have missed.
      const onlyNew = !periodic && this.settled && !changes.other && sig === this.lastSignature && v.unplaced.size === 0;
      const kept = this.kept;
      this.kept = undefined;
      let fast: Action[] | undefined;
      let incremental: Action[] | undefined;
      if (onlyNew && v.notPlain.size === 0) {
        fast = await placeFreshSliced({ fresh: changes.fresh, units: v.units, loads: v.loads, machines: live }, new Slicer(SLICE_MS));
      } else if (onlyNew && kept) {
        incremental = await placeIncrementallySliced({ state: kept, fresh: changes.fresh, units: v.units }, new Slicer(SLICE_MS));
        if (incremental) this.kept = kept;
      }
      // A full pass decides on copies (the views follow the watches meanwhile) and yields to the
      // event loop every ~10 ms when large (lease renewals, heartbeats and API requests keep
      // flowing); a small one runs in one go. Its picture is kept for the incremental rounds.
      let actions = fast ?? incremental;
      if (!actions) {
        const input = { units: new Map(v.units), placements: [...v.placements.values()], machines: live, unplaced: new Map(v.unplaced) };
        const full = v.units.size + v.placements.size > SLICE_ABOVE ? await reconcileKeeping(input, { sliceMs: SLICE_MS }) : reconcileAtOnce(input);
        actions = full.actions;
        this.kept = full.state;
      }
      if (gen !== this.gen || !this.leading) return { progress: false, dutyMs: 0, nextWakeMs: nextWake() };
      if (fast) this.stats.fastRounds++;
      if (incremental) this.stats.incrementalRounds++;
      this.lastSignature = sig;
      this.settled = false;
      let settled = !actions.some((a) => a.type === "unplaced");
      this.lastReconcileMs = performance.now() - r0;
      this.stats.reconcileMs += this.lastReconcileMs;
      this.stats.rounds++;
      if (actions.length) {
        const res = await this.writer.execute(actions, {
          epoch: this.epoch,
          units: this.views.units,
          leading: () => this.leading && gen === this.gen,
          leaseHeld: () => {
            const c = this.leaseContext();
            const margin = Math.min(500, Math.floor(this.o.leaseTtlMs / 10));
            return c !== undefined && c.epoch === this.epoch && Date.now() < c.validUntil - margin;
          },
          base: this.scheduleSeq,
        });
        if (gen === this.gen) progress = await this.views.apply(res, new Slicer(SLICE_MS));
        if (gen === this.gen) {
          this.stats.scheduled += res.put.length;
          this.stats.unscheduled += res.deleted.length;
          if (res.put.length || res.deleted.length) {
            this.stats.lastWriteAt = Date.now();
            if (!this.stats.firstWriteAt) this.stats.firstWriteAt = this.stats.lastWriteAt;
          }
          const revs = [...res.put, ...res.deleted, ...res.unplacedSet, ...res.unplacedCleared].map((x) => x.revision);
          resync = this.accountWrites(revs, res.failures);
          if (resync) progress = settled = false;
          if (res.failures || res.aborted) settled = false;
        }
        if (res.aborted) this.log.warn({ why: res.aborted }, "schedule batch stopped");
      }
      // Everything this round decided is written, and nothing is left unplaced: the next round
      // may take the fast path or an incremental round (and keeps the picture only then).
      this.settled = settled && gen === this.gen && this.views.unplaced.size === 0;
      if (!this.settled) this.kept = undefined;
      this.stats.lastRoundMs = performance.now() - t0;
    } catch (e) {
      this.log.error({ err: describeError(e) }, "reconcile round failed");
    }
    // The duty bound only while changes still pour in: once they have stopped, the round that
    // takes in the last of them starts at once.
    const flooding = Date.now() - this.lastChangeAt < QUIET_MS;
    const dutyMs = flooding ? Math.min(250, Math.round(this.lastReconcileMs * DUTY)) : 0;
    return { progress, dutyMs, nextWakeMs: nextWake(), ...(resync ? { resync } : {}) };
  }
}

/**
 * The chart's `quiet` child (while it pauses): sends QUIET once no change came for quietMs,
 * looking every quietMs (a timer per change would cost more than the change at 100,000).
 */
export function quietAfter(lastChangeAt: () => number, quietMs: number) {
  return fromCallback<EngineEvent>(({ sendBack }) => {
    const t = setInterval(() => {
      if (Date.now() - lastChangeAt() < quietMs) return;
      clearInterval(t);
      sendBack({ type: "QUIET" });
    }, quietMs);
    return () => clearInterval(t);
  });
}

export function createEngine(ctx: ClusterContext): Engine {
  return new Engine({
    buckets: ctx.buckets,
    nc: ctx.nc,
    // In a daemon the system's own inspector sees the engine; alone, it has one of its own.
    inspect: ctx.actors ? undefined : inspector(ctx.nc, ctx.names, ctx.machineId, "engine", { withContext: true }),
    actors: ctx.actors,
    log: childLogger(ctx.log, { component: "engine", machineId: ctx.machineId }),
    machineId: ctx.machineId,
    leaseTtlMs: ctx.config.leaseTtlMs,
    agentTtlMs: ctx.config.agentTtlMs,
    reconcileIntervalMs: ctx.config.reconcileIntervalMs || 2000,
    leaseConnection: { connect: ctx.connect, bucket: ctx.names.bucket("leases") },
  });
}
