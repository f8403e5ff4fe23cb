// A frozen copy of the reconciler and scheduler as they were at 5c79b43 (before issue 10 made
// the filters indexed and the pass sliced): the oracle the new ones are compared with on seeded
// random clusters (reconcile-equivalence.test.ts). Do not "fix" it: its choices are the spec.
// Only the import paths changed.
/* eslint-disable */
// Placement, pure: fleet's least-loaded choice (fewest units, ties broken by machine ID) after
// every [X-Fleet] filter. Each filter explains itself, and an unplaceable unit gets the combined
// explanation ("3 machines lack region=eu; 1 conflicts with web@1.service").
//
// ClusterState is the scratch picture one reconcile round works on: which unit sits where, what
// each machine has reserved. Unconstrained units (the common case at scale) take a fast path:
// a lazy min-heap of active machines by load, so 100,000 placements stay O(n log m).
import { NO_FLEET_OPTIONS, type Action, type EngineMachine, type EngineUnit, type Placement } from "../../src/engine/model.js";
import { chooseGlobals, explainMetadata, formatMissing, globMatch } from "../../src/unit/match.js";
import { formatSize } from "../../src/util/measure.js";

/** Conflicts=/Replaces= globs, Go's path.Match as fleet (the parser's matcher). */
export function globMatches(glob: string, name: string): boolean {
  return glob === name || globMatch(glob, name);
}
function anyGlob(globs: string[], name: string): boolean {
  for (const g of globs) if (globMatches(g, name)) return true;
  return false;
}

/** fleet's MachineMetadata: keys AND'ed, values OR'ed. Returns the first unmet key as "k=v1|v2". */
export function unmetMetadata(want: Record<string, string[]>, have: Record<string, string>): string | undefined {
  const missing = explainMetadata(want, have)[0];
  return missing ? formatMissing(missing) : undefined;
}

/** MachineID=: the full ID, or fleet's 8-character short form. */
export function machineIdMatches(wanted: string, id: string): boolean {
  return wanted === id || (wanted.length >= 8 && id.startsWith(wanted));
}

function isUnconstrained(u: EngineUnit): boolean {
  const f = u.fleet;
  if (f === NO_FLEET_OPTIONS) return true;
  return (
    f.machineId === undefined &&
    f.machineOf.length === 0 &&
    f.conflicts.length === 0 &&
    f.replaces.length === 0 &&
    !f.cpu &&
    !f.memoryBytes &&
    Object.keys(f.machineMetadata).length === 0
  );
}


/** One filter's verdict on one machine: a phrase for one machine and for several. */
export interface Rejection {
  one: string;
  many: string;
}

const NONE: ReadonlySet<string> = new Set();

/** Which filter refused which machines (structured, for status and the UI); machines capped at REFUSAL_MACHINES. */
export interface Refusal {
  why: string;
  count: number;
  machines: string[];
}
export const REFUSAL_MACHINES = 64;

export type Decision =
  | { ok: true; machineId: string; evicts: string[] }
  | { ok: false; reason: string; refusals: Refusal[] };

/** Groups per-machine rejections by phrase, most common first (the order combine() says them in). */
export function refusalsOf(list: { id: string; r: Rejection }[]): Refusal[] {
  const by = new Map<string, Refusal>();
  for (const { id, r } of list) {
    let g = by.get(r.one);
    if (!g) by.set(r.one, (g = { why: r.one, count: 0, machines: [] }));
    g.count++;
    if (g.machines.length < REFUSAL_MACHINES) g.machines.push(id);
  }
  return [...by.values()].sort((a, b) => b.count - a.count || (a.why < b.why ? -1 : 1));
}

