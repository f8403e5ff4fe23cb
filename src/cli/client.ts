// The CLI's side of the API: one request per verb, JSON both ways, service errors turned into
// FlotillaErrors with their stable code so commands can print them plainly.
import type { NatsConnection } from "@nats-io/nats-core";
import { FlotillaError, describeError, type ErrorCode } from "../protocol/errors.js";
import { Names, READ_VERBS } from "../protocol/names.js";
// The NATS client is imported on connect, not at the CLI's start (`--help` needs none of it).
import type { NatsOptions } from "../nats/connection.js";

export interface GlobalOptions extends NatsOptions {
  prefix: string;
  timeout: number; // ms for one API request
}

/** Read-only verbs: asked again (READ_ATTEMPTS in all) when a responder does not answer in time. */
export const RETRIED_READS: ReadonlySet<string> = new Set(READ_VERBS);
export const READ_ATTEMPTS = 3;

export class ApiClient {
  constructor(
    readonly nc: NatsConnection,
    readonly names: Names,
    private readonly timeoutMs = 10_000,
    private readonly user?: string,
  ) {}

  static async connect(g: GlobalOptions): Promise<ApiClient> {
    const { connectOnce } = await import("../nats/connection.js");
    const nc = await connectOnce({ ...g, name: "flotilla-cli" });
    return new ApiClient(nc, new Names(g.prefix), g.timeout, g.user);
  }

  async request<T = unknown>(verb: string, body: unknown = {}, timeoutMs = this.timeoutMs): Promise<T> {
    if (!RETRIED_READS.has(verb)) return this.requestOnce<T>(verb, body, timeoutMs);
    // A daemon cut off from NATS stays in the API's queue group until nats-server drops it, and
    // a request routed to it times out. A read is safe to ask again: the retries go to the
    // subject every daemon answers (no queue group), and the first answer wins.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.requestOnce<T>(verb, body, timeoutMs, attempt > 1 ? this.names.apiAnySubject(verb) : undefined);
      } catch (e) {
        if (!(e instanceof FlotillaError && e.code === "timeout") || attempt >= READ_ATTEMPTS) throw e;
      }
    }
  }

  private async requestOnce<T>(verb: string, body: unknown, timeoutMs: number, subject = this.names.apiSubject(verb)): Promise<T> {
    let msg;
    try {
      msg = await this.nc.request(subject, JSON.stringify(body), { timeout: timeoutMs });
    } catch (e) {
      const text = describeError(e);
      const { permissionViolation } = await import("../auth/probe.js");
      if (permissionViolation(e)) {
        throw new FlotillaError(
          "permission_denied",
          `NATS refused ${this.user ? `user "${this.user}"` : "these credentials"} to send ${verb} (${this.names.apiSubject(verb)}): ` +
            `this role may not; use the operator's credentials (flotilla up writes <data-dir>/auth/operator.env)`,
          { field: "verb", value: verb },
        );
      }
      if (/no responders|503/i.test(text)) {
        throw new FlotillaError(
          "nats_unavailable",
          `no flotilla daemon answers on ${this.names.apiSubject(verb)}: is a daemon running with prefix "${this.names.prefix}"?`,
          { temporary: true },
        );
      }
      if (/timeout/i.test(text)) {
        throw new FlotillaError("timeout", `the cluster did not answer ${verb} within ${timeoutMs} ms`, { temporary: true });
      }
      throw new FlotillaError("nats_unavailable", `${verb}: ${text}`, { cause: e });
    }
    const text = new TextDecoder().decode(msg.data);
    let parsed: unknown;
    try {
      parsed = text === "" ? {} : JSON.parse(text);
    } catch {
      throw new FlotillaError("internal", `${verb}: the daemon answered something that is not JSON: ${text.slice(0, 200)}`);
    }
    const err = (parsed as { error?: { code?: string; message?: string; field?: string; line?: number } })?.error;
    if (msg.headers?.get("Nats-Service-Error-Code") || err) {
      throw new FlotillaError(
        (err?.code as ErrorCode) ?? "internal",
        err?.message ?? msg.headers?.get("Nats-Service-Error") ?? "request failed",
        { field: err?.field, line: err?.line },
      );
    }
    return parsed as T;
  }

  async close(): Promise<void> {
    await this.nc.close().catch(() => undefined);
  }
}

/** Connects, runs fn, and always closes the connection. */
export async function withClient<T>(globals: () => GlobalOptions, fn: (c: ApiClient) => Promise<T>): Promise<T> {
  const client = await ApiClient.connect(globals());
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}
