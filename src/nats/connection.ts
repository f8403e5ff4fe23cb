// Connecting to NATS, for the daemon (retry forever, say so visibly) and the CLI (fail fast
// with a message a person can act on). No stack traces reach the user from here.
import { readFile } from "node:fs/promises";
import { connectPaced } from "./paced-transport.js";
import { credsAuthenticator, type NatsConnection, type ConnectionOptions } from "@nats-io/nats-core";
import type { Logger } from "pino";
import { FlotillaError, describeError } from "../protocol/errors.js";
import { inboxPrefixFor } from "../auth/roles.js";

import { DEFAULT_NATS_URL } from "./default-url.js";
export { DEFAULT_NATS_URL };

export interface NatsAuth {
  creds?: string; // path to a .creds file
  user?: string;
  password?: string;
  token?: string;
}

/** Client TLS (docs/auth.md): a CA to trust, and a certificate + key when the server wants one. */
export interface NatsTls {
  ca?: string;
  cert?: string;
  key?: string;
}

export interface NatsOptions extends NatsAuth {
  url?: string; // comma-separated list allowed
  name?: string;
  tls?: NatsTls;
}

export async function connectionOptions(opts: NatsOptions): Promise<ConnectionOptions> {
  const servers = (opts.url ?? process.env.NATS_URL ?? DEFAULT_NATS_URL)
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  const co: ConnectionOptions = {
    servers,
    name: opts.name ?? "flotilla",
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    reconnectJitter: 100,
    pingInterval: 10_000,
  };
  if (opts.creds) {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(opts.creds);
    } catch (e) {
      throw new FlotillaError("bad_flag", `cannot read NATS credentials file ${opts.creds}: ${describeError(e)}`, {
        field: "creds",
        value: opts.creds,
      });
    }
    co.authenticator = credsAuthenticator(bytes);
  }
  if (opts.user) co.user = opts.user;
  if (opts.password) co.pass = opts.password;
  if (opts.token) co.token = opts.token;
  // Replies to a user's requests arrive under its own prefix, which only it may subscribe to.
  if (opts.user) co.inboxPrefix = inboxPrefixFor(opts.user);
  if (opts.tls && (opts.tls.ca || opts.tls.cert || opts.tls.key)) {
    co.tls = {};
    if (opts.tls.ca) co.tls.caFile = opts.tls.ca;
    if (opts.tls.cert) co.tls.certFile = opts.tls.cert;
    if (opts.tls.key) co.tls.keyFile = opts.tls.key;
  }
  return co;
}

/** One attempt; throws a FlotillaError("nats_unavailable") naming the servers. */
export async function connectOnce(opts: NatsOptions, timeoutMs = 3000): Promise<NatsConnection> {
  const co = await connectionOptions(opts);
  try {
    return await connectPaced({ ...co, timeout: timeoutMs });
  } catch (e) {
    if (/authorization violation|authentication/i.test(describeError(e))) {
      throw new FlotillaError(
        "auth_failed",
        `NATS at ${(co.servers as string[]).join(",")} refused the credentials` +
          `${opts.user ? ` of user "${opts.user}"` : opts.creds ? ` in ${opts.creds}` : " (none given)"}: ` +
          `check --user/--password (NATS_USER, NATS_PASSWORD) or --creds; flotilla up writes them to <data-dir>/auth/*.env`,
        { field: "user", value: opts.user, cause: e },
      );
    }
    throw new FlotillaError(
      "nats_unavailable",
      `cannot reach NATS at ${(co.servers as string[]).join(",")}: ${describeError(e)}. ` +
        `Is nats-server running? Set --nats or NATS_URL (for a local cluster: flotilla up).`,
      { field: "nats", value: co.servers, temporary: true, cause: e },
    );
  }
}

/**
 * Keeps trying until connected or `signal` aborts, logging each failure once per attempt with
 * the next delay (backoff up to 5 s). For daemons: NATS may come up after us.
 */
export async function connectWithRetry(
  opts: NatsOptions,
  log: Logger,
  signal?: AbortSignal,
): Promise<NatsConnection> {
  let delay = 250;
  for (let attempt = 1; ; attempt++) {
    try {
      const nc = await connectOnce(opts);
      if (attempt > 1) log.info({ attempt }, "connected to NATS");
      return nc;
    } catch (e) {
      if (signal?.aborted) throw e;
      // Wrong credentials do not get better by waiting.
      if (e instanceof FlotillaError && e.code === "auth_failed") throw e;
      log.warn(`${describeError(e)} (attempt ${attempt}, retrying in ${delay} ms)`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, delay);
        signal?.addEventListener("abort", () => {
          clearTimeout(t);
          resolve();
        });
      });
      if (signal?.aborted) throw e;
      delay = Math.min(delay * 2, 5000);
    }
  }
}

/**
 * A connection that looks open but carries nothing (a pulled cable, a container taken off its
 * network, a host gone without a FIN or RST) is only noticed by TCP's retransmissions, whose
 * gaps double while the link is down, or by the client's pings after 20-30 s. This asks the
 * server for a PONG; when none comes within `timeoutMs` it drops the connection and lets the
 * client dial again (250-350 ms between dials, each given up after connectOnce's 3 s), so a
 * healed link is used within a dial, not within a retransmission gap. Resolves true when it
 * redialed. A connection already reconnecting or closed is left alone; a PONG, however late its
 * PING, means the link works.
 */
export async function redialIfSilent(nc: NatsConnection, timeoutMs: number): Promise<boolean> {
  if (nc.isClosed() || nc.isDraining()) return false;
  let t: NodeJS.Timeout | undefined;
  const silent = await Promise.race([
    nc.flush().then(
      () => false,
      () => false, // closed or reconnecting meanwhile: the client is already on it
    ),
    new Promise<boolean>((resolve) => (t = setTimeout(() => resolve(true), timeoutMs))),
  ]).finally(() => clearTimeout(t));
  if (!silent || nc.isClosed()) return false;
  await nc.reconnect();
  return true;
}
