// The common case of a burst without a pass over the whole cluster. When every unit the leader
// knows is plain (no [X-Fleet] section: nothing constrains where it runs or what runs beside
// it), every one of them is placed, the live machines are the ones of the last round, and the
// only news is new plain units, then reconcile() would decide exactly this: place the new units,
// in name order, each on the least loaded active machine (ties by machine ID). This does that
// from the per-machine counts the views keep, in O(new units × log machines) instead of
// O(all units) per round: a 10,000-unit burst takes 4-8 rounds, and each full pass costs
// 10-50 ms. The engine checks the conditions (engine.ts, round); test/unit/fast-path.test.ts
// compares the two on random clusters.
import type { Action, EngineMachine, EngineUnit } from "./model.js";
import { NO_FLEET_OPTIONS } from "./model.js";
import { sortSteps } from "./reconciler.js";
import { byString } from "../util/sorted.js";
import { cmp, siftDown } from "./scheduler.js";
import { runToEnd, Slicer } from "./slicer.js";

export interface FreshInput {
  /** Units first seen or made active since the last round, in arrival order (only the plain, active ones are placed here). */
  fresh: readonly string[];
  units: ReadonlyMap<string, EngineUnit>;
  /** Placements per machine. */
  loads: ReadonlyMap<string, number>;
  /** The live machines. */
  machines: ReadonlyMap<string, EngineMachine>;
}

/** What reconcile() decides for `fresh` under the conditions above; undefined: take the full pass. */
export function placeFresh(i: FreshInput): Action[] | undefined {
  return runToEnd(placeFreshSteps(i));
}

/**
 * placeFresh(), the same actions, in slices that give the event loop a turn (slicer.ts): a
 * round of 50,000 fresh units costs 100 ms and more. The units may change meanwhile (the
 * views follow the watches): each is judged as it is when its turn comes, as the writer
 * reads it when it writes.
 */
export function placeFreshSliced(i: FreshInput, slicer = new Slicer()): Promise<Action[] | undefined> {
  return slicer.run(placeFreshSteps(i));
}

function* placeFreshSteps(i: FreshInput): Generator<void, Action[] | undefined, void> {
  const seen = new Set<string>();
  const names: string[] = [];
  let n = 0;
  for (const name of i.fresh) {
    if (++n % 256 === 0) yield;
    if (seen.has(name)) continue;
    seen.add(name);
    const u = i.units.get(name);
    if (u !== undefined && u.fleet === NO_FLEET_OPTIONS && !u.invalid && u.desiredState !== "inactive") names.push(name);
  }
  yield* sortSteps(names, byString);
  const heap: [number, string][] = [];
  for (const m of i.machines.values()) if (m.availability === "active") heap.push([i.loads.get(m.id) ?? 0, m.id]);
  // No machine takes new units: the full pass says why, unit by unit.
  if (names.length && !heap.length) return undefined;
  heap.sort(cmp);
  const actions = new Array<Action>(names.length);
  for (let k = 0; k < names.length; k++) {
    if (k % 128 === 127) yield;
    const top = heap[0]!;
    actions[k] = { type: "schedule", unit: names[k]!, machineId: top[1], reason: `least loaded (${top[0]} units before)` };
    top[0]++;
    siftDown(heap, 0);
  }
  return actions;
}

/** The live machines and their availability, as one string: equal strings, same machines. */
export function machinesSignature(machines: ReadonlyMap<string, EngineMachine>): string {
  let s = "";
  for (const m of machines.values()) s += `${m.id}:${m.availability};`;
  return s;
}
