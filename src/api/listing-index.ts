// What the listings page through: the units, schedule, states and machines buckets, each
// followed by a watch into memory (index-cache.ts), holding only what a row shows. Started by the
// first listing a daemon answers (a daemon nobody lists from keeps no copy), kept up to date from
// then on, started again when its watches end (the connection closed).
//
// Also the change log of list-units rows for watch-units: every row that really changed (the
// agents re-put unchanged states every TTL/2; those are not changes), by its states-bucket
// revision, the last WATCH_RING of them.
import type { Logger } from "pino";
import type { ClusterContext } from "../server/context.js";
import { decode, decodeAs } from "../protocol/codec.js";
import { FlotillaError, describeError } from "../protocol/errors.js";
import { MachineRecord, TASK_STATES, UnitRecord, UnitStateRecord, UnplacedRecord, isUnitRecord } from "../protocol/messages.js";
import { keys, type BucketRole } from "../protocol/names.js";
import { arrivalOf } from "../unit/match.js";
import { parseUnitFileCached } from "../unit/index.js";
import { parseUnit } from "../unit/parse.js";
import type { BucketEntry } from "../nats/kv-watch.js";
import { BucketIndex, SortedIndex } from "./index-cache.js";
import { globalsWaitingOf, unitRow, type GlobalCandidate, type UnitFileFields, type UnitRow, type UnitRowFields } from "./unit-views.js";

/** A unit as its list-unit-files row needs it: no unit file. */
export interface UnitEntry extends UnitFileFields {
  global: boolean;
  description: string;
}

export interface RowEvent {
  /** Where it is in the log: the states revision (fractions: expiries this daemon noticed). */
  pos: number;
  op: "put" | "del";
  unit: string;
  machine: string;
  row: UnitRow | null;
}

/** File hashes whose Global= and Description= are kept (cleared when full). */
const HASH_CACHE = 10_000;
const NONE: readonly string[] = Object.freeze([]);

/** Distinct strings kept once (machine IDs, hashes, LOAD/ACTIVE/SUB); cleared when full. */
const INTERN_MAX = 50_000;

/** A state as list-units and list-unit-files show it (no signal, no updatedAt). */
export type StateEntry = UnitRowFields;

const TASK_STATE_SET: ReadonlySet<unknown> = new Set(TASK_STATES);
const optInt = (x: unknown) => x === undefined || Number.isInteger(x);
const optStr = (x: unknown) => x === undefined || typeof x === "string";
/** True only for values UnitStateRecord accepts as they are (compared with the schema in the tests). */
export function isStateRecord(v: unknown): boolean {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const r = v as Record<string, unknown>;
  return (
    typeof r.unit === "string" && r.unit.length > 0 &&
    typeof r.machineId === "string" && r.machineId.length > 0 &&
    typeof r.hash === "string" &&
    TASK_STATE_SET.has(r.taskState) &&
    typeof r.load === "string" && typeof r.active === "string" && typeof r.sub === "string" &&
    optInt(r.pid) && optInt(r.exitCode) && optStr(r.signal) && optStr(r.error) &&
    Number.isInteger(r.restarts) && (r.restarts as number) >= 0 &&
    Number.isSafeInteger(r.since) && (r.since as number) >= 0 &&
    Number.isSafeInteger(r.updatedAt) && (r.updatedAt as number) >= 0
  );
}

/** Starts of the index tried before a listing fails. */
const START_ATTEMPTS = 5;

/** Row changes kept for watch-units; a watcher further behind is told to list again. */
export const WATCH_RING = 20_000;

/** list-units sorts by unit, then machine: a space sorts before every character of either. */
export function stateKey(unit: string, machine: string): string {
  return `${unit} ${machine}`;
}

