// The page's state (Preact signals) and the loops that fill it: the connection, the cluster's
// listings (every page of each; machines and unit files listed again every few seconds, the
// units' rows followed by watch-units), inspection (history.ts), statechart definitions by hash.
import { signal, computed, batch } from "@preact/signals";
import type { NatsConnection } from "@nats-io/nats-core";
import { addAll, addMessage, allSteps, emptyHistory, type History } from "../lib/history.js";
import { connectProblem, requestProblem, type Probe, type Problem } from "../lib/errors.js";
import { parseNdjson, toNdjson } from "../lib/recording.js";
import type { InspectMessage, Statechart } from "../lib/types.js";
import { layoutFor } from "./layout.js";
import { reservationOf, usedByMachine, type Reservation } from "../lib/reservations.js";
import { listAll, UnitsFollower, type Call } from "../lib/listing.js";
import {
  ApiError,
  api,
  connectWs,
  fetchStatecharts,
  isAuthError,
  NoStreamError,
  readInspectStream,
  subscribeInspect,
  type Config,
  type Credentials,
} from "./client.js";

export interface MachineRecord {
  id: string;
  hostname: string;
  publicIp: string;
  metadata: Record<string, string>;
  capacity: { cpu: number; memory: number };
  availability: string;
  version: string;
  startedAt: number;
  heartbeatAt: number;
}

export interface UnitFileRow {
  unit: string;
  hash: string;
  desiredState: string;
  currentState: string;
  target: string | null;
  machines: string[];
  unplaced: string | null;
  global: boolean;
  description: string;
}

export interface UnitRow {
  unit: string;
  machine: string;
  load: string;
  active: string;
  sub: string;
  taskState: string;
  pid: number | null;
  exitCode: number | null;
  restarts: number;
  since: number;
  error: string | null;
}

export type ConnState = "idle" | "connecting" | "connected" | "reconnecting" | "failed" | "signin" | "recording";

export const config = signal<Config | null>(null);
export const conn = signal<{ state: ConnState; problem?: Problem; retryAt?: number }>({ state: "idle" });
export const machines = signal<MachineRecord[]>([]);
export const unitFiles = signal<UnitFileRow[]>([]);
export const unitRows = signal<UnitRow[]>([]);
export const statuses = signal<Map<string, unknown>>(new Map());
export const listingProblem = signal<Problem | null>(null);
/** CPU=/Memory= of each unit file, by hash (read once with `cat`). */
export const reservations = signal<Map<string, Reservation>>(new Map());
export const listedAt = signal(0);
export const streamNote = signal<string | null>(null);
export const historyLoaded = signal<"no" | "current" | "all">("no");
export const recordingName = signal<string | null>(null);

/** Definitions by hash, and the hash of each actor kind the API named. */
export const charts = signal<Map<string, Statechart>>(new Map());
export const unknownHashes = signal<Map<string, string>>(new Map());

export const history: History = emptyHistory();
export const historyVersion = signal(0);

/** The timeline's moment; null: live. */
export const timeAt = signal<number | null>(null);
export const now = signal(Date.now());
setInterval(() => (now.value = Date.now()), 1000);

export const nc = { current: null as NatsConnection | null };

// NATS credentials when the server has users (flotilla up turns auth on): kept for this tab only.
const CREDS_KEY = "flotilla.credentials";
function loadCreds(): Credentials | null {
  try {
    const j = JSON.parse(sessionStorage.getItem(CREDS_KEY) ?? "null") as Credentials | null;
    return j && typeof j.user === "string" && typeof j.pass === "string" ? j : null;
  } catch {
    return null;
  }
}
export const credentials = signal<Credentials | null>(loadCreds());
export function signIn(c: Credentials | null): void {
  if (c) sessionStorage.setItem(CREDS_KEY, JSON.stringify(c));
  else sessionStorage.removeItem(CREDS_KEY);
  credentials.value = c;
  const old = nc.current;
  nc.current = null;
  void old?.close().catch(() => undefined);
  void start();
}
let stopLive: (() => void) | null = null;

// Redraw at most once per frame however many steps arrive.
let redraw = 0;
function bump(): void {
  if (redraw) return;
  redraw = requestAnimationFrame(() => {
    redraw = 0;
    historyVersion.value = history.version;
  });
}

function take(ms: InspectMessage[]): void {
  if (addAll(history, ms)) bump();
  for (const m of ms) wantHash(m);
}

const asked = new Set<string>();
function wantHash(m: InspectMessage): void {
  if (!m.defHash || charts.peek().has(m.defHash) || asked.has(m.defHash)) return;
  asked.add(m.defHash);
  void loadHash(m.defHash, m);
}

