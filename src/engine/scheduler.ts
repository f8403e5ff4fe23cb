// Placement, pure: fleet's least-loaded choice (fewest units, ties broken by machine ID) after
// every [X-Fleet] filter. Each filter explains itself, and an unplaceable unit gets the combined
// explanation ("3 machines lack region=eu; 1 conflicts with web@1.service").
//
// ClusterState is the scratch picture one reconcile round works on: which unit sits where, what
// each machine has reserved. Unconstrained units (the common case at scale) take a fast path:
// a lazy min-heap of active machines by load, so 100,000 placements stay O(n log m). Constrained
// ones cost about as much (issue 10): Conflicts/Replaces globs are compiled once into indexes
// (glob-index.ts) consulted from both sides, MachineOf goes through the unit -> machine map,
// MachineMetadata through an index of machines by key and value with one lazy heap per
// requirement, and CPU/memory through running sums; only a unit that fits nowhere is judged
// against every machine, for its explanation.
import { NO_FLEET_OPTIONS, type EngineMachine, type EngineUnit } from "./model.js";
import { chooseGlobals, explainMetadata, formatMissing, globMatch, matchesMetadata } from "../unit/match.js";
import { GlobOwners, NameIndex } from "./glob-index.js";
import { formatSize } from "../util/measure.js";

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
  if (matchesMetadata(want, have)) return undefined;
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

/** A lazy min-heap of [load, machine ID]: stored loads may lag (only ever below) the real ones. */
type Heap = [number, string][];

/** The machine chosen so far for a unit: its load after its evictions (ClusterState.consider). */
type Best = { id: string; load: number; evicts: string[] };

/** Where a unit's relations sit, machine by machine (see ClusterState.nearOn). */
interface Near {
  /** The first placed (lowest placement sequence) unit that keeps u off the machine. */
  blocker?: string;
  blockerSeq: number;
  blockerConflicts: boolean;
  /** Units there that u replaces, in placement order. */
  evicts: string[];
}

/**
 * A unit's relations as name lists (shared between units, never copied): units its Conflicts
 * name and units whose Conflicts name it; units whose Replaces name it; units its Replaces name.
 */
interface Relations {
  conflicts: (readonly string[])[];
  replacers: (readonly string[])[];
  replaced: (readonly string[])[];
  size: number;
}

export class ClusterState {
  readonly machines: EngineMachine[];
  readonly machineById = new Map<string, EngineMachine>();
  /** How many non-global units are placed on each machine. */
  private readonly count = new Map<string, number>();
  /**
   * Which ones, built from `where` the first time a filter asks (globals, crowded relations):
   * an unconstrained cluster never needs them, and 100,000 set inserts per round were a third
   * of a reconcile pass.
   */
  private on?: Map<string, Set<string>>;
  private readonly where = new Map<string, string>();
  /**
   * When each placed unit was placed here (a counter): a machine's units in this order are the
   * order its set iterates in, which decides which of two conflicting units a message names.
   */
  private readonly seq = new Map<string, number>();
  private nextSeq = 0;
  private readonly cpu = new Map<string, number>();
  private readonly mem = new Map<string, number>();
  /** Units (placed anywhere, or global) whose Conflicts/Replaces may name other units. */
  private readonly holders: EngineUnit[] = [];
  /** Holders by the globs they declare, looked up by the name of the unit they may name. */
  private readonly conflictOwners = new GlobOwners<string>();
  private readonly replaceOwners = new GlobOwners<string>();
  private names?: NameIndex;
  readonly globals: EngineUnit[] = [];
  private heap?: Heap;
  /** Per MachineMetadata requirement: a heap of the active machines that meet it. */
  private readonly groupHeaps = new Map<string, Heap>();
  /** Machines by metadata key and value (MachineMetadata's candidates without a scan). */
  private byMeta?: Map<string, Map<string, EngineMachine[]>>;

  /** `deferIndex`: the caller runs index() itself (in slices) before asking anything. */
  constructor(
    readonly units: ReadonlyMap<string, EngineUnit>,
    machines: Iterable<EngineMachine>,
    deferIndex = false,
  ) {
    this.machines = [...machines].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    for (const m of this.machines) {
      this.machineById.set(m.id, m);
      this.count.set(m.id, 0);
      this.cpu.set(m.id, 0);
      this.mem.set(m.id, 0);
    }
    if (!deferIndex) for (const _ of this.index());
  }