export class ClusterState {
  readonly machines: EngineMachine[];
  readonly machineById = new Map<string, EngineMachine>();
  /** How many non-global units are placed on each machine. */
  private readonly count = new Map<string, number>();
  /**
   * Which ones, built from `where` the first time a filter asks (conflicts, globals): an
   * unconstrained cluster never needs them, and 100,000 set inserts per round were a third of
   * a reconcile pass.
   */
  private on?: Map<string, Set<string>>;
  private readonly where = new Map<string, string>();
  private readonly cpu = new Map<string, number>();
  private readonly mem = new Map<string, number>();
  /** Units (placed anywhere, or global) whose Conflicts/Replaces may name other units. */
  private readonly holders: EngineUnit[] = [];
  readonly globals: EngineUnit[] = [];
  private heap?: [number, string][];

  constructor(
    readonly units: ReadonlyMap<string, EngineUnit>,
    machines: Iterable<EngineMachine>,
  ) {
    this.machines = [...machines].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    for (const m of this.machines) {
      this.machineById.set(m.id, m);
      this.count.set(m.id, 0);
      this.cpu.set(m.id, 0);
      this.mem.set(m.id, 0);
    }
    for (const u of units.values()) {
      if (u.invalid || u.fleet === NO_FLEET_OPTIONS) continue;
      if (u.fleet.conflicts.length || u.fleet.replaces.length) this.holders.push(u);
      if (u.fleet.global && u.desiredState !== "inactive") this.globals.push(u);
      if (!this.constrained && !isUnconstrained(u)) this.constrained = true;
    }
    for (const m of this.machines) if (m.availability === "drain") this.draining = true;
  }

  /** Some unit has an [X-Fleet] constraint or relation (MachineID, metadata, Conflicts, ...). */
  private constrained = false;
  private draining = false;

  /**
   * Whether every current placement is sure to be allowed to stay where it is, without asking
   * reject() for each: no unit constrains where it runs or what runs beside it, no global
   * unit, no machine draining (the common case at scale).
   */
  everyPlacementStays(): boolean {
    return !this.constrained && !this.draining && this.globals.length === 0;
  }

  /** Whether any unit declares Conflicts, Replaces or MachineOf (placement order then matters). */
  hasRelations(): boolean {
    if (this.relations === undefined) {
      this.relations = this.holders.length > 0;
      // MachineOf is a constraint: without any, no unit can follow another.
      if (!this.constrained) return this.relations;
      if (!this.relations) for (const u of this.units.values()) if (u.fleet.machineOf.length) { this.relations = true; break; }
    }
    return this.relations;
  }
  private relations?: boolean;

  machineOf(unit: string): string | undefined {
    return this.where.get(unit);
  }
  load(machineId: string): number {
    return this.count.get(machineId) ?? 0;
  }
  unitsOn(machineId: string): ReadonlySet<string> {
    if (!this.on) {
      this.on = new Map(this.machines.map((m) => [m.id, new Set<string>()]));
      for (const [unit, m] of this.where) this.on.get(m)?.add(unit);
    }
    return this.on.get(machineId) ?? NONE;
  }

  /**
   * The globals the agent on m runs (chooseGlobals, as the agent decides it), given the units
   * placed there now. Cached per machine until its units change.
   */
  globalsOn(m: EngineMachine): readonly EngineUnit[] {
    if (this.globals.length === 0) return this.globals;
    let g = this.globalsCache.get(m.id);
    if (!g) {
      const here: EngineUnit[] = [];
      for (const name of this.unitsOn(m.id)) {
        const u = this.units.get(name);
        if (u && !u.invalid) here.push(u);
      }
      g = chooseGlobals(this.globals, m.metadata, here);
      this.globalsCache.set(m.id, g);
    }
    return g;
  }
  private readonly globalsCache = new Map<string, EngineUnit[]>();