/** An unseen definition hash: ask the API for it (a daemon of another version may describe it). */
export async function loadHash(hash: string, m?: InspectMessage): Promise<void> {
  const c = nc.current;
  if (!c || !config.value) return;
  try {
    const got = await fetchStatecharts(c, config.value.prefix, { hash });
    addCharts(got);
    const u = new Map(unknownHashes.peek());
    u.delete(hash);
    unknownHashes.value = u;
  } catch (e) {
    const u = new Map(unknownHashes.peek());
    u.set(
      hash,
      e instanceof ApiError && e.code === "unknown_actor"
        ? `No daemon answering here describes definition ${hash}${m ? ` (the ${m.actor} actor of machine ${m.machineId.slice(0, 8)})` : ""}: that daemon runs another version`
        : requestProblem(config.value.prefix, "statecharts", e as Error).detail,
    );
    unknownHashes.value = u;
  }
}

/** "Fetch statecharts again": forget failures and ask for every hash seen. */
export function refetchCharts(): void {
  asked.clear();
  unknownHashes.value = new Map();
  void (async () => {
    const c = nc.current;
    if (c && config.value) addCharts(await fetchStatecharts(c, config.value.prefix).catch(() => []));
    for (const a of history.actors.values()) for (const m of a.msgs) wantHash(m);
  })();
}

function addCharts(list: Statechart[]): void {
  if (!list.length) return;
  const next = new Map(charts.peek());
  for (const s of list) next.set(s.hash, s);
  charts.value = next;
  // Lay every chart out ahead (the worker takes a second or so for the larger ones), the one on screen first.
  const shown = decodeURIComponent(location.hash).split("/").slice(-1)[0] ?? "";
  const order = [...list].sort((a, b) => Number(shown.includes(b.actor)) - Number(shown.includes(a.actor)));
  for (const s of order) void layoutFor(s).catch(() => undefined);
}

export async function probe(): Promise<Probe | null> {
  try {
    const r = await fetch("/probe.json", { cache: "no-store" });
    return (await r.json()) as Probe;
  } catch {
    return null;
  }
}

let retryTimer = 0;
export async function start(): Promise<void> {
  clearTimeout(retryTimer);
  if (!config.value) {
    const r = await fetch("/config.json", { cache: "no-store" });
    config.value = (await r.json()) as Config;
  }
  const cfg = config.value!;
  conn.value = { state: "connecting" };
  let c: NatsConnection;
  try {
    c = await connectWs(cfg, credentials.peek());
  } catch (e) {
    if (isAuthError(e)) {
      const had = credentials.peek();
      conn.value = {
        state: "signin",
        problem: {
          title: had ? `NATS refused the user ${had.user}` : "NATS asks for a user and password",
          detail: had
            ? `${(e as Error).message}. Check the user and password.`
            : `nats-server at ${cfg.wsUrl} has users. Sign in as the operator (everything, actions too) or a viewer (look only). flotilla up writes the operator's user and password to <data-dir>/auth/operator.env (NATS_USER, NATS_PASSWORD).`,
        },
      };
      return;
    }
    const p = await probe();
    const retryAt = Date.now() + 5000;
    conn.value = { state: "failed", problem: connectProblem(cfg.wsUrl, (e as Error).message || String(e), p), retryAt };
    retryTimer = window.setTimeout(() => void start(), 5000);
    return;
  }
  if (recordingName.peek()) {
    await c.close();
    return;
  }
  nc.current = c;
  // A new connection: the units are listed again on it, and followed from there.
  follower.stop();
  conn.value = { state: "connected" };
  void (async () => {
    for await (const s of c.status()) {
      if (s.type === "disconnect" || s.type === "reconnecting") conn.value = { state: "reconnecting" };
      else if (s.type === "reconnect") {
        conn.value = { state: "connected" };
        void loadInspection(c, cfg.prefix, "last");
      }
    }
  })();
  void c.closed().then(() => {
    if (nc.current === c) {
      nc.current = null;
      if (!recordingName.peek()) conn.value = { state: "failed", problem: { title: "The NATS connection closed", detail: cfg.wsUrl } };
    }
  });
  stopLive = subscribeInspect(c, cfg.prefix, (m) => {
    if (addMessage(history, m)) bump();
    wantHash(m);
  });
  fetchStatecharts(c, cfg.prefix)
    .then(addCharts)
    .catch((e) => (streamNote.value = requestProblem(cfg.prefix, "statecharts", e).title));
  await loadInspection(c, cfg.prefix, "last");
  historyLoaded.value = "current";
  void poll();
  await loadInspection(c, cfg.prefix, "all");
  historyLoaded.value = "all";
}

async function loadInspection(c: NatsConnection, prefix: string, mode: "last" | "all"): Promise<void> {
  try {
    await readInspectStream(c, prefix, mode, take);
    streamNote.value = null;
  } catch (e) {
    streamNote.value =
      e instanceof NoStreamError
        ? `There is no inspect stream ${prefix}-inspect yet (no daemon of this cluster has started, or they are older than inspection v2): only live steps are shown.`
        : `Reading the inspect stream failed: ${(e as Error).message}`;
  }
}

/** API requests on the page's connection now. */
const call: Call = (verb, body, timeout) => {
  const c = nc.current;
  const cfg = config.value;
  if (!c || !cfg) return Promise.reject(new Error("not connected"));
  return api(c, cfg.prefix, verb, body, timeout);
};