  /**
   * Indexes the units' relations (a generator that yields every 64 units, for slicing): the
   * first read of a unit's options parses its file (views.ts), 30-50 µs each.
   */
  *index(): Generator<void, void, void> {
    let n = 0;
    for (const u of this.units.values()) {
      if (++n % 64 === 0) yield;
      if (u.fleet.machineOf.length) this.followers = true;
      if (u.invalid || u.fleet === NO_FLEET_OPTIONS) continue;
      if (u.fleet.conflicts.length || u.fleet.replaces.length) {
        this.holders.push(u);
        for (const g of u.fleet.conflicts) this.conflictOwners.add(g, u.name);
        for (const g of u.fleet.replaces) this.replaceOwners.add(g, u.name);
      }
      if (u.fleet.global && u.desiredState !== "inactive") this.globals.push(u);
      if (!this.constrained && !isUnconstrained(u)) this.constrained = true;
    }
    for (const m of this.machines) if (m.availability === "drain") this.draining = true;
  }

  /**
   * A unit first seen after index() (the engine's incremental rounds, incremental.ts), indexed
   * as index() would have indexed it. The caller keeps out what this picture cannot take in
   * place: globals (they change what may stay where), invalid units, units already placed. The
   * units map must be this picture's own (reconcileKeeping's contract).
   */
  addUnit(u: EngineUnit): void {
    (this.units as Map<string, EngineUnit>).set(u.name, u);
    if (u.fleet.machineOf.length) this.followers = true;
    if (u.invalid || u.fleet === NO_FLEET_OPTIONS) return;
    if (u.fleet.conflicts.length || u.fleet.replaces.length) {
      // The first holder: placement order starts to matter (place() kept none until now).
      if (this.holders.length === 0) for (const x of this.where.keys()) this.seq.set(x, this.nextSeq++);
      this.holders.push(u);
      for (const g of u.fleet.conflicts) this.conflictOwners.add(g, u.name);
      for (const g of u.fleet.replaces) this.replaceOwners.add(g, u.name);
    }
    if (!this.constrained && !isUnconstrained(u)) this.constrained = true;
  }

  /** A known unit's new record with the same file (its desired state changed). */
  setUnit(u: EngineUnit): void {
    (this.units as Map<string, EngineUnit>).set(u.name, u);
  }

