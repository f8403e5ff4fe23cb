// The engine component (fleet's engine): every engine-enabled daemon stands for the lease; only
// the leader reconciles. The leader keeps in-memory views fed by watches on `units` and
// `machines` and by a replay of `schedule` plus its own acknowledged writes (no full re-read
// per round; a write by anyone else shows as a gap in the schedule's stream sequence and
// triggers a replay), runs the pure reconciler on watch events (debounced) and on a timer
// (reconcileIntervalMs, plus the moment a machine's silence reaches the agent TTL), and
// executes the actions through the guarded, pipelined writer. A round in which only new
// unconstrained units appeared takes reconcile()'s answer from reconcileAdded() (no pass over
// every unit and placement) and does not hold up the next round (see round()).
//
// On becoming leader it opens the watches and waits until each has replayed its bucket before
// the first round: deciding on half a schedule could place a unit twice. Every known machine
// then gets one full agent TTL of grace. On stepping down it stops at once: the watches close,
// the views are dropped, an in-flight batch stops at its next window.
import { randomBytes } from "node:crypto";
import type { KV, KvWatchEntry } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { createActor, type Actor, type InspectionEvent } from "xstate";
import type { Logger } from "pino";
import { describeError } from "../protocol/errors.js";
import type { Buckets } from "../nats/buckets.js";
import type { ClusterContext, Component } from "../server/context.js";
import { inspector } from "../server/inspect.js";
import { isLeading, leaseMachine } from "./lease.machine.js";
import { leaseMachineFor } from "./lease.js";
import { Liveness } from "./liveness.js";
import { reconcile, reconcileAdded } from "./reconciler.js";
import { ScheduleWriter, type WriteContext, type WriteResult } from "./schedule-writer.js";
import type { Action } from "./model.js";
import { ClusterViews } from "./views.js";

export interface EngineOptions {
  buckets: Pick<Buckets, "units" | "schedule" | "machines" | "leases">;
  /** For the fast acknowledged publishes of schedule entries; without it, kv.put. */
  nc?: NatsConnection;
  log: Logger;
  machineId: string;
  leaseTtlMs: number;
  agentTtlMs: number;
  reconcileIntervalMs: number;
  /** Publishes the lease statechart's transitions (server/inspect.ts), when given. */
  inspect?: (ev: InspectionEvent) => void;
  /** Quiet time after a watch event before a round (default 20 ms). */
  debounceMs?: number;
}

export interface EngineStats {
  rounds: number;
  /** Rounds that ran the full reconcile (the others only placed new units: reconcileAdded). */
  fullRounds: number;
  scheduled: number;
  unscheduled: number;
  lastRoundMs: number;
  /** Date.now() of the first acknowledged write of the current term (0: none yet). */
  firstWriteAt: number;
}

type Watch = Awaited<ReturnType<KV["watch"]>>;

/** Batches of new placements in flight at once (each a sliding window of IN_FLIGHT puts). */
const MAX_BATCHES = 2;

export class Engine implements Component {
  readonly holder: string;
  readonly stats: EngineStats = { rounds: 0, fullRounds: 0, scheduled: 0, unscheduled: 0, lastRoundMs: 0, firstWriteAt: 0 };
  private readonly log: Logger;
  private readonly writer: ScheduleWriter;
  private lease?: Actor<typeof leaseMachine>;
  private leading = false;
  private epoch = 0;
  /** Bumped on every term change: loops of an old term see it and end. */
  private gen = 0;
  private watches: Watch[] = [];
  private ready = { units: false, schedule: false, machines: false };
  private readonly views: ClusterViews;
  private liveness: Liveness;
  /** We publish schedule writes with acknowledgements, so we know every revision we wrote. */
  private readonly trackSeq: boolean;
  /** The schedule stream's sequence our view accounts for (trackSeq). */
  private scheduleSeq = 0;
  private graced = false;
  // round scheduling
  private timer?: NodeJS.Timeout;
  private timerDue = 0;
  private running = false;
  private again = false;
  private roundDone?: Promise<void>;
  /**
   * The last round left the schedule as it decided, every write acknowledged; with the live
   * machines it saw, so that the next round may place only what was added (reconcileAdded).
   */
  private clean = false;
  private lastLive?: ReadonlyMap<string, unknown>;
  /** Batches of new placements still being written (launch). */
  private readonly inflight = new Set<Promise<void>>();
  /** A round waited for a batch to end (MAX_BATCHES in flight). */
  private deferred = false;
  /** Acknowledged revisions above scheduleSeq whose predecessors are not accounted for yet. */
  private readonly ownRevs = new Set<number>();
  /** Why the schedule must be reloaded, once no batch is in flight. */
  private resyncDue?: string;