export class ClusterIndex {
  units = new SortedIndex<UnitEntry>();
  states = new SortedIndex<StateEntry>();
  machines = new SortedIndex<MachineRecord>();
  /** unit -> every machine's state of it (for list-unit-files' STATE); one entry alone is kept bare. */
  private readonly byUnit = new Map<string, StateEntry | StateEntry[]>();
  readonly statesByUnit = {
    get: (unit: string): readonly StateEntry[] | undefined => {
      const x = this.byUnit.get(unit);
      return x === undefined ? undefined : Array.isArray(x) ? x : [x];
    },
  };
  /** unit -> machines it is scheduled on. */
  readonly schedule = new Map<string, string[]>();
  readonly unplaced = new Map<string, string>();
  /** Wanted global units (few): their arrival and Conflicts=, for globalsWaiting. */
  private globals = new Map<string, GlobalCandidate>();
  private byHash = new Map<string, { hash: string; global: boolean; description: string; conflicts: readonly string[] }>();
  private waitingCache: Map<string, string> | undefined;

  readonly ring: RowEvent[] = [];
  /** Events at or before this position are no longer in the ring. */
  floor = 0;
  private pos = 0;
  private following = false;
  private listeners = new Set<() => void>();

  private buckets: Partial<Record<BucketRole, BucketIndex>> = {};
  private starting: Promise<void> | undefined;
  private readonly log: Logger;

  constructor(private readonly ctx: ClusterContext) {
    this.log = ctx.log.child({ component: "api-listings" });
  }

  /** The index, started if it is not (or its watches ended); concurrent callers share one start. */
  async ready(): Promise<void> {
    const all = Object.values(this.buckets);
    if (all.length === 4 && all.every((b) => !b.dead)) return;
    this.starting ??= this.startWithRetries().finally(() => (this.starting = undefined));
    await this.starting;
  }

