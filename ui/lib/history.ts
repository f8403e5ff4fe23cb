// The page's memory of inspection: every message seen (from the stream's replay, the stream's
// last-per-subject read, the live subscription or a recording), filed per actor and in order,
// without duplicates (the same step arrives by several of those paths). From it: each actor's
// current state, its state at any past moment (the timeline), and the cluster's history.
import { actorKey, type InspectMessage } from "./types.js";

export interface ActorHistory {
  key: string;
  machineId: string;
  actor: string;
  id: string;
  unit?: string;
  /** Ordered by time, then session, then seq. */
  msgs: InspectMessage[];
}

export interface History {
  actors: Map<string, ActorHistory>;
  seen: Set<string>;
  first: number;
  last: number;
  count: number;
  /** Bumped on every change: the views redraw on it. */
  version: number;
}

/** Per actor, at most this many steps are kept (oldest dropped first). */
export const MAX_PER_ACTOR = 5000;

export function emptyHistory(): History {
  return { actors: new Map(), seen: new Set(), first: Infinity, last: -Infinity, count: 0, version: 0 };
}

function stepKey(m: InspectMessage): string {
  return `${m.machineId}/${m.id}/${m.session}/${m.seq}`;
}

function before(a: InspectMessage, b: InspectMessage): boolean {
  if (a.at !== b.at) return a.at < b.at;
  if (a.session === b.session) return a.seq < b.seq;
  return a.session < b.session;
}

/** Adds one step; false when it was already there. */
export function addMessage(h: History, m: InspectMessage): boolean {
  const sk = stepKey(m);
  if (h.seen.has(sk)) return false;
  h.seen.add(sk);
  const key = actorKey(m);
  let a = h.actors.get(key);
  if (!a) {
    a = { key, machineId: m.machineId, actor: m.actor, id: m.id, unit: m.unit, msgs: [] };
    h.actors.set(key, a);
  }
  // Almost always appended at the end; insert in order otherwise (a replay after live steps).
  let i = a.msgs.length;
  while (i > 0 && before(m, a.msgs[i - 1]!)) i--;
  a.msgs.splice(i, 0, m);
  if (a.msgs.length > MAX_PER_ACTOR) {
    const dropped = a.msgs.splice(0, a.msgs.length - MAX_PER_ACTOR);
    for (const d of dropped) h.seen.delete(stepKey(d));
    h.count -= dropped.length;
  }
  h.count++;
  if (m.at < h.first) h.first = m.at;
  if (m.at > h.last) h.last = m.at;
  h.version++;
  return true;
}

export function addAll(h: History, ms: Iterable<InspectMessage>): number {
  let n = 0;
  for (const m of ms) if (addMessage(h, m)) n++;
  return n;
}

/** The actor's last step at or before t (undefined: it had not started yet). */
export function stateAt(a: ActorHistory, t: number): InspectMessage | undefined {
  let lo = 0;
  let hi = a.msgs.length - 1;
  let found: InspectMessage | undefined;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (a.msgs[mid]!.at <= t) {
      found = a.msgs[mid];
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

export function latest(a: ActorHistory): InspectMessage | undefined {
  return a.msgs[a.msgs.length - 1];
}

/** Every actor's step at time t (undefined t: now); actors not yet started at t are left out. */
export function snapshotAt(h: History, t?: number): Map<string, InspectMessage> {
  const out = new Map<string, InspectMessage>();
  for (const [k, a] of h.actors) {
    const m = t === undefined ? latest(a) : stateAt(a, t);
    if (m) out.set(k, m);
  }
  return out;
}

/** All steps of the cluster in time order (for a recording, and the timeline's ticks). */
export function allSteps(h: History): InspectMessage[] {
  const out: InspectMessage[] = [];
  for (const a of h.actors.values()) out.push(...a.msgs);
  return out.sort((x, y) => (before(x, y) ? -1 : before(y, x) ? 1 : 0));
}

export interface LeaseChange {
  at: number;
  machineId: string;
  /** "became leader" / "lost the lease" */
  what: string;
  epoch?: number;
}

/**
 * The engine lease's history: when which machine's lease actor entered or left its leader
 * state, from the lease actors' steps (value "leader" or {"leader": ...}).
 */
export function leaseHistory(h: History): { leader?: string; epoch?: number; changes: LeaseChange[] } {
  const changes: LeaseChange[] = [];
  let leader: string | undefined;
  let leaderAt = -Infinity;
  let epoch: number | undefined;
  for (const a of h.actors.values()) {
    if (a.actor !== "lease") continue;
    let was = false;
    for (const m of a.msgs) {
      const is = isLeaderValue(m.value) && m.status === "active";
      const ep = epochOf(m.context);
      if (is && !was) changes.push({ at: m.at, machineId: a.machineId, what: "became leader", epoch: ep });
      if (!is && was) changes.push({ at: m.at, machineId: a.machineId, what: "left the lease" });
      was = is;
    }
    const last = latest(a);
    if (last && was && last.at > leaderAt) {
      leader = a.machineId;
      leaderAt = last.at;
      epoch = epochOf(last.context);
    }
  }
  changes.sort((x, y) => x.at - y.at);
  return { leader, epoch, changes };
}

function isLeaderValue(v: unknown): boolean {
  if (v === "leader") return true;
  return typeof v === "object" && v !== null && "leader" in v;
}

function epochOf(ctx: unknown): number | undefined {
  const e = (ctx as { epoch?: unknown } | undefined)?.epoch;
  return typeof e === "number" ? e : undefined;
}

/** Steps per time bin over [first, last] (the timeline's density strip): n bins, oldest first. */
export function density(h: History, n: number): number[] {
  const bins = new Array<number>(Math.max(1, n)).fill(0);
  if (!Number.isFinite(h.first) || h.last <= h.first) {
    if (h.count > 0) bins[bins.length - 1] = h.count;
    return bins;
  }
  const span = h.last - h.first;
  for (const a of h.actors.values()) {
    for (const m of a.msgs) bins[Math.min(bins.length - 1, Math.floor(((m.at - h.first) / span) * bins.length))]!++;
  }
  return bins;
}
