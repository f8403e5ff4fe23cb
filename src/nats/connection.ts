// Connecting to NATS, for the daemon (retry forever, say so visibly) and the CLI (fail fast
// with a message a person can act on). No stack traces reach the user from here.
import { readFile } from "node:fs/promises";
import { connect } from "@nats-io/transport-node";
import { credsAuthenticator, type NatsConnection, type ConnectionOptions } from "@nats-io/nats-core";
import type { Logger } from "pino";
import { FlotillaError, describeError } from "../protocol/errors.js";

export const DEFAULT_NATS_URL = "nats://127.0.0.1:4222";

export interface NatsAuth {
  creds?: string; // path to a .creds file
  user?: string;
  password?: string;
  token?: string;
}

export interface NatsOptions extends NatsAuth {
  url?: string; // comma-separated list allowed
  name?: string;
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
  return co;
}

/** One attempt; throws a FlotillaError("nats_unavailable") naming the servers. */
export async function connectOnce(opts: NatsOptions, timeoutMs = 3000): Promise<NatsConnection> {
  const co = await connectionOptions(opts);
  try {
    return await connect({ ...co, timeout: timeoutMs });
  } catch (e) {
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