  /**
   * Creating a last-per-subject consumer on a bucket of 100,000 keys can take nats-server 2.9 more
   * than the watch's create timeout on a busy machine (measured: three timeouts in a row). A
   * listing then waits for a later try rather than failing: the CLI asks again on a timeout, and
   * its next request joins this same start.
   */
  private async startWithRetries(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.start();
      } catch (e) {
        if (attempt >= START_ATTEMPTS || this.ctx.nc.isClosed()) throw e;
        this.log.warn({ attempt }, `${describeError(e)}; trying again in 1 s`);
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  /** Waits until every index in `roles` has seen the writes made before this call. */
  async sync(roles: BucketRole[]): Promise<void> {
    await Promise.all(roles.map((r) => this.buckets[r]?.sync()));
  }

  private async start(): Promise<void> {
    for (const b of Object.values(this.buckets)) b.stop();
    this.buckets = {};
    this.reset();
    const t0 = Date.now();
    // Every watch this start made: all stopped if any bucket fails (even those that come up later).
    const made: BucketIndex[] = [];
    let failed = false;
    const open = async (role: BucketRole, entry: (e: BucketEntry) => void, expired?: (key: string) => void) => {
      const kv = this.ctx.buckets[role];
      const st = await kv.status();
      const ttlMs = Math.round(Number(st.streamInfo.config.max_age ?? 0) / 1e6);
      const b = new BucketIndex({ nc: this.ctx.nc, kv, bucket: this.ctx.names.bucket(role), log: this.log, entry, ttlMs, expired });
      made.push(b);
      const t = Date.now();
      await b.start().finally(() => failed && b.stop());
      this.log.debug({ bucket: role, ms: Date.now() - t }, "listing index: bucket replayed");
      return b;
    };
    try {
      // Machines first: rows name their IPs.
      const machines = await open("machines", (e) => this.onMachine(e.key, e), (k) => this.onMachine(k));
      const [units, schedule, states] = await Promise.all([
        open("units", (e) => this.onUnit(e)),
        open("schedule", (e) => this.onSchedule(e)),
        open("states", (e) => this.onState(e.key, e), (k) => this.onState(k)),
      ]);
      this.buckets = { machines, units, schedule, states };
    } catch (e) {
      failed = true;
      for (const b of made) b.stop();
      throw new FlotillaError("nats_unavailable", `listings: cannot follow the cluster's buckets: ${describeError(e)}`, { temporary: true });
    }
    const tf = Date.now();
    await Promise.all([this.units.flush(), this.states.flush(), this.machines.flush()]);
    this.log.debug({ ms: Date.now() - tf }, "listing index: keys sorted");
    this.floor = this.pos = this.buckets.states!.rev;
    this.following = true;
    this.log.info(
      { units: this.units.size, states: this.states.size, machines: this.machines.size, ms: Date.now() - t0 },
      "listing index ready",
    );
  }

  private reset(): void {
    this.following = false;
    this.units = new SortedIndex();
    this.states = new SortedIndex();
    this.machines = new SortedIndex();
    this.byUnit.clear();
    this.schedule.clear();
    this.unplaced.clear();
    this.globals.clear();
    this.waitingCache = undefined;
    this.ring.length = 0;
  }

  /** Why each wanted global waits (cached until a global changes). */
  waiting(): Map<string, string> {
    this.waitingCache ??= globalsWaitingOf([...this.globals.values()]);
    return this.waitingCache;
  }

  private onUnit(e: BucketEntry): void {
    const name = keys.unitFromKey(e.key);
    if (e.operation !== "PUT" || e.value.length === 0) {
      this.units.delete(name);
      if (this.globals.delete(name)) this.waitingCache = undefined;
      return;
    }
    let r: UnitRecord;
    try {
      const v = decode(e.value);
      r = isUnitRecord(v) ? v : decodeAs(UnitRecord, e.value, `units/${e.key}`);
    } catch (err) {
      this.log.warn({ key: e.key, err: describeError(err) }, "listings: skipping a unit record that does not decode");
      return;
    }
    const { hash, global, description, conflicts } = this.infoOf(r);
    this.units.set(r.name, { name: r.name, hash, desiredState: r.desiredState, version: r.version, global, description });
    const wasGlobal = this.globals.delete(r.name);
    if (global && r.desiredState !== "inactive") {
      this.globals.set(r.name, { name: r.name, arrival: arrivalOf(r, e.revision), fleet: { conflicts: [...conflicts] } });
    }
    if (wasGlobal || global) this.waitingCache = undefined;
  }

  /**
   * Global=, Description= and Conflicts= of a stored file. Global and Description do not depend
   * on the unit's name, so they are parsed once per file hash (100,000 instances of a template
   * are one parse, and no parsed unit is kept); a global's Conflicts= is read per unit.
   */
  private infoOf(r: UnitRecord): { hash: string; global: boolean; description: string; conflicts: readonly string[] } {
    let info = this.byHash.get(r.hash);
    if (!info) {
      try {
        const p = parseUnit(r.name, r.contents);
        info = { hash: r.hash, global: p.fleet.global, description: p.description ?? "", conflicts: NONE };
      } catch (err) {
        this.log.warn({ unit: r.name, err: describeError(err) }, "stored unit file no longer parses");
        info = { hash: r.hash, global: false, description: "", conflicts: NONE };
      }
      if (this.byHash.size >= HASH_CACHE) this.byHash.clear();
      this.byHash.set(r.hash, info);
    }
    // The cached hash string stands for every unit with this file (one string, not 100,000).
    if (!info.global) return info;
    try {
      return { ...info, conflicts: parseUnitFileCached(r.name, r.contents, r.hash).fleet.conflicts };
    } catch {
      return { ...info, conflicts: [] };
    }
  }

  private onSchedule(e: BucketEntry): void {
    const gone = e.operation !== "PUT" || e.value.length === 0;
    const u = keys.parseUnplaced(e.key);
    if (u !== undefined) {
      if (gone) return void this.unplaced.delete(u);
      try {
        this.unplaced.set(u, decodeAs(UnplacedRecord, e.value, `schedule/${e.key}`).reason);
      } catch (err) {
        this.log.warn({ key: e.key, err: describeError(err) }, "listings: skipping a schedule value that does not decode");
      }
      return;
    }
    const s = keys.parseSchedule(e.key);
    if (!s) return;
    const list = this.schedule.get(s.unit) ?? [];
    const i = list.indexOf(s.machineId);
    if (gone) {
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) this.schedule.delete(s.unit);
    } else if (i < 0) {
      list.push(s.machineId);
      list.sort();
      this.schedule.set(s.unit, list);
    }
  }

