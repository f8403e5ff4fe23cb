// Incremental rounds (issue 10): a burst of constrained units without a pass over the whole
// cluster each round. The full pass (reconciler.ts) leaves its picture of the cluster behind
// (ClusterState: where each unit sits, the glob indexes, the per-machine heaps and sums). When
// that round's writes all landed, nothing is left unplaced, the live machines are the same and
// the only news is units first seen (or units that went from inactive to loaded/launched, which
// are placed nowhere), a full pass would keep every placement as it is (nothing placed
// conflicts with a unit that is not placed yet) and place the new units in placement order on
// that same picture. This does exactly that, on the kept picture, in O(new units) per round.
//
// Whatever such a round cannot decide the same way without the whole cluster, it leaves to the
// full pass (returns undefined, and the picture is dropped): a global unit (it changes what may
// stay where), an invalid one, one with Replaces (it evicts), a unit that fits nowhere (the
// explanation names units in the full pass's order), another record of one already placed. (The
// very unit the last full pass placed, which came while that round ran, is kept where it is, as
// the full pass keeps it.) The full pass also stays the periodic safety net.
// test/unit/incremental.test.ts compares the two on random clusters.
import type { Action, EngineUnit } from "./model.js";
import { placementReason, sortSteps } from "./reconciler.js";
import { byString } from "../util/sorted.js";
import type { ClusterState } from "./scheduler.js";
import { runToEnd, Slicer } from "./slicer.js";

export interface IncrementalInput {
  /** The picture the last full pass (and the incremental rounds since) left; changed in place. */
  state: ClusterState;
  /** Units first seen (or made active) since the last round, in arrival order; may repeat. */
  fresh: readonly string[];
  /** The units as the views hold them now. */
  units: ReadonlyMap<string, EngineUnit>;
}

/** What reconcile() would decide for `fresh`, or undefined: take the full pass (the state is then spoiled). */
export function placeIncrementally(i: IncrementalInput): Action[] | undefined {
  return runToEnd(incrementalSteps(i));
}

/** placeIncrementally(), in slices that give the event loop a turn (slicer.ts). */
export function placeIncrementallySliced(i: IncrementalInput, slicer = new Slicer()): Promise<Action[] | undefined> {
  return slicer.run(incrementalSteps(i));
}

function* incrementalSteps(i: IncrementalInput): Generator<void, Action[] | undefined, void> {
  const { state } = i;
  const queue: EngineUnit[] = [];
  const added: string[] = [];
  /** Of the added, those in the queue. */
  let queued = 0;
  let n = 0;
  for (const name of i.fresh) {
    if (++n % 16 === 0) yield;
    const u = i.units.get(name);
    // Gone again: its delete called for a full pass already.
    if (u === undefined) continue;
    const known = state.units.get(name);
    // Taken in already: named twice in `fresh`, or the last full pass saw this very unit (it
    // came while that round ran) and kept it where it put it, as a full pass would now.
    if (known === u) continue;
    // Reading fleet parses the file (once, 30-50 µs): that is why this loop yields.
    if (u.invalid || u.fleet.global || u.fleet.replaces.length || state.machineOf(name) !== undefined) return undefined;
    if (known === undefined) {
      state.addUnit(u);
      added.push(name);
      if (u.desiredState !== "inactive") queued++;
    } else if (known !== u) {
      // Made active: the same file is indexed already; a new file may have new relations.
      if (known.hash !== u.hash) return undefined;
      state.setUnit(u);
    }
    if (u.desiredState !== "inactive") queue.push(u);
  }
  // One sort of names serves both orders: the name index takes the new names sorted, and
  // placement order (placementOrder) is the followers after the others, each by name.
  // Each unit is queued once (taken in once, above).
  const names = yield* sortSteps(
    queue.map((u) => u.name),
    byString,
  );
  if (state.needsNames()) state.useSortedNames(yield* sortSteps([...state.units.keys()], byString));
  else if (queued === added.length) {
    // Every new unit is queued: its names are among the sorted ones.
    const isAdded = added.length === names.length ? undefined : new Set(added);
    yield* state.addNamesSteps(isAdded ? names.filter((x) => isAdded.has(x)) : names);
  } else yield* state.addNamesSteps(yield* sortSteps(added, byString));
  const byName = names.map((x) => i.units.get(x)!);
  let o = 0;
  for (const u of byName) if (u.fleet.machineOf.length === 0) queue[o++] = u;
  for (const u of byName) if (u.fleet.machineOf.length > 0) queue[o++] = u;
  const actions: Action[] = [];
  for (let k = 0; k < queue.length; k++) {
    if (k % 8 === 7) yield;
    const u = queue[k]!;
    const d = state.decide(u);
    if (!d.ok || d.evicts.length) return undefined;
    state.place(u, d.machineId);
    actions.push({ type: "schedule", unit: u.name, machineId: d.machineId, reason: placementReason(u, state, d.machineId) });
  }
  return actions;
}