  place(u: EngineUnit, machineId: string): void {
    const prev = this.where.get(u.name);
    if (prev === machineId) return;
    if (prev !== undefined) this.remove(u.name);
    this.where.set(u.name, machineId);
    this.count.set(machineId, (this.count.get(machineId) ?? 0) + 1);
    this.on?.get(machineId)?.add(u.name);
    if (this.globals.length) this.globalsCache.delete(machineId);
    if (u.fleet.cpu) this.cpu.set(machineId, (this.cpu.get(machineId) ?? 0) + u.fleet.cpu);
    if (u.fleet.memoryBytes) this.mem.set(machineId, (this.mem.get(machineId) ?? 0) + u.fleet.memoryBytes);
    // Loads only grow here; the heap corrects stale entries lazily.
  }

  remove(unit: string): void {
    const m = this.where.get(unit);
    if (m === undefined) return;
    this.where.delete(unit);
    this.count.set(m, (this.count.get(m) ?? 1) - 1);
    this.on?.get(m)?.delete(unit);
    this.globalsCache.delete(m);
    const u = this.units.get(unit);
    if (u) {
      this.cpu.set(m, (this.cpu.get(m) ?? 0) - (u.fleet.cpu ?? 0));
      this.mem.set(m, (this.mem.get(m) ?? 0) - (u.fleet.memoryBytes ?? 0));
    }
    this.heap = undefined; // a load went down: rebuild on next use
  }

  /** Whether any Conflicts/Replaces declared by another unit could name this one. */
  private namedByOthers(u: EngineUnit): boolean {
    for (const h of this.holders) {
      if (h.name === u.name) continue;
      if (anyGlob(h.fleet.conflicts, u.name) || anyGlob(h.fleet.replaces, u.name)) return true;
    }
    return false;
  }

  /**
   * Why `u` cannot stay on / go to machine m (undefined: it can). `evicts` collects units on m
   * that `u` replaces (they move away). `self` excludes u's own current placement.
   */
  reject(u: EngineUnit, m: EngineMachine, evicts?: string[], forNew = true): Rejection | undefined {
    if (forNew && m.availability === "pause") return { one: "is paused", many: "are paused" };
    if (m.availability === "drain") return { one: "is draining", many: "are draining" };
    const f = u.fleet;
    if (f.machineId !== undefined && !machineIdMatches(f.machineId, m.id)) {
      return { one: `is not MachineID=${f.machineId}`, many: `are not MachineID=${f.machineId}` };
    }
    const unmet = unmetMetadata(f.machineMetadata, m.metadata);
    if (unmet) return { one: `lacks ${unmet}`, many: `lack ${unmet}` };
    for (const peer of f.machineOf) {
      if (this.where.get(peer) !== m.id) return { one: `does not run ${peer}`, many: `do not run ${peer}` };
    }
    const here = f.conflicts.length || f.replaces.length || this.holders.length ? this.unitsOn(m.id) : NONE;
    for (const g of this.globalsOn(m)) {
      if (g.name === u.name) continue;
      if (anyGlob(f.conflicts, g.name) || anyGlob(g.fleet.conflicts, u.name)) {
        return { one: `conflicts with ${g.name}`, many: `conflict with ${g.name}` };
      }
    }
    if (here.size > 0 && (f.conflicts.length || f.replaces.length || this.holders.length)) {
      for (const other of here) {
        if (other === u.name) continue;
        const o = this.units.get(other);
        const oc = o?.fleet.conflicts ?? [];
        const or = o?.fleet.replaces ?? [];
        if (anyGlob(f.conflicts, other) || anyGlob(oc, u.name)) {
          return { one: `conflicts with ${other}`, many: `conflict with ${other}` };
        }
        const iReplace = anyGlob(f.replaces, other);
        const replacesMe = anyGlob(or, u.name);
        if (replacesMe) return { one: `runs ${other}, which replaces it`, many: `run ${other}, which replaces it` };
        if (iReplace) evicts?.push(other);
      }
    }
    if (forNew && (f.cpu || f.memoryBytes)) {
      let freedCpu = 0;
      let freedMem = 0;
      for (const e of evicts ?? []) {
        freedCpu += this.units.get(e)?.fleet.cpu ?? 0;
        freedMem += this.units.get(e)?.fleet.memoryBytes ?? 0;
      }
      const eps = 1e-9;
      if (f.cpu && (this.cpu.get(m.id) ?? 0) - freedCpu + f.cpu > m.capacity.cpu + eps) {
        return { one: `lacks ${f.cpu} free CPU`, many: `lack ${f.cpu} free CPU` };
      }
      if (f.memoryBytes && (this.mem.get(m.id) ?? 0) - freedMem + f.memoryBytes > m.capacity.memory) {
        return { one: `lacks ${formatSize(f.memoryBytes)} free memory`, many: `lack ${formatSize(f.memoryBytes)} free memory` };
      }
    }
    return undefined;
  }

