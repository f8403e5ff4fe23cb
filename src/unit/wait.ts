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
  const log = o.log ?? silentLogger;
  const kv = states.kv;
  const held = new Map<string, Held>();
  const filter = keys.statesOfUnit(unit);

  const decodeEntry = (key: string, op: string, value: Uint8Array, revision: number): [string, Held] | undefined => {
    const parsed = keys.parseState(key);
    if (!parsed || parsed.unit !== unit) return undefined;
    if (op !== "PUT") return [parsed.machineId, { revision }];
    try {
      return [parsed.machineId, { revision, record: decodeAs(UnitStateRecord, value, `states/${key}`) }];
    } catch (e) {
      log.warn({ unit, key, err: describeError(e) }, "skipping a unit state that does not decode");
      return [parsed.machineId, { revision }];
    }
  };
  const merge = (machineId: string, h: Held): void => {
    const cur = held.get(machineId);
    if (!cur || h.revision > cur.revision) held.set(machineId, h);
  };
  const current = (): UnitStates => {
    const m: UnitStates = new Map();
    for (const [id, h] of held) if (h.record) m.set(id, h.record);
    return m;
  };
  const snapshot = async (): Promise<void> => {
    const before = (await kv.status()).streamInfo.state.last_seq;
    const listed = new Set<string>();
    for (const k of await listKeys(states.nc, states.name, filter)) listed.add(k);
    const entries = await getMany(kv, [...listed]);
    const seen = new Set<string>();
    for (const e of entries) {
      if (!e) continue;
      const d = decodeEntry(e.key, e.operation, e.value, e.revision);
      if (!d) continue;
      seen.add(d[0]);
      merge(d[0], d[1]);
    }
    // Gone from the bucket without a marker (TTL expiry on 2.9) unless written after we looked.
    for (const [id, h] of held) if (!seen.has(id) && h.revision <= before) held.delete(id);
  };

  const watcher = await kv.watch({ key: filter, include: "updates" });
  let dirty = false;
  let resolveWake: () => void = () => undefined;
  const wake = (): void => {
    dirty = true;
    resolveWake();
  };
  const check = (): boolean => {
    const s = current();
    o.onChange?.(s);
    return reached(s);
  };

  try {
    (async () => {
      for await (const e of watcher) {
        const d = decodeEntry(e.key, e.operation, e.value, e.revision);
        if (d) merge(d[0], d[1]);
        wake();
      }
    })().catch((e: unknown) => log.warn({ unit, err: describeError(e) }, "states watch ended"));

    await snapshot();
    dirty = false;
    if (check()) return { ok: true, states: current() };

    const deadline = o.timeoutMs > 0 && Number.isFinite(o.timeoutMs) ? Date.now() + o.timeoutMs : Infinity;
    const resyncMs = o.resyncMs ?? 2000;
    let nextResync = Date.now() + resyncMs;
    for (;;) {
      if (!dirty) {
        const now = Date.now();
        if (now >= deadline || o.signal?.aborted) return { ok: false, states: current() };
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
      if (Date.now() >= nextResync) {
        // Bounded: a slow resync must not carry the wait past its deadline.
        const left = Math.max(0, Math.min(deadline - Date.now(), resyncMs));
        await Promise.race([snapshot(), new Promise((r) => setTimeout(r, left).unref?.())]).catch((e: unknown) =>
          log.debug({ err: describeError(e) }, "states resync failed"),
        );
        nextResync = Date.now() + resyncMs;
      }
      if (check()) return { ok: true, states: current() };
      if (Date.now() >= deadline || o.signal?.aborted) return { ok: false, states: current() };
    }
  } finally {
    watcher.stop();
  }
}