  constructor(private readonly o: EngineOptions) {
    this.holder = `${o.machineId}/${randomBytes(4).toString("hex")}`;
    this.log = o.log;
    this.writer = new ScheduleWriter(o.buckets.schedule, o.log, o.nc);
    this.liveness = new Liveness(o.agentTtlMs);
    this.trackSeq = o.nc !== undefined;
    this.views = new ClusterViews(o.log, this.liveness, this.trackSeq);
  }

  get isLeader(): boolean {
    return this.leading;
  }
  get term(): number {
    return this.epoch;
  }

  async start(): Promise<void> {
    if (this.lease) return;
    const actor = createActor(leaseMachineFor(this.o.buckets.leases, this.log), {
      input: { holder: this.holder, ttlMs: this.o.leaseTtlMs },
      inspect: this.o.inspect,
    });
    this.lease = actor;
    let wasLeading = false;
    actor.subscribe((snap) => {
      const now = isLeading(snap.value);
      if (now && !wasLeading) {
        wasLeading = true;
        this.becomeLeader(snap.context.epoch);
      } else if (!now && wasLeading) {
        wasLeading = false;
        if (this.leading) this.stepDown(snap.context.lastError || (snap.status === "done" ? "resigned" : "lost the lease"));
      }
    });
    actor.start();
  }

  async stop(): Promise<void> {
    const actor = this.lease;
    if (!actor) return;
    this.lease = undefined;
    // Stop writing and let the batch in flight end before the lease is released, so that the
    // next leader never reads a schedule we are still changing.
    if (this.leading) this.stepDown("stopping");
    await this.roundDone?.catch(() => undefined);
    await this.drain();
    actor.send({ type: "RESIGN" });
    await new Promise<void>((resolve) => {
      if (actor.getSnapshot().status === "done") return resolve();
      const t = setTimeout(() => {
        sub.unsubscribe();
        resolve();
      }, 1000);
      const sub = actor.subscribe({
        next: (s) => {
          if (s.status === "done") {
            clearTimeout(t);
            resolve();
          }
        },
        error: () => resolve(),
      });
    });
    actor.stop();
    this.writer.close();
  }

  // ---- terms ----

  private becomeLeader(epoch: number): void {
    this.leading = true;
    this.epoch = epoch;
    this.stats.firstWriteAt = 0;
    const gen = ++this.gen;
    this.log.info({ epoch, holder: this.holder }, "elected engine leader");
    this.ready = { units: false, schedule: false, machines: false };
    this.graced = false;
    void this.openWatches(gen).catch((e) => {
      this.log.error({ err: describeError(e) }, "cannot watch the cluster state; resigning the lease");
      this.lease?.send({ type: "RESIGN" });
    });
  }

  private stepDown(why: string): void {
    this.leading = false;
    this.gen++;
    this.log.warn({ epoch: this.epoch, why }, "no longer engine leader: stopped writing");
    for (const w of this.watches) w.stop();
    this.watches = [];
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.views.clear();
    this.liveness.clear();
    this.clean = false;
    this.deferred = false;
    this.resyncDue = undefined;
    this.ownRevs.clear();
  }