  /** Chooses a machine for an unplaced unit, or says why none fits. */
  decide(u: EngineUnit): Decision {
    if (this.machines.length === 0) return { ok: false, reason: "no live machines", refusals: [] };
    // A global unit can only block u through its own Conflicts, which namedByOthers sees.
    if (isUnconstrained(u) && !this.namedByOthers(u)) {
      const id = this.leastLoadedActive();
      if (id !== undefined) return { ok: true, machineId: id, evicts: [] };
      const all = this.machines.map((m) => ({ id: m.id, r: this.reject(u, m)! }));
      return { ok: false, reason: combine(all.map((x) => x.r)), refusals: refusalsOf(all) };
    }
    for (const peer of u.fleet.machineOf) {
      if (!this.where.has(peer)) return { ok: false, reason: `MachineOf peer ${peer} is not placed`, refusals: [] };
    }
    let best: { id: string; load: number; evicts: string[] } | undefined;
    const rejections: { id: string; r: Rejection }[] = [];
    for (const m of this.machines) {
      const evicts: string[] = [];
      const r = this.reject(u, m, evicts);
      if (r) {
        rejections.push({ id: m.id, r });
        continue;
      }
      const load = this.load(m.id) - evicts.length;
      if (!best || load < best.load) best = { id: m.id, load, evicts };
    }
    if (best) return { ok: true, machineId: best.id, evicts: best.evicts };
    return { ok: false, reason: combine(rejections.map((x) => x.r)), refusals: refusalsOf(rejections) };
  }

  private leastLoadedActive(): string | undefined {
    if (!this.heap) {
      this.heap = this.machines.filter((m) => m.availability === "active").map((m) => [this.load(m.id), m.id]);
      this.heap.sort(cmp);
    }
    const h = this.heap;
    for (;;) {
      const top = h[0];
      if (!top) return undefined;
      const cur = this.load(top[1]);
      if (cur === top[0]) {
        // Claim it now: the caller places a unit here, so the entry's load goes up by one.
        top[0] = cur + 1;
        siftDown(h, 0);
        return top[1];
      }
      top[0] = cur;
      siftDown(h, 0);
    }
  }
}

/** Heap order of [load, machine ID]: least loaded first, ties by machine ID. */
export function cmp(a: [number, string], b: [number, string]): number {
  return a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0);
}
export function siftDown(h: [number, string][], i: number): void {
  const n = h.length;
  for (;;) {
    const l = 2 * i + 1;
    const r = l + 1;
    let s = i;
    if (l < n && cmp(h[l]!, h[s]!) < 0) s = l;
    if (r < n && cmp(h[r]!, h[s]!) < 0) s = r;
    if (s === i) return;
    [h[i], h[s]] = [h[s]!, h[i]!];
    i = s;
  }
}

