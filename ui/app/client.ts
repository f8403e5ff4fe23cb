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

export interface Credentials {
  user: string;
  pass: string;
}

/** The reply-subject prefix of a user (src/auth/roles.ts inboxPrefixFor): its permissions allow only these. */
export function inboxPrefixFor(user: string): string {
  return `_INBOX_${user.replace(/[^A-Za-z0-9_-]/g, "_")}`;
}

let inboxPrefix = "_INBOX";

export async function connectWs(cfg: Config, creds: Credentials | null): Promise<NatsConnection> {
  inboxPrefix = creds ? inboxPrefixFor(creds.user) : "_INBOX";
  return wsconnect({
    servers: cfg.wsUrl,
    name: "flotilla-ui",
    reconnect: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 2000,
    timeout: 5000,
    ...(creds ? { user: creds.user, pass: creds.pass, inboxPrefix } : {}),
  });
}

export function isAuthError(e: unknown): boolean {
  const m = `${(e as Error)?.name ?? ""} ${(e as Error)?.message ?? e}`;
  return /authori[sz]ation|authentication|auth(entication)? (violation|expired|required)|user.*password/i.test(m);
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
 * Reads the inspect stream with an ordered push consumer until it has delivered everything that
 * was there when it started (the stream's last sequence then): last per subject (current states)
 * or everything (history). Push, not pull: a viewer's permissions allow consumer creates and
 * deliveries to its own inbox, not pull requests. Calls onBatch with batches of messages.
 */
export async function readInspectStream(
  nc: NatsConnection,
  prefix: string,
  mode: "last" | "all",
  onBatch: (ms: InspectMessage[]) => void,
): Promise<number> {
  const stream = `${prefix}-inspect`;
  const jsm = await jetstreamManager(nc);
  let lastSeq: number;
  try {
    const st = (await jsm.streams.info(stream)).state;
    if (st.messages === 0) return 0;
    lastSeq = st.last_seq;
  } catch (e) {
    if (/not found/i.test(String((e as Error).message))) throw new NoStreamError(stream);
    throw e;
  }
  const js = jetstream(nc);
  const c = await js.consumers.getPushConsumer(stream, {
    filter_subjects: `${prefix}.inspect.>`,
    deliver_policy: mode === "last" ? DeliverPolicy.LastPerSubject : DeliverPolicy.All,
    deliver_prefix: `${inboxPrefix}.inspect-${Math.random().toString(36).slice(2, 10)}`,
  });
  const it = await c.consume();
  let n = 0;
  let batch: InspectMessage[] = [];
  const flush = () => {
    if (batch.length) onBatch(batch);
    n += batch.length;
    batch = [];
  };
  for await (const m of it) {
    const x = parseInspect(m.data);
    if (x) batch.push(x);
    if (batch.length >= 500) {
      flush();
      // let the page draw (and the layout worker's answer arrive) between batches of a long replay
      await new Promise((r) => setTimeout(r, 0));
    }
    if (m.info.pending === 0 || m.info.streamSequence >= lastSeq) break;
  }
  flush();
  await it.close().catch(() => undefined);
  await c.delete().catch(() => undefined);
  return n;
}