  private async openWatches(gen: number): Promise<void> {
    for (const name of ["units", "schedule", "machines"] as const) await this.openWatch(name, gen);
  }

  /**
   * Replays a bucket into its view, then follows it. The schedule is special when we publish
   * with acknowledgements (trackSeq): we are its only writer, so after the replay its watch is
   * closed (no echo of our own 100,000 writes) and the view follows our acknowledged writes;
   * any write of someone else shows as a gap in the stream sequence (checked after each batch
   * and before each round) and makes us replay the schedule again.
   */
  private async openWatch(name: keyof Engine["ready"], gen: number): Promise<void> {
    const kv = this.o.buckets[name];
    const handle = (e: KvWatchEntry): boolean =>
      name === "units" ? this.views.onUnit(e) : name === "schedule" ? this.views.onSchedule(e) : this.views.onMachine(e);
    const st = await kv.status();
    if (gen !== this.gen) return;
    const empty = st.values === 0;
    const w = await kv.watch();
    if (gen !== this.gen) {
      w.stop();
      return;
    }
    this.watches.push(w);
    const follow = !(name === "schedule" && this.trackSeq);
    let maxRev = st.streamInfo.state.last_seq;
    const replayed = () => {
      if (name === "schedule") this.scheduleSeq = maxRev;
      if (!follow) w.stop();
      this.markReady(name, gen);
    };
    if (empty) replayed();
    // The machines bucket loses keys by TTL: its replay may be empty although status said not.
    if (name === "machines" && !empty) {
      setTimeout(() => this.markReady("machines", gen), Math.max(200, Math.floor(this.o.agentTtlMs / 2))).unref();
    }
    void (async () => {
      for await (const e of w) {
        if (gen !== this.gen) break;
        if (e.revision > maxRev) maxRev = e.revision;
        let kick = false;
        try {
          kick = handle(e);
        } catch (err) {
          this.log.warn({ bucket: name, key: e.key, err: describeError(err) }, "skipping a watch entry");
        }
        if (e.isUpdate && !this.ready[name]) replayed();
        else if (kick && this.allReady()) this.kick();
      }
    })().catch((err) => this.log.warn({ bucket: name, err: describeError(err) }, "watch ended"));
  }

  /** Someone else wrote into the schedule: forget our view of it and replay it. */
  private resyncSchedule(why: string): void {
    this.log.warn({ why }, "the schedule changed behind our back; reloading it");
    this.ready.schedule = false;
    this.views.clearSchedule();
    const gen = this.gen;
    void this.openWatch("schedule", gen).catch((e) => {
      this.log.error({ err: describeError(e) }, "cannot reload the schedule; resigning the lease");
      this.lease?.send({ type: "RESIGN" });
    });
  }

  /**
   * Checks that our acknowledged writes are the only ones since scheduleSeq; false: a resync is
   * due. Batches may overlap (their revisions interleave), so revisions wait in ownRevs until
   * the ones below them are accounted for; a hole left when no batch is in flight is a write of
   * someone else. The resync itself waits until no batch is in flight (settleResync).
   */
  private accountWrites(revisions: number[], failures: number): boolean {
    if (!this.trackSeq) return true;
    if (failures > 0) {
      this.resyncDue ??= `${failures} write(s) failed and may or may not have landed`;
      return false;
    }
    for (const r of revisions) if (r > this.scheduleSeq) this.ownRevs.add(r);
    while (this.ownRevs.delete(this.scheduleSeq + 1)) this.scheduleSeq++;
    if (this.ownRevs.size > 0 && this.inflight.size === 0) {
      this.resyncDue ??= `stream sequence ${this.scheduleSeq + 1} is not ours`;
      return false;
    }
    return true;
  }

  /** Starts a due resync once no batch is in flight; true when one started. */
  private settleResync(): boolean {
    if (this.resyncDue === undefined || this.inflight.size > 0) return false;
    const why = this.resyncDue;
    this.resyncDue = undefined;
    this.ownRevs.clear();
    this.clean = false;
    this.resyncSchedule(why);
    return true;
  }