  private onState(key: string, e?: BucketEntry): void {
    const k = keys.parseState(key);
    if (!k) return;
    const sk = stateKey(k.unit, k.machineId);
    const before = this.states.get(sk);
    let rec: StateEntry | undefined;
    if (e && e.operation === "PUT" && e.value.length > 0) {
      try {
        rec = this.stateEntry(e.value, key);
      } catch (err) {
        this.log.warn({ key, err: describeError(err) }, "listings: skipping a state that does not decode");
        return;
      }
    }
    const had = this.byUnit.get(k.unit);
    const others = had === undefined ? [] : (Array.isArray(had) ? had : [had]).filter((s) => s.machineId !== k.machineId);
    if (rec) {
      this.states.set(sk, rec);
      others.push(rec);
      if (others.length > 1) others.sort((a, b) => (a.machineId < b.machineId ? -1 : a.machineId > b.machineId ? 1 : 0));
    } else this.states.delete(sk);
    if (others.length === 0) this.byUnit.delete(k.unit);
    else this.byUnit.set(k.unit, others.length === 1 ? others[0]! : others);
    if (!this.following) return;
    // The log: real changes only (the agents re-put every state every TTL/2).
    const row = rec ? unitRow(rec, this.machines) : null;
    if (!row && !before) return;
    if (row && before && JSON.stringify(row) === JSON.stringify(unitRow(before, this.machines))) return;
    // An expiry has no revision: it goes right after the last one seen.
    const pos = e ? Math.max(e.revision, this.pos) : this.pos + 0.001;
    this.pos = pos;
    this.ring.push({ pos, op: row ? "put" : "del", unit: k.unit, machine: k.machineId, row });
    if (this.ring.length > WATCH_RING) this.floor = this.ring.splice(0, this.ring.length - WATCH_RING).at(-1)!.pos;
    for (const l of this.listeners) l();
  }

  /**
   * A state record as a row needs it. The agents' records are checked by hand first (zod took a
   * good part of a 100,000-state replay); anything else goes through the schema, which says what
   * is wrong. Repeated strings (machine IDs, hashes, LOAD/ACTIVE/SUB) are kept once.
   */
  private stateEntry(value: Uint8Array, key: string): StateEntry {
    const v = decode(value) as Record<string, unknown>;
    const r: UnitStateRecord = isStateRecord(v) ? (v as unknown as UnitStateRecord) : decodeAs(UnitStateRecord, value, `states/${key}`);
    const i = this.intern;
    const out: StateEntry = {
      unit: r.unit,
      machineId: i(r.machineId),
      hash: i(r.hash),
      taskState: r.taskState,
      load: i(r.load),
      active: i(r.active),
      sub: i(r.sub),
      restarts: r.restarts ?? 0,
      since: r.since,
    };
    if (r.pid !== undefined) out.pid = r.pid;
    if (r.exitCode !== undefined) out.exitCode = r.exitCode;
    if (r.error !== undefined) out.error = r.error;
    return out;
  }

  private strings = new Map<string, string>();
  private intern = (x: string): string => {
    const hit = this.strings.get(x);
    if (hit !== undefined) return hit;
    if (this.strings.size >= INTERN_MAX) this.strings.clear();
    this.strings.set(x, x);
    return x;
  };

  private onMachine(key: string, e?: BucketEntry): void {
    if (!e || e.operation !== "PUT" || e.value.length === 0) return void this.machines.delete(key);
    try {
      const m = decodeAs(MachineRecord, e.value, `machines/${key}`);
      this.machines.set(m.id, m);
    } catch (err) {
      this.log.warn({ key, err: describeError(err) }, "list-machines: skipping a bad record");
    }
  }

  /** The log's position now (a watcher's first cursor). */
  get position(): number {
    return this.pos;
  }

  /** Calls fn after every new event until the returned function is called. */
  onEvent(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
}