/** "3 machines lack region=eu; 1 conflicts with web@1.service" (most common first). */
export function combine(rejections: Rejection[]): string {
  const counts = new Map<string, { r: Rejection; n: number }>();
  for (const r of rejections) {
    const c = counts.get(r.one);
    if (c) c.n++;
    else counts.set(r.one, { r, n: 1 });
  }
  const groups = [...counts.values()].sort((a, b) => b.n - a.n || (a.r.one < b.r.one ? -1 : 1));
  return groups
    .map((g, i) => `${g.n}${i === 0 ? (g.n === 1 ? " machine" : " machines") : ""} ${g.n === 1 ? g.r.one : g.r.many}`)
    .join("; ");
}
// The engine's decisions, pure (fleet's calculateClusterTasks): from the units, the current
// schedule and the live machines, the list of actions that makes the schedule right, each with
// its reason. The engine executes them (schedule-writer.ts): every unschedule before any
// schedule, so a unit that moves is deleted from its old machine before it appears on the new.
//
// Rules, in order:
//  1. An entry is removed when its unit is gone, is global (agents run globals themselves), is
//     desired inactive, sits on a lost machine, or is a duplicate (kept on the first machine).
//  2. A kept entry is removed when it can no longer run there: machine draining, MachineID /
//     MachineMetadata no longer met, MachineOf peer no longer beside it, a conflict with a unit
//     on the same machine (the one checked first, by name, goes), or replaced by a unit there.
//     Reservations are only checked when placing (a changed capacity does not evict).
//     Repeated until nothing changes, so a MachineOf follower goes with its peer.
//  3. A kept entry whose desired state or unit file changed is rewritten in place.
//  4. Unplaced units (not global, not inactive) are placed, MachineOf followers after the
//     others; a Replaces winner evicts the replaced unit, which is placed again elsewhere.
//  5. Unplaced reasons are written when they change and cleared when a unit is placed or
//     no longer needs a place.

export interface ReconcileInput {
  units: ReadonlyMap<string, EngineUnit>;
  placements: Iterable<Placement>;
  /** Live machines only (liveness is decided before). */
  machines: ReadonlyMap<string, EngineMachine>;
  /** Unplaced reasons currently recorded, by unit. */
  unplaced: ReadonlyMap<string, string>;
}

function byName<T extends { unit: string; machineId: string }>(a: T, b: T): number {
  return a.unit < b.unit ? -1 : a.unit > b.unit ? 1 : a.machineId < b.machineId ? -1 : a.machineId > b.machineId ? 1 : 0;
}

