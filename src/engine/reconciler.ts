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
//
// The pass is a generator that yields every few units (issue 10): reconcile() runs it through
// at once, reconcileSliced() gives the event loop back every sliceMs of work (lease renewals,
// heartbeats and API requests keep flowing during a 100,000-unit burst), with the same result.
// The large sorts are sliced too (sortSteps: sorted chunks, then merges).
import type { Action, EngineMachine, EngineUnit, Placement } from "./model.js";
import { ClusterState, type Refusal } from "./scheduler.js";
import { runToEnd, Slicer } from "./slicer.js";
import { byString, mergeSortedSteps } from "../util/sorted.js";

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

/** How many loop iterations between two yields (the driver reads the clock only there). */
const STEP = 32;

type Steps<T> = Generator<void, T, void>;

/** The reconcile pass, all at once (the tests' and the fast engine's entry point). */
export function reconcile(input: ReconcileInput): Action[] {
  return reconcileAtOnce(input).actions;
}

/** reconcile(), and the pass's picture of the cluster at its end (see reconcileKeeping). */
export function reconcileAtOnce(input: ReconcileInput): { actions: Action[]; state: ClusterState } {
  return runToEnd(reconcileSteps(input));
}

export interface SliceOptions {
  /** Work at most this long before giving the event loop a turn (default 20 ms). */
  sliceMs?: number;
  /** The round's slicer (slicer.ts), shared with the writer; sliceMs is then its budget. */
  slicer?: Slicer;
}

/**
 * reconcile(), the same actions, cut into slices of about sliceMs that each end with a turn of
 * the event loop (setImmediate: timers and I/O run between two slices). Nothing else may
 * change `input` while it runs: the engine passes its views and does not apply events to them
 * until the promise settles (or passes copies).
 */
export async function reconcileSliced(input: ReconcileInput, o: SliceOptions = {}): Promise<Action[]> {
  return (await reconcileKeeping(input, o)).actions;
}

/**
 * reconcileSliced(), and the pass's picture of the cluster at its end: where every unit sits
 * once the actions are written. The engine keeps it for the incremental rounds that follow
 * (incremental.ts); `input.units` must then be the caller's own copy (the picture keeps it, and
 * adds the units of later rounds to it).
 */
export async function reconcileKeeping(input: ReconcileInput, o: SliceOptions = {}): Promise<{ actions: Action[]; state: ClusterState }> {
  return (o.slicer ?? new Slicer(o.sliceMs ?? 20)).run(reconcileSteps(input));
}

/** A stable merge sort that yields between chunks and during merges (Array.sort below 2,048). */
export function* sortSteps<T>(a: T[], cmp: (x: T, y: T) => number): Steps<T[]> {
  const CHUNK = 2048;
  // Strings by code unit: Array.sort's own order, half again as fast as calling byString.
  const strings = (cmp as unknown) === byString;
  const sort = (x: T[]) => (strings ? x.sort() : x.sort(cmp));
  if (a.length <= CHUNK) return sort(a);
  let runs: T[][] = [];
  for (let i = 0; i < a.length; i += CHUNK) {
    runs.push(sort(a.slice(i, i + CHUNK)));
    yield;
  }
  while (runs.length > 1) {
    const merged: T[][] = [];
    for (let k = 0; k < runs.length; k += 2) {
      const x = runs[k]!;
      const y = runs[k + 1];
      if (!y) {
        merged.push(x);
        continue;
      }
      if (strings) {
        // The same test as byString's, without a call through the shared (megamorphic) cmp.
        merged.push((yield* mergeSortedSteps(x as string[], y as string[])) as T[]);
        yield;
        continue;
      }
      const out = new Array<T>(x.length + y.length);
      let i = 0;
      let j = 0;
      let o = 0;
      while (i < x.length && j < y.length) {
        out[o++] = cmp(y[j]!, x[i]!) < 0 ? y[j++]! : x[i++]!;
        if ((o & 4095) === 0) yield;
      }
      while (i < x.length) out[o++] = x[i++]!;
      while (j < y.length) out[o++] = y[j++]!;
      merged.push(out);
      yield;
    }
    runs = merged;
  }
  const sorted = runs[0]!;
  for (let i = 0; i < sorted.length; i++) a[i] = sorted[i]!;
  return a;
}

/** A fresh scratch state; the names sorted (sliced) first when some glob will ask for them. */
function* stateFor(units: ReadonlyMap<string, EngineUnit>, machines: ReadonlyMap<string, EngineMachine>): Steps<ClusterState> {
  const state = new ClusterState(units, machines.values(), true);
  yield* state.index();
  if (state.needsNames()) state.useSortedNames(yield* sortSteps([...units.keys()], byString));
  return state;
}

function* reconcileSteps(input: ReconcileInput): Steps<{ actions: Action[]; state: ClusterState }> {
  const { units, machines, unplaced } = input;
  let state = yield* stateFor(units, machines);
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
  let placements = sorted ? yield* sortSteps(all, byName) : all;
  let kept: { p: Placement; u: EngineUnit }[] = [];
  for (;;) {
    let restart = false;
    let n = 0;
    for (const p of placements) {
      if (++n % STEP === 0) yield;
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
    placements = yield* sortSteps(all, byName);
    state = yield* stateFor(units, machines);
    unschedule.length = 0;
    kept = [];
  }

  // 2. entries that can no longer run where they are (to a fixpoint: followers go with peers)
  let n = 0;
  let alive = kept;
  for (let changed = !state.everyPlacementStays(); changed; ) {
    changed = false;
    const next: typeof kept = [];
    for (const k of alive) {
      if (++n % STEP === 0) yield;
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
  n = 0;
  for (const { p, u } of alive) {
    if (++n % (STEP * 8) === 0) yield;
    if (p.desiredState !== u.desiredState || p.hash !== u.hash) {
      const why = p.hash !== u.hash ? "unit file changed" : `desired state is now ${u.desiredState}`;
      updates.push({ type: "update", unit: p.unit, machineId: p.machineId, reason: why });
    }
  }

  // 4. placement
  const queue: EngineUnit[] = [];
  n = 0;
  for (const u of units.values()) {
    if (++n % (STEP * 8) === 0) yield;
    if (u.fleet.global || u.desiredState === "inactive" || state.machineOf(u.name) !== undefined) continue;
    queue.push(u);
  }
  yield* sortSteps(queue, placementOrder);
  const notPlaced = new Map<string, string>();
  const refusals = new Map<string, Refusal[]>();
  const evictedOnce = new Set<string>();
  for (let i = 0; i < queue.length; i++) {
    if (i % 8 === 0) yield;
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

  return { actions: [...(yield* sortSteps(unschedule, byName)), ...updates, ...schedule, ...reasons], state };
}

/** The order units are placed in: MachineOf followers after the others, each by name. */
export function placementOrder(a: EngineUnit, b: EngineUnit): number {
  const fa = a.fleet.machineOf.length > 0 ? 1 : 0;
  const fb = b.fleet.machineOf.length > 0 ? 1 : 0;
  return fa - fb || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

function dropFor(actions: Action[], unit: string): void {
  for (let i = actions.length - 1; i >= 0; i--) if (actions[i]!.unit === unit) actions.splice(i, 1);
}

export function placementReason(u: EngineUnit, state: ClusterState, machineId: string): string {
  if (u.fleet.machineId !== undefined) return `MachineID=${u.fleet.machineId}`;
  if (u.fleet.machineOf.length) return `MachineOf=${u.fleet.machineOf.join(",")}`;
  return `least loaded (${state.load(machineId) - 1} units before)`;
}
