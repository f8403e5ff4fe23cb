// Waiting until the cluster reports a unit in some state: a KV watch on the states bucket
// filtered to one unit (`<unit>.*`), not a poll. The watch starts first, then one snapshot
// fills in what already exists; entries are merged by revision, so nothing between the two is
// lost. nats-server 2.9 removes TTL-expired keys without telling watchers, so a slow resync
// (every resyncMs) drops states that vanished that way: waits for "gone" still end.
import { listKeys, type BucketRef } from "../nats/kv-keys.js";
import type { Logger } from "pino";
import { decodeAs } from "../protocol/codec.js";
import { describeError } from "../protocol/errors.js";
import { UnitStateRecord, taskStateRank, type TaskState } from "../protocol/messages.js";
import { keys } from "../protocol/names.js";
import { silentLogger } from "../log.js";
import { getMany } from "./store.js";

/** Every machine's current state of one unit. */
export type UnitStates = Map<string, UnitStateRecord>;

export type WaitGoal = "loaded" | "launched" | "stopped" | "gone";

/** Task states that count as "not there any more" for unload/destroy. */
const GONE: readonly TaskState[] = ["remove", "orphaned"];
const NOT_RUNNING: readonly TaskState[] = ["complete", "shutdown", "failed", "rejected", "remove", "orphaned"];

/** Is the unit where the verb wants it? (start: running; load: ready or later; stop: nothing running; unload/destroy: no states). */
export function goalReached(goal: WaitGoal, states: UnitStates): boolean {
  const all = [...states.values()];
  switch (goal) {
    case "launched":
      return all.some((s) => s.taskState === "running");
    case "loaded":
      return all.some((s) => taskStateRank(s.taskState) >= taskStateRank("ready"));
    case "stopped":
      return all.every((s) => taskStateRank(s.taskState) < taskStateRank("starting") || NOT_RUNNING.includes(s.taskState));
    case "gone":
      return all.every((s) => GONE.includes(s.taskState));
  }
}

/** One line on where a unit is now, for progress and timeout messages. */
export function describeStates(states: UnitStates): string {
  if (states.size === 0) return "no machine reports it";
  return [...states.values()]
    .sort((a, b) => a.machineId.localeCompare(b.machineId))
    .map((s) => {
      let t = `${s.machineId}: ${s.taskState} (${s.active}/${s.sub})`;
      if (s.exitCode !== undefined) t += ` exit code ${s.exitCode}`;
      if (s.error) t += `: ${s.error}`;
      return t;
    })
    .join("; ");
}

export interface WaitOptions {
  /** 0 or Infinity: wait forever. */
  timeoutMs: number;
  log?: Logger;
  resyncMs?: number;
  signal?: AbortSignal;
  /** Called on every change (for progress output). */
  onChange?: (states: UnitStates) => void;
}

interface Held {
  revision: number;
  record?: UnitStateRecord;
}

/**
 * Resolves when `reached(states)` holds for the unit, or when the timeout passes;
 * `ok` says which, `states` is the last thing seen.
 */
export async function waitForUnit(
  states: BucketRef,
  unit: string,
  reached: (states: UnitStates) => boolean,
  o: WaitOptions,
): Promise<{ ok: boolean; states: UnitStates }> {
  return (await waitForUnits(states, [unit], (_, s) => reached(s), o)).get(unit)!;
}

/** Above this many units (and with machineIds), the snapshot gets each unit × machine key directly instead of listing each unit's keys. */
const FEW_UNITS = 8;

export interface WaitManyOptions extends WaitOptions {
  /**
   * The machine IDs to look up each unit's states under, for the snapshot of many units (direct
   * gets of unit × machine instead of one key listing per unit). Without it, each unit's keys
   * are listed.
   */
  machineIds?: () => Promise<string[]>;
}

/**
 * waitForUnit for many units at once: one KV watch (the unit's own keys for one unit, the whole
 * states bucket for more) and one snapshot, entries merged by revision. A
 * `flotilla load` of 1,000 units used to open 1,000 watches and list 1,000 key sets: thousands
 * of JetStream requests and consumers for one command. Each unit is done when `reached` holds
 * for it; all are done at the timeout.
 */