/** The units' rows: listed once, then followed by watch-units (listed again only when the daemon says so, or a watch failed). */
const follower = new UnitsFollower<UnitRow>(call, {
  rows: (r) => (unitRows.value = r),
  problem: (verb, e) => {
    if (config.value) listingProblem.value = requestProblem(config.value.prefix, verb, e);
  },
  live: () => nc.current !== null && !recordingName.peek(),
});

let polling = false;
/** How long the last refresh took: the next one waits at least a few times that (a big cluster's unit files take a while). */
let refreshMs = 0;
export async function refresh(): Promise<void> {
  const c = nc.current;
  const cfg = config.value;
  if (!c || !cfg) return;
  const t0 = Date.now();
  try {
    // Every page of each listing; the units' rows only when they are not being followed already.
    const [m, f] = await Promise.all([
      listAll<MachineRecord>(call, "list-machines"),
      listAll<UnitFileRow>(call, "list-unit-files"),
      follower.watching ? null : follower.relist(),
    ]);
    const known = reservations.peek();
    // One `cat` per file hash (thousands of instances of a template are one file).
    const byHash = new Map<string, UnitFileRow>();
    for (const x of f) if (!known.has(x.hash) && !byHash.has(x.hash)) byHash.set(x.hash, x);
    const missing = [...byHash.values()];
    if (missing.length) {
      const next = new Map(known);
      await Promise.all(
        missing.map(async (x) => {
          const r = await api<{ contents: string }>(c, cfg.prefix, "cat", { name: x.unit }).catch(() => null);
          if (r && typeof r.contents === "string") next.set(x.hash, reservationOf(r.contents));
        }),
      );
      reservations.value = next;
    }
    const st = new Map<string, unknown>();
    await Promise.all(
      f.filter((x) => x.unplaced).map(async (x) => st.set(x.unit, await api(c, cfg.prefix, "status", { name: x.unit }).catch(() => null))),
    );
    batch(() => {
      machines.value = m;
      unitFiles.value = f;
      unitRows.value = follower.rows;
      statuses.value = st;
      listingProblem.value = null;
      listedAt.value = Date.now();
    });
  } catch (e) {
    listingProblem.value = requestProblem(cfg.prefix, "list-machines", e as Error);
  }
  refreshMs = Date.now() - t0;
}

async function poll(): Promise<void> {
  if (polling) return;
  polling = true;
  for (;;) {
    if (recordingName.peek()) break;
    await refresh();
    await new Promise((r) => setTimeout(r, Math.max(2000, 4 * refreshMs)));
  }
  polling = false;
}

export function retryNow(): void {
  void start();
}

// ---- recordings ----

export function recordingText(): string {
  return toNdjson({ prefix: config.value?.prefix ?? "flotilla", statecharts: [...charts.value.values()], messages: allSteps(history) });
}

export async function openRecording(name: string, text: string): Promise<string[]> {
  const r = parseNdjson(text);
  recordingName.value = name;
  follower.stop();
  stopLive?.();
  stopLive = null;
  const c = nc.current;
  nc.current = null;
  clearTimeout(retryTimer);
  await c?.close().catch(() => undefined);
  history.actors.clear();
  history.seen.clear();
  history.count = 0;
  history.first = Infinity;
  history.last = -Infinity;
  addAll(history, r.messages);
  batch(() => {
    charts.value = new Map(r.statecharts.map((s) => [s.hash, s]));
    unknownHashes.value = new Map();
    machines.value = [];
    unitFiles.value = [];
    unitRows.value = [];
    conn.value = { state: "recording" };
    historyLoaded.value = "all";
    streamNote.value = null;
    timeAt.value = null;
    historyVersion.value = ++history.version;
  });
  return r.skipped;
}

/** Reserved CPU and memory per machine, as the scheduler counts them (wanted units where they are scheduled). */
export const capacityUsed = computed(() => {
  const reporting = new Map<string, string[]>();
  for (const r of unitRows.value) reporting.set(r.unit, [...(reporting.get(r.unit) ?? []), r.machine]);
  return usedByMachine(
    unitFiles.value
      .filter((f) => f.desiredState !== "inactive")
      .map((f) => ({ machines: f.global ? (reporting.get(f.unit) ?? []) : f.machines, r: reservations.value.get(f.hash) })),
  );
});

export const leaderAndCounts = computed(() => {
  const byTask = new Map<string, number>();
  for (const r of unitRows.value) byTask.set(r.taskState, (byTask.get(r.taskState) ?? 0) + 1);
  const byDesired = new Map<string, number>();
  for (const f of unitFiles.value) byDesired.set(f.desiredState, (byDesired.get(f.desiredState) ?? 0) + 1);
  const unplaced = unitFiles.value.filter((f) => f.unplaced).length;
  return { byTask, byDesired, unplaced };
});

// For people debugging the page from the browser console (and the end-to-end tests).
(globalThis as unknown as { flotilla: unknown }).flotilla = { history, charts, conn, timeAt };
