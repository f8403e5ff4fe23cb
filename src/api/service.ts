// The `flotilla` NATS micro service: one endpoint per verb at <prefix>.api.<verb>, JSON in and
// out, so `nats req flotilla.api.list-machines ''` works and `nats micro ls` finds it. Every
// failure is answered with service error headers plus {"error":{"code","message"}}: never
// silence, never a crash. Handlers live in their own files and are registered by name.
import { Svcm, type Service, type ServiceMsg } from "@nats-io/services";
import { headers, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from "@nats-io/nats-core";
import type { Logger } from "pino";
import { FlotillaError, describeError, oneLine, type ErrorCode } from "../protocol/errors.js";
import { Names, READ_VERBS, SERVICE_NAME } from "../protocol/names.js";

/** Bodies larger than this are refused before parsing (unit files are small). */
export const MAX_REQUEST_BYTES = 512 * 1024;

/**
 * The Nats-Service-Error header carries one line of at most this many characters: headers may
 * not hold CR or LF (nats.js throws from respondError, which took the daemon down when a JSON
 * error quoted a newline), and a header is a summary; the JSON body keeps the whole message.
 */
export const ERROR_HEADER_MAX = 200;

export type ApiHandler = (body: unknown) => Promise<unknown>;

/** A reply already encoded as JSON, with headers (the listings' paging: docs/api.md). */
export class ApiReply {
  constructor(readonly json: string, readonly headers: Record<string, string> = {}) {}
}
export type ApiHandlers = Record<string, ApiHandler>;

const STATUS: Partial<Record<ErrorCode, number>> = {
  bad_json: 400,
  bad_request: 400,
  invalid_unit_file: 400,
  invalid_unit_name: 400,
  bad_flag: 400,
  payload_too_large: 413,
  unknown_unit: 404,
  unknown_machine: 404,
  unknown_actor: 404,
  illegal_state_change: 409,
  conflict: 409,
  timeout: 504,
  nats_unavailable: 503,
  not_supported: 501,
};

export function statusFor(code: ErrorCode): number {
  return STATUS[code] ?? 500;
}

/** Parses a request body: empty means {}, anything else must be JSON. */
export function parseBody(data: Uint8Array): unknown {
  if (data.length > MAX_REQUEST_BYTES) {
    throw new FlotillaError(
      "payload_too_large",
      `request body is ${data.length} bytes; the limit is ${MAX_REQUEST_BYTES} bytes`,
      { field: "body", value: data.length },
    );
  }
  const text = new TextDecoder().decode(data).trim();
  if (text === "" || text === "''" || text === '""') return {};
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new FlotillaError("bad_json", `request body is not JSON: ${describeError(e)}`, { field: "body" });
  }
}

/** A plain request as the service's handlers answer it: errors with the service error headers. */
function asServiceMsg(m: Msg): ServiceMsg {
  const sm = m as unknown as ServiceMsg;
  (sm as { respondError: ServiceMsg["respondError"] }).respondError = (code: number, description: string, data?: Uint8Array | string) => {
    const h = headers();
    h.set("Nats-Service-Error", description);
    h.set("Nats-Service-Error-Code", String(code));
    return m.respond(data ?? "", { headers: h });
  };
  return sm;
}

export function errorBody(e: FlotillaError): string {
  return JSON.stringify({ error: e.toJSON() });
}

export interface ApiServiceOptions {
  nc: NatsConnection;
  names: Names;
  handlers: ApiHandlers;
  log: Logger;
  version: string;
  machineId: string;
}

export class ApiService {
  private service?: Service;
  constructor(private readonly o: ApiServiceOptions) {}

  async start(): Promise<void> {
    if (this.service) return;
    const svcm = new Svcm(this.o.nc);
    const service = await svcm.add({
      name: SERVICE_NAME,
      version: this.o.version,
      description: `flotilla cluster API (prefix ${this.o.names.prefix})`,
      metadata: { prefix: this.o.names.prefix, machine: this.o.machineId },
    });
    const group = service.addGroup(this.o.names.apiSubjectRoot());
    for (const [verb, handler] of Object.entries(this.o.handlers)) {
      group.addEndpoint(verb, {
        handler: (err, msg) => {
          if (err) {
            this.o.log.warn({ err: describeError(err), verb }, "API endpoint error");
            return;
          }
          this.handle(verb, handler, msg).catch((e: unknown) => {
            this.o.log.error({ err: describeError(e), verb }, "API request handling failed");
          });
        },
        metadata: { verb },
      });
    }
    this.service = service;
    // The read verbs again, on a subject every daemon answers (no queue group): where a client
    // retries a read that timed out on a daemon cut off from NATS but still in the queue group.
    for (const verb of READ_VERBS) {
      const handler = this.o.handlers[verb];
      if (!handler) continue;
      const sub = this.o.nc.subscribe(this.o.names.apiAnySubject(verb), {
        callback: (err, msg) => {
          if (err) return;
          this.handle(verb, handler, asServiceMsg(msg)).catch((e: unknown) => {
            this.o.log.error({ err: describeError(e), verb }, "API request handling failed");
          });
        },
      });
      this.anySubs.push(sub);
    }
  }
  private anySubs: Subscription[] = [];

  /** Never rejects: every failure, of the handler or of the reply itself, ends in a log line. */
  private async handle(verb: string, handler: ApiHandler, msg: ServiceMsg): Promise<void> {
    let reply: string;
    let hdrs: MsgHdrs | undefined;
    try {
      const body = parseBody(msg.data);
      const result = await handler(body);
      if (result instanceof ApiReply) {
        reply = result.json;
        hdrs = headers();
        for (const [k, v] of Object.entries(result.headers)) hdrs.set(k, v);
      } else reply = JSON.stringify(result ?? {});
    } catch (e) {
      this.refuse(verb, msg, e);
      return;
    }
    try {
      msg.respond(reply, hdrs ? { headers: hdrs } : undefined);
    } catch (e) {
      // Too big for the server's max_payload, or the connection is closing: say so if we still can.
      this.o.log.warn({ verb, bytes: reply.length, err: describeError(e) }, "API reply could not be sent");
      this.refuse(verb, msg, new FlotillaError("payload_too_large", `${verb}: the reply could not be sent: ${describeError(e)}`, { field: "reply" }));
    }
  }

  private refuse(verb: string, msg: ServiceMsg, e: unknown): void {
    try {
      const fe =
        e instanceof FlotillaError ? e : new FlotillaError("internal", `${verb} failed: ${describeError(e)}`);
      if (fe.code === "internal") this.o.log.error({ err: e, verb }, "API handler failed");
      else this.o.log.debug({ code: fe.code, verb, message: oneLine(fe.message, 1000) }, "API request refused");
      const header = oneLine(`${fe.code}: ${fe.message}`, ERROR_HEADER_MAX);
      try {
        msg.respondError(statusFor(fe.code), header, errorBody(fe));
      } catch (err) {
        // The body did not fit (a message quoting too much): the header line alone still answers.
        this.o.log.warn({ verb, err: describeError(err) }, "API error reply too big; sending its first line only");
        msg.respondError(statusFor(fe.code), header, JSON.stringify({ error: { code: fe.code, message: header } }));
      }
    } catch (err) {
      this.o.log.warn({ verb, err: describeError(err) }, "API error reply could not be sent");
    }
  }

  async stop(): Promise<void> {
    const s = this.service;
    this.service = undefined;
    for (const sub of this.anySubs.splice(0)) sub.unsubscribe();
    if (s) await s.stop().catch(() => undefined);
  }
}