  private markReady(name: keyof Engine["ready"], gen: number): void {
    if (gen !== this.gen || this.ready[name]) return;
    this.ready[name] = true;
    if (this.allReady()) {
      // One full TTL of grace for every known machine, once per term (not on a reload).
      if (!this.graced) this.liveness.graceAll(Date.now());
      this.graced = true;
      this.log.info(
        { units: this.views.units.size, placements: this.views.placements.size, machines: this.views.machines.size },
        "cluster state loaded; reconciling",
      );
      this.kick(0);
    }
  }

  private allReady(): boolean {
    return this.ready.units && this.ready.schedule && this.ready.machines;
  }

  // ---- rounds ----

  private kick(delay = this.o.debounceMs ?? 20, periodic = false): void {
    if (!this.leading || !this.allReady()) return;
    if (this.running) {
      this.again = true;
      return;
    }
    const due = Date.now() + delay;
    if (this.timer && this.timerDue <= due) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerDue = due;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.roundDone = this.round(periodic);
    }, delay);
  }

  /**
   * One round. A full round (reconcile) waits until no batch is in flight, so that it decides on
   * acknowledged writes only, and runs its batch to the end before the next round. A round in
   * which only new, unconstrained units appeared (reconcileAdded) reserves its placements in the
   * views and leaves its batch in flight: the next such round can start at once, so units that
   * arrive while a batch is being written do not wait for its last acknowledgement. Such a
   * batch only writes units that have no placement anywhere (nothing is moved, nothing deleted);
   * up to MAX_BATCHES of them are in flight at once.
   * periodic: a timer round, always full; it also checks the schedule for foreign writes.
   */
  private async round(periodic = false): Promise<void> {
    if (!this.leading || !this.allReady()) return;
    const gen = this.gen;
    this.running = true;
    let progress = false;
    try {
      const t0 = performance.now();
      const v = this.views;
      let machines = v.liveMachines(Date.now());
      let actions: Action[] | undefined;
      let full = periodic || !this.clean || v.changedBeyondAdditions() || !sameKeys(machines, this.lastLive);
      if (!full) {
        if (this.inflight.size >= MAX_BATCHES) {
          this.deferred = true;
          return;
        }
        const changes = v.takeChanges();
        actions = reconcileAdded({
          units: v.units,
          added: changes.added,
          isPlaced: (u) => v.isPlaced(u),
          loads: v.loads,
          machines,
          unplaced: v.unplaced,
          relationHolders: v.relationHolders,
        });
        if (!actions) full = true;
      }
      if (full) {
        await this.drain();
        if (gen !== this.gen || !this.allReady()) return;
        if (this.settleResync()) return;
        if (this.trackSeq && periodic) {
          const last = (await this.o.buckets.schedule.status()).streamInfo.state.last_seq;
          if (gen !== this.gen || !this.allReady() || this.inflight.size > 0) return;
          if (last !== this.scheduleSeq) {
            this.resyncDue = `stream at ${last}, our view at ${this.scheduleSeq}`;
            this.settleResync();
            return;
          }
        }
        v.takeChanges();
        machines = v.liveMachines(Date.now());
        actions = reconcile({ units: v.units, placements: v.placements.values(), machines, unplaced: v.unplaced });
        this.stats.fullRounds++;
        this.clean = false;
      }
      this.lastLive = machines;
      this.stats.rounds++;
      if (!actions!.length) {
        if (full) this.clean = true;
      } else if (!full) {
        this.launch(actions!, gen);
      } else {
        const res = await this.writer.execute(actions!, this.writeContext(gen));
        if (gen === this.gen) {
          progress = this.settle(res);
          this.clean = res.failures === 0 && !res.aborted && this.resyncDue === undefined && this.ready.schedule;
        }
      }
      this.stats.lastRoundMs = performance.now() - t0;
    } catch (e) {
      this.clean = false;
      this.log.error({ err: describeError(e) }, "reconcile round failed");
    } finally {
      this.running = false;
    }
    if (!this.leading) return;
    // A new term may have become ready (and kicked) while this round of the old one ran.
    if (this.again || progress) {
      this.again = false;
      this.kick(0);
      return;
    }
    if (gen !== this.gen) return;
    if (this.deferred && this.inflight.size > 0) return; // that batch's end kicks the next round
    this.deferred = false;
    const nextLoss = this.liveness.nextExpiry(Date.now());
    const wait = Math.min(this.o.reconcileIntervalMs, nextLoss === undefined ? Infinity : nextLoss + 5);
    this.kick(Math.max(0, wait), true);
  }

  private writeContext(gen: number): WriteContext {
    return {
      epoch: this.epoch,
      units: this.views.units,
      leading: () => this.leading && gen === this.gen,
      leaseHeld: () => {
        const c = this.lease?.getSnapshot().context;
        const margin = Math.min(500, Math.floor(this.o.leaseTtlMs / 10));
        return c !== undefined && c.epoch === this.epoch && Date.now() < c.validUntil - margin;
      },
    };
  }

  /** Learns a batch's acknowledged writes; true when it placed or removed something. */
  private settle(res: WriteResult): boolean {
    let progress = this.views.apply(res);
    this.stats.scheduled += res.put.length;
    this.stats.unscheduled += res.deleted.length;
    if (!this.stats.firstWriteAt && (res.put.length || res.deleted.length)) this.stats.firstWriteAt = Date.now();
    const revs = [...res.put, ...res.deleted, ...res.unplacedSet, ...res.unplacedCleared].map((x) => x.revision);
    if (!this.accountWrites(revs, res.failures)) progress = false;
    if (res.aborted) this.log.warn({ why: res.aborted }, "schedule batch stopped");
    this.settleResync();
    return progress;
  }

  /** Writes a batch of new placements (reconcileAdded) in the background. */
  private launch(actions: Action[], gen: number): void {
    this.views.reserve(actions);
    const batch: Promise<void> = this.writer
      .execute(actions, this.writeContext(gen))
      .then(
        (res) => ({ res, err: undefined }),
        (err: unknown) => ({ res: undefined, err }),
      )
      .then(({ res, err }) => {
        this.inflight.delete(batch);
        if (gen !== this.gen) return;
        this.views.release(actions);
        if (!res || res.failures > 0 || res.aborted) this.clean = false;
        if (res) this.settle(res);
        else {
          this.log.error({ err: describeError(err) }, "schedule batch failed");
          this.resyncDue ??= "a schedule batch failed";
          this.settleResync();
        }
        if (this.deferred || !this.clean) {
          this.deferred = false;
          this.kick(0);
        }
      });
    this.inflight.add(batch);
  }

  /** Waits until no batch is in flight. */
  private async drain(): Promise<void> {
    while (this.inflight.size > 0) await Promise.all([...this.inflight]);
  }
}

function sameKeys(a: ReadonlyMap<string, unknown>, b: ReadonlyMap<string, unknown> | undefined): boolean {
  if (!b || a.size !== b.size) return false;
  for (const k of a.keys()) if (!b.has(k)) return false;
  return true;
}

export function createEngine(ctx: ClusterContext): Engine {
  return new Engine({
    buckets: ctx.buckets,
    nc: ctx.nc,
    inspect: inspector(ctx.nc, ctx.names, ctx.machineId, "lease", { withContext: true }),
    log: ctx.log.child({ component: "engine", machineId: ctx.machineId }),
    machineId: ctx.machineId,
    leaseTtlMs: ctx.config.leaseTtlMs,
    agentTtlMs: ctx.config.agentTtlMs,
    reconcileIntervalMs: ctx.config.reconcileIntervalMs || 2000,
  });
}
