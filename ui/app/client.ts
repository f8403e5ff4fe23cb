// The page's NATS side: one WebSocket connection (wsconnect), API verbs by request/reply, and
// inspection from three paths that overlap on purpose (the history reducer drops duplicates):
//   1. the inspect stream's last message per subject: every actor's current state at once;
//   2. the live subjects (core subscription): every step from now on;
//   3. the stream replayed from its start: the history the timeline scrubs over.
import { wsconnect, type NatsConnection, type Msg } from "@nats-io/nats-core";
import { jetstream, jetstreamManager, DeliverPolicy } from "@nats-io/jetstream";
import { InspectMessage, StatechartList, type Statechart } from "../lib/types.js";

export class ApiError extends Error {
  override name = "ApiError";
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface Config {
  wsUrl: string;
  prefix: string;
}

export async function connectWs(cfg: Config): Promise<NatsConnection> {
  return wsconnect({
    servers: cfg.wsUrl,
    name: "flotilla-ui",
    reconnect: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 2000,
    timeout: 5000,
  });
}

const enc = new TextEncoder();

export async function api<T = unknown>(nc: NatsConnection, prefix: string, verb: string, body: unknown = {}, timeout = 10_000): Promise<T> {
  const m = await nc.request(`${prefix}.api.${verb}`, enc.encode(JSON.stringify(body)), { timeout });
  const text = m.string();
  let j: unknown;
  try {
    j = text ? JSON.parse(text) : null;
  } catch {
    throw new ApiError("bad_reply", `the ${verb} reply is not JSON: ${text.slice(0, 200)}`);
  }
  const err = (j as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  if (err && typeof err === "object") throw new ApiError(String(err.code ?? "error"), String(err.message ?? JSON.stringify(err)));
  return j as T;
}

export async function fetchStatecharts(nc: NatsConnection, prefix: string, body: { hash?: string; actor?: string } = {}): Promise<Statechart[]> {
  const r = await api(nc, prefix, "statecharts", body);
  const p = StatechartList.safeParse(r);
  if (!p.success) throw new ApiError("bad_reply", `the statecharts reply does not match the definition schema: ${p.error.issues[0]?.message ?? ""}`);
  return p.data;
}

export function parseInspect(data: Uint8Array | string): InspectMessage | undefined {
  try {
    const j = JSON.parse(typeof data === "string" ? data : new TextDecoder().decode(data));
    const p = InspectMessage.safeParse(j);
    return p.success ? p.data : undefined;
  } catch {
    return undefined;
  }
}

/** Live steps; returns a stop function. */
export function subscribeInspect(nc: NatsConnection, prefix: string, on: (m: InspectMessage) => void): () => void {
  const sub = nc.subscribe(`${prefix}.inspect.>`, {
    callback: (err: Error | null, msg: Msg) => {
      if (err) return;
      const m = parseInspect(msg.data);
      if (m) on(m);
    },
  });
  return () => sub.unsubscribe();
}

export class NoStreamError extends Error {}

/**
 * Reads the inspect stream with an ordered consumer until it has delivered everything that was
 * there when it started: last per subject (current states) or everything (history). Calls
 * onBatch with the messages of each batch.
 */
export async function readInspectStream(
  nc: NatsConnection,
  prefix: string,
  mode: "last" | "all",
  onBatch: (ms: InspectMessage[]) => void,
): Promise<number> {
  const stream = `${prefix}-inspect`;
  const jsm = await jetstreamManager(nc);
  let total: number;
  try {
    total = (await jsm.streams.info(stream)).state.messages;
  } catch (e) {
    if (/not found/i.test(String((e as Error).message))) throw new NoStreamError(stream);
    throw e;
  }
  if (total === 0) return 0;
  const js = jetstream(nc);
  const c = await js.consumers.get(stream, {
    filter_subjects: `${prefix}.inspect.>`,
    deliver_policy: mode === "last" ? DeliverPolicy.LastPerSubject : DeliverPolicy.All,
  });
  let n = 0;
  for (;;) {
    const batch: InspectMessage[] = [];
    let pending = -1;
    const it = await c.fetch({ max_messages: 1000, expires: 2000 });
    for await (const m of it) {
      const x = parseInspect(m.data);
      if (x) batch.push(x);
      pending = m.info.pending;
    }
    n += batch.length;
    if (batch.length) onBatch(batch);
    if (pending <= 0) break;
  }
  await c.delete().catch(() => undefined);
  return n;
}