export async function waitForUnits(
  states: BucketRef,
  units: string[],
  reached: (unit: string, states: UnitStates) => boolean,
  o: WaitManyOptions,
): Promise<Map<string, { ok: boolean; states: UnitStates }>> {
  const log = o.log ?? silentLogger;
  const kv = states.kv;
  const wanted = new Set(units);
  /** unit -> machineId -> the latest entry seen. */
  const held = new Map<string, Map<string, Held>>();
  for (const u of wanted) held.set(u, new Map());
  const results = new Map<string, { ok: boolean; states: UnitStates }>();
  const pending = new Set(wanted);
  /** Units with news since they were last checked. */
  const touched = new Set<string>();
  const one = wanted.size === 1 ? units[0]! : undefined;
  const filter = one !== undefined ? keys.statesOfUnit(one) : ">";

  const decodeEntry = (key: string, op: string, value: Uint8Array, revision: number): [string, string, Held] | undefined => {
    const parsed = keys.parseState(key);
    if (!parsed || !wanted.has(parsed.unit)) return undefined;
    if (op !== "PUT") return [parsed.unit, parsed.machineId, { revision }];
    try {
      return [parsed.unit, parsed.machineId, { revision, record: decodeAs(UnitStateRecord, value, `states/${key}`) }];
    } catch (e) {
      log.warn({ unit: parsed.unit, key, err: describeError(e) }, "skipping a unit state that does not decode");
      return [parsed.unit, parsed.machineId, { revision }];
    }
  };
  const merge = (d: [string, string, Held]): void => {
    const [unit, machineId, h] = d;
    const per = held.get(unit)!;
    const cur = per.get(machineId);
    if (!cur || h.revision > cur.revision) {
      per.set(machineId, h);
      touched.add(unit);
    }
  };
  const current = (unit: string): UnitStates => {
    const m: UnitStates = new Map();
    for (const [id, h] of held.get(unit)!) if (h.record) m.set(id, h.record);
    return m;
  };
  const snapshot = async (): Promise<void> => {
    const before = (await kv.status()).streamInfo.state.last_seq;
    const names =
      wanted.size > FEW_UNITS && o.machineIds
        ? await o.machineIds().then((ids) => [...pending].flatMap((u) => ids.map((id) => keys.state(u, id))))
        : (await Promise.all([...pending].map((u) => listKeys(states.nc, states.name, keys.statesOfUnit(u))))).flat();
    const seen = new Set<string>();
    for (const e of await getMany(kv, names)) {
      if (!e) continue;
      const d = decodeEntry(e.key, e.operation, e.value, e.revision);
      if (!d) continue;
      seen.add(`${d[0]}\u0000${d[1]}`);
      merge(d);
    }
    // Gone from the bucket without a marker (TTL expiry on 2.9) unless written after we looked.
    for (const u of pending) {
      for (const [id, h] of held.get(u)!) {
        if (!seen.has(`${u}\u0000${id}`) && h.revision <= before) {
          held.get(u)!.delete(id);
          touched.add(u);
        }
      }
    }
  };

  const watcher = await kv.watch({ key: filter, include: "updates" });
  let dirty = false;
  let resolveWake: () => void = () => undefined;
  const wake = (): void => {
    dirty = true;
    resolveWake();
  };
  const finish = (unit: string, ok: boolean): void => {
    const r = { ok, states: current(unit) };
    results.set(unit, r);
    pending.delete(unit);
  };
  /** Checks the units with news (all of them: every); true when none is left waiting. */
  const check = (every = false): boolean => {
    for (const u of every ? [...pending] : [...touched]) {
      if (!pending.has(u)) continue;
      const s = current(u);
      if (one !== undefined) o.onChange?.(s);
      if (reached(u, s)) finish(u, true);
    }
    touched.clear();
    return pending.size === 0;
  };

  try {
    (async () => {
      for await (const e of watcher) {
        const d = decodeEntry(e.key, e.operation, e.value, e.revision);
        if (!d) continue;
        merge(d);
        wake();
      }
    })().catch((e: unknown) => log.warn({ units: units.length, err: describeError(e) }, "states watch ended"));

    await snapshot();
    dirty = false;
    if (check(true)) return results;

    const deadline = o.timeoutMs > 0 && Number.isFinite(o.timeoutMs) ? Date.now() + o.timeoutMs : Infinity;
    const resyncMs = o.resyncMs ?? 2000;
    let nextResync = Date.now() + resyncMs;
    for (;;) {
      if (!dirty) {
        const now = Date.now();
        if (now >= deadline || o.signal?.aborted) break;
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, Math.max(0, Math.min(deadline - now, nextResync - now)));
          resolveWake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        resolveWake = () => undefined;
      }
      dirty = false;
      let every = false;
      if (Date.now() >= nextResync) {
        // Bounded: a slow resync must not carry the wait past its deadline.
        const left = Math.max(0, Math.min(deadline - Date.now(), resyncMs));
        await Promise.race([snapshot(), new Promise((r) => setTimeout(r, left).unref?.())]).catch((e: unknown) =>
          log.debug({ err: describeError(e) }, "states resync failed"),
        );
        nextResync = Date.now() + resyncMs;
        every = true;
      }
      if (check(every)) return results;
      if (Date.now() >= deadline || o.signal?.aborted) break;
    }
    for (const u of [...pending]) finish(u, false);
    return results;
  } finally {
    watcher.stop();
  }
}