export function reconcile(input: ReconcileInput): Action[] {
  const { units, machines, unplaced } = input;
  let state = new ClusterState(units, machines.values());
  const unschedule: (Action & { machineId: string })[] = [];
  const updates: Action[] = [];
  const schedule: Action[] = [];
  const reasons: Action[] = [];

  // 1. entries that cannot stand at all. Name order matters only for duplicates (the first
  // machine by ID keeps the unit) and for units that name each other (who goes first): sort
  // only then, not 100,000 entries every round. A duplicate found in stream order starts the
  // pass again in name order.
  const all = [...input.placements];
  let sorted = state.hasRelations();
  let placements = sorted ? all.sort(byName) : all;
  let kept: { p: Placement; u: EngineUnit }[] = [];
  for (;;) {
    let restart = false;
    for (const p of placements) {
      const u = units.get(p.unit);
      let why: string | undefined;
      if (!u) why = "unit no longer exists";
      else if (u.fleet.global) why = "unit is global: every matching agent runs it itself";
      else if (u.desiredState === "inactive") why = "desired state is inactive";
      else if (u.invalid) why = `unit file is invalid: ${u.invalid}`;
      else if (!machines.has(p.machineId)) why = `machine ${p.machineId} is lost`;
      else if (state.machineOf(p.unit) !== undefined) {
        if (!sorted) {
          restart = true;
          break;
        }
        why = `duplicate placement: kept on ${state.machineOf(p.unit)}`;
      }
      if (why) {
        unschedule.push({ type: "unschedule", unit: p.unit, machineId: p.machineId, reason: why });
        continue;
      }
      state.place(u!, p.machineId);
      kept.push({ p, u: u! });
    }
    if (!restart) break;
    sorted = true;
    placements = all.sort(byName);
    state = new ClusterState(units, machines.values());
    unschedule.length = 0;
    kept = [];
  }

  // 2. entries that can no longer run where they are (to a fixpoint: followers go with peers)
  let alive = kept;
  for (let changed = !state.everyPlacementStays(); changed; ) {
    changed = false;
    const next: typeof kept = [];
    for (const k of alive) {
      const { p, u } = k;
      const r = state.reject(u, machines.get(p.machineId)!, undefined, false);
      if (r) {
        state.remove(p.unit);
        unschedule.push({ type: "unschedule", unit: p.unit, machineId: p.machineId, reason: `machine ${p.machineId} ${r.one}` });
        changed = true;
      } else next.push(k);
    }
    alive = next;
  }

  // 3. rewrites in place
  for (const { p, u } of alive) {
    if (p.desiredState !== u.desiredState || p.hash !== u.hash) {
      const why = p.hash !== u.hash ? "unit file changed" : `desired state is now ${u.desiredState}`;
      updates.push({ type: "update", unit: p.unit, machineId: p.machineId, reason: why });
    }
  }

  // 4. placement
  const queue: EngineUnit[] = [];
  for (const u of units.values()) {
    if (u.fleet.global || u.desiredState === "inactive" || state.machineOf(u.name) !== undefined) continue;
    queue.push(u);
  }
  queue.sort((a, b) => {
    const fa = a.fleet.machineOf.length > 0 ? 1 : 0;
    const fb = b.fleet.machineOf.length > 0 ? 1 : 0;
    return fa - fb || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  });
  const notPlaced = new Map<string, string>();
  const refusals = new Map<string, Refusal[]>();
  const evictedOnce = new Set<string>();
  for (let i = 0; i < queue.length; i++) {
    const u = queue[i]!;
    if (u.invalid) {
      notPlaced.set(u.name, `unit file is invalid: ${u.invalid}`);
      continue;
    }
    const d = state.decide(u);
    if (!d.ok) {
      notPlaced.set(u.name, d.reason);
      refusals.set(u.name, d.refusals);
      continue;
    }
    for (const e of d.evicts) {
      const from = state.machineOf(e)!;
      state.remove(e);
      unschedule.push({ type: "unschedule", unit: e, machineId: from, reason: `replaced by ${u.name}` });
      // Drop a rewrite or placement of the evicted unit decided earlier in this round.
      dropFor(updates, e);
      dropFor(schedule, e);
      if (!evictedOnce.has(e)) {
        evictedOnce.add(e);
        const eu = units.get(e);
        if (eu) queue.push(eu);
      }
    }
    state.place(u, d.machineId);
    notPlaced.delete(u.name);
    schedule.push({ type: "schedule", unit: u.name, machineId: d.machineId, reason: placementReason(u, state, d.machineId) });
  }

  // 5. reasons
  for (const [unit, reason] of notPlaced) {
    if (unplaced.get(unit) === reason) continue;
    const r = refusals.get(unit);
    reasons.push(r?.length ? { type: "unplaced", unit, reason, refusals: r } : { type: "unplaced", unit, reason });
  }
  for (const unit of unplaced.keys()) {
    if (notPlaced.has(unit)) continue;
    const where = state.machineOf(unit);
    reasons.push({
      type: "clear-unplaced",
      unit,
      reason: where !== undefined ? `placed on ${where}` : "no longer needs a place",
    });
  }

  return [...unschedule.sort(byName), ...updates, ...schedule, ...reasons];
}

function dropFor(actions: Action[], unit: string): void {
  for (let i = actions.length - 1; i >= 0; i--) if (actions[i]!.unit === unit) actions.splice(i, 1);
}

function placementReason(u: EngineUnit, state: ClusterState, machineId: string): string {
  if (u.fleet.machineId !== undefined) return `MachineID=${u.fleet.machineId}`;
  if (u.fleet.machineOf.length) return `MachineOf=${u.fleet.machineOf.join(",")}`;
  return `least loaded (${state.load(machineId) - 1} units before)`;
}