  /**
   * Names added with addUnit, in ascending order, for the glob index (useSortedNames instead
   * while needsNames); yields during the index's merges (the incremental rounds run it in slices).
   */
  *addNamesSteps(names: readonly string[]): Generator<void, void, void> {
    if (this.names) yield* this.names.addSteps(names);
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
    // MachineOf is a constraint: without any, no unit can follow another.
    return this.holders.length > 0 || (this.constrained && this.followers);
  }
  /** Some unit (any, even an invalid one) declares MachineOf (seen by index()). */
  private followers = false;

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
    // Only relations (Conflicts/Replaces, declared by holders) ask for the placement order.
    if (this.holders.length) this.seq.set(u.name, this.nextSeq++);
    this.count.set(machineId, (this.count.get(machineId) ?? 0) + 1);
    this.on?.get(machineId)?.add(u.name);
    if (this.globals.length) this.globalsCache.delete(machineId);
    if (u.fleet.cpu) this.cpu.set(machineId, (this.cpu.get(machineId) ?? 0) + u.fleet.cpu);
    if (u.fleet.memoryBytes) this.mem.set(machineId, (this.mem.get(machineId) ?? 0) + u.fleet.memoryBytes);
    // Loads only grow here; the heaps correct stale entries lazily.
  }

  remove(unit: string): void {
    const m = this.where.get(unit);
    if (m === undefined) return;
    this.where.delete(unit);
    if (this.holders.length) this.seq.delete(unit);
    this.count.set(m, (this.count.get(m) ?? 1) - 1);
    this.on?.get(m)?.delete(unit);
    this.globalsCache.delete(m);
    const u = this.units.get(unit);
    if (u) {
      this.cpu.set(m, (this.cpu.get(m) ?? 0) - (u.fleet.cpu ?? 0));
      this.mem.set(m, (this.mem.get(m) ?? 0) - (u.fleet.memoryBytes ?? 0));
    }
    // A load went down: rebuild on next use.
    this.heap = undefined;
    this.groupHeaps.clear();
  }

  /** Whether some unit's Conflicts/Replaces globs will ask which units they name. */
  needsNames(): boolean {
    return this.holders.length > 0 && !this.names;
  }
  /** The units' names in ascending order (the reconciler sorts them in slices). */
  useSortedNames(sorted: string[]): void {
    this.names = new NameIndex(this.units, sorted);
  }

  /** Whether any Conflicts/Replaces declared by another unit could name this one. */
  private namedByOthers(u: EngineUnit): boolean {
    if (this.holders.length === 0) return false;
    for (const owners of this.conflictOwners.ownersOf(u.name)) for (const o of owners) if (o !== u.name) return true;
    for (const owners of this.replaceOwners.ownersOf(u.name)) for (const o of owners) if (o !== u.name) return true;
    return false;
  }

  /** u's relations as name lists (shared, never copied); nothing is kept per unit. */
  private relationsOf(u: EngineUnit): Relations {
    const f = u.fleet;
    const r: Relations = { conflicts: [], replacers: [], replaced: [], size: 0 };
    if (f.conflicts.length || f.replaces.length) this.names ??= new NameIndex(this.units);
    for (const g of f.conflicts) r.conflicts.push(this.names!.named(g));
    if (this.holders.length) {
      for (const l of this.conflictOwners.ownersOf(u.name)) r.conflicts.push(l);
      for (const l of this.replaceOwners.ownersOf(u.name)) r.replacers.push(l);
    }
    for (const g of f.replaces) r.replaced.push(this.names!.named(g));
    for (const l of r.conflicts) r.size += l.length;
    for (const l of r.replacers) r.size += l.length;
    for (const l of r.replaced) r.size += l.length;
    return r;
  }

  /**
   * What u's relations say about machine m (undefined: nothing): the first unit placed there
   * (by placement order, as m's set iterates) that conflicts with u or replaces it, and the
   * units there that u replaces, in placement order. From u's relation lists when they are
   * short, else from m's units (the same answer either way).
   */
  private nearOn(u: EngineUnit, m: string): Near | undefined {
    const rel = this.relationsOf(u);
    if (rel.size === 0) return undefined;
    const here = rel.size > 64 ? this.unitsOn(m) : undefined;
    if (here && here.size < rel.size) {
      const near: Near = { blockerSeq: Infinity, blockerConflicts: false, evicts: [] };
      const c = new Set<string>();
      for (const l of rel.conflicts) for (const x of l) c.add(x);
      const rp = new Set<string>();
      for (const l of rel.replacers) for (const x of l) rp.add(x);
      const rd = new Set<string>();
      for (const l of rel.replaced) for (const x of l) rd.add(x);
      for (const x of [...here].sort((a, b) => this.seq.get(a)! - this.seq.get(b)!)) {
        if (x === u.name) continue;
        if (c.has(x) || rp.has(x)) {
          near.blocker = x;
          near.blockerSeq = this.seq.get(x)!;
          near.blockerConflicts = c.has(x);
          break;
        }
        if (rd.has(x)) near.evicts.push(x);
      }
      return near;
    }
    return this.walk(u, rel, m).get(m);
  }

  /** nearOn for every machine where one of u's relations sits (only machine `only`, if given). */
  private nearAll(u: EngineUnit): Map<string, Near> {
    return this.walk(u, this.relationsOf(u));
  }

  private walk(u: EngineUnit, rel: Relations, only?: string): Map<string, Near> {
    const out = new Map<string, Near>();
    if (rel.size === 0) return out;
    for (let pass = 0; pass < 2; pass++) {
      const conflicts = pass === 0;
      for (const l of conflicts ? rel.conflicts : rel.replacers) {
        for (const x of l) {
          if (x === u.name) continue;
          const m = this.where.get(x);
          if (m === undefined || (only !== undefined && m !== only)) continue;
          let near = out.get(m);
          if (!near) out.set(m, (near = { blockerSeq: Infinity, blockerConflicts: false, evicts: [] }));
          const s = this.seq.get(x)!;
          // The same unit as conflict and replacer: the conflict is said (checked first).
          if (s < near.blockerSeq) {
            near.blocker = x;
            near.blockerSeq = s;
            near.blockerConflicts = conflicts;
          }
        }
      }
    }
    if (rel.replaced.length === 0) return out;
    const seen = rel.replaced.length > 1 ? new Set<string>() : undefined;
    for (const l of rel.replaced) {
      for (const x of l) {
        if (x === u.name) continue;
        const m = this.where.get(x);
        if (m === undefined || (only !== undefined && m !== only)) continue;
        if (seen) {
          if (seen.has(x)) continue;
          seen.add(x);
        }
        let near = out.get(m);
        if (!near) out.set(m, (near = { blockerSeq: Infinity, blockerConflicts: false, evicts: [] }));
        near.evicts.push(x);
      }
    }
    for (const n of out.values()) if (n.evicts.length > 1) n.evicts.sort((a, b) => this.seq.get(a)! - this.seq.get(b)!);
    return out;
  }

  /**
   * Why `u` cannot stay on / go to machine m (undefined: it can). `evicts` collects units on m
   * that `u` replaces (they move away). `forNew`: placing u there (pause refuses, reservations
   * count), not judging where it already runs.
   */
  reject(u: EngineUnit, m: EngineMachine, evicts?: string[], forNew = true): Rejection | undefined {
    return this.rejectNear(u, m, evicts, forNew, undefined);
  }

  /** near: what u's relations say per machine (nearAll), or undefined: ask nearOn for m alone. */
  private rejectNear(
    u: EngineUnit,
    m: EngineMachine,
    evicts: string[] | undefined,
    forNew: boolean,
    near: ReadonlyMap<string, Near> | undefined,
  ): Rejection | undefined {
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
    for (const g of this.globalsOn(m)) {
      if (g.name === u.name) continue;
      if (anyGlob(f.conflicts, g.name) || anyGlob(g.fleet.conflicts, u.name)) {
        return { one: `conflicts with ${g.name}`, many: `conflict with ${g.name}` };
      }
    }
    const n = near ? near.get(m.id) : this.nearOn(u, m.id);
    if (n) {
      if (n.blocker !== undefined) {
        const other = n.blocker;
        return n.blockerConflicts
          ? { one: `conflicts with ${other}`, many: `conflict with ${other}` }
          : { one: `runs ${other}, which replaces it`, many: `run ${other}, which replaces it` };
      }
      evicts?.push(...n.evicts);
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

  /**
   * Chooses a machine for an unplaced unit, or says why none fits: the least loaded machine
   * (after its evictions; ties by machine ID) that no filter refuses. Only the machines that
   * can take it are looked at: MachineOf's peer's machine, MachineID's, or the active machines
   * that meet its MachineMetadata, least loaded first, until one passes every filter. Only a
   * unit that fits nowhere is judged against every machine, for the explanation.
   */
  decide(u: EngineUnit): Decision {
    if (this.machines.length === 0) return { ok: false, reason: "no live machines", refusals: [] };
    // A global unit can only block u through its own Conflicts, which namedByOthers sees.
    if (isUnconstrained(u) && !this.namedByOthers(u)) {
      const id = this.leastLoadedActive();
      if (id !== undefined) return { ok: true, machineId: id, evicts: [] };
      return this.explain(u);
    }
    for (const peer of u.fleet.machineOf) {
      if (!this.where.has(peer)) return { ok: false, reason: `MachineOf peer ${peer} is not placed`, refusals: [] };
    }
    const near = this.nearAll(u);
    let best: Best | undefined;
    const f = u.fleet;
    if (f.machineOf.length) {
      best = this.consider(u, this.machineById.get(this.where.get(f.machineOf[0]!)!)!, near, best);
    } else if (f.machineId !== undefined) {
      for (const m of this.machines) if (machineIdMatches(f.machineId, m.id)) best = this.consider(u, m, near, best);
    } else {
      // Machines where u would evict someone: their load counts minus the evicted.
      for (const [id, n] of near) if (n.evicts.length && n.blocker === undefined) best = this.consider(u, this.machineById.get(id)!, near, best);
      const h = this.groupHeap(f.machineMetadata);
      const aside: Heap = [];
      while (h.length) {
        const top = h[0]!;
        const cur = this.load(top[1]);
        if (cur !== top[0]) {
          top[0] = cur;
          siftDown(h, 0);
          continue;
        }
        if (best && (cur > best.load || (cur === best.load && top[1] > best.id))) break;
        const n = near.get(top[1]);
        if (!n?.evicts.length) {
          const next = this.consider(u, this.machineById.get(top[1])!, near, best);
          if (next !== best) {
            best = next;
            break;
          }
        }
        aside.push(popHeap(h));
      }
      for (const e of aside) pushHeap(h, e);
    }
    if (best) return { ok: true, machineId: best.id, evicts: best.evicts };
    return this.explain(u, near);
  }

  /**
   * best, or machine m for u when m takes it (after its evictions) and is less loaded (ties by
   * machine ID). A method, not a closure per decision: decide() runs once per unit of a burst.
   */
  private consider(u: EngineUnit, m: EngineMachine, near: ReadonlyMap<string, Near>, best: Best | undefined): Best | undefined {
    const evicts: string[] = [];
    if (this.rejectNear(u, m, evicts, true, near)) return best;
    const load = this.load(m.id) - evicts.length;
    if (!best || load < best.load || (load === best.load && m.id < best.id)) return { id: m.id, load, evicts };
    return best;
  }

  /** Every machine's refusal of u, combined (u fits nowhere). */
  private explain(u: EngineUnit, near?: ReadonlyMap<string, Near>): Decision {
    const rejections: { id: string; r: Rejection }[] = [];
    let best: { id: string; load: number; evicts: string[] } | undefined;
    for (const m of this.machines) {
      const evicts: string[] = [];
      const r = this.rejectNear(u, m, evicts, true, near);
      if (r) {
        rejections.push({ id: m.id, r });
        continue;
      }
      // Not expected (the search above looked at every machine that can take u); kept exact.
      const load = this.load(m.id) - evicts.length;
      if (!best || load < best.load) best = { id: m.id, load, evicts };
    }
    if (best) return { ok: true, machineId: best.id, evicts: best.evicts };
    return { ok: false, reason: combine(rejections.map((x) => x.r)), refusals: refusalsOf(rejections) };
  }

  /** The active machines that meet `want`, as a heap by load, kept across decisions. */
  private groupHeap(want: Record<string, string[]>): Heap {
    const key = groupKey(want);
    let h = this.groupHeaps.get(key);
    if (h) return h;
    const keysOf = Object.keys(want).filter((k) => want[k]!.length > 0);
    let pool: Iterable<EngineMachine> = this.machines;
    // A plain key ("region", not "ram>"): only the machines with one of its values.
    const plain = keysOf.find((k) => !/[<>!]$/.test(k) || k.length === 1);
    if (plain !== undefined) {
      this.byMeta ??= this.indexMetadata();
      const byValue = this.byMeta.get(plain);
      const set = new Set<EngineMachine>();
      for (const v of want[plain]!) for (const m of byValue?.get(v) ?? []) set.add(m);
      pool = set;
    }
    h = [];
    for (const m of pool) if (m.availability === "active" && matchesMetadata(want, m.metadata)) h.push([this.load(m.id), m.id]);
    h.sort(cmp);
    this.groupHeaps.set(key, h);
    return h;
  }

  private indexMetadata(): Map<string, Map<string, EngineMachine[]>> {
    const idx = new Map<string, Map<string, EngineMachine[]>>();
    for (const m of this.machines) {
      for (const k of Object.keys(m.metadata)) {
        let byValue = idx.get(k);
        if (!byValue) idx.set(k, (byValue = new Map()));
        const v = m.metadata[k]!;
        const l = byValue.get(v);
        if (l) l.push(m);
        else byValue.set(v, [m]);
      }
    }
    return idx;
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

/** A MachineMetadata requirement as a string (equal strings, same machines); kept per frozen (parsed, shared) object. */
const groupKeys = new WeakMap<object, string>();
function groupKey(want: Record<string, string[]>): string {
  const hit = groupKeys.get(want);
  if (hit !== undefined) return hit;
  const keysOf = Object.keys(want).filter((k) => want[k]!.length > 0);
  const key = keysOf.length === 0 ? "" : JSON.stringify(keysOf.map((k) => [k, want[k]]));
  if (Object.isFrozen(want)) groupKeys.set(want, key);
  return key;
}

function popHeap(h: Heap): [number, string] {
  const top = h[0]!;
  const last = h.pop()!;
  if (h.length) {
    h[0] = last;
    siftDown(h, 0);
  }
  return top;
}

function pushHeap(h: Heap, e: [number, string]): void {
  h.push(e);
  let i = h.length - 1;
  while (i > 0) {
    const p = (i - 1) >> 1;
    if (cmp(h[i]!, h[p]!) >= 0) return;
    [h[i], h[p]] = [h[p]!, h[i]!];
    i = p;
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
