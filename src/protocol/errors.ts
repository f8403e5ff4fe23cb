// Every error that can reach a user or cross NATS carries a stable code, the offending field
// and the value received, so a person at 3 a.m. sees what to fix, and scripts can match codes.

export const ErrorCodes = [
  "bad_json", // a request body that is not JSON
  "bad_request", // JSON that violates the schema (field names the path)
  "payload_too_large",
  "unknown_unit",
  "unknown_machine",
  "unknown_actor", // no statechart of that actor kind or definition hash
  "invalid_unit_file", // carries the line number in `line`
  "invalid_unit_name",
  "illegal_state_change",
  "conflict", // compare-and-set lost too many times
  "bad_config",
  "bad_flag",
  "duplicate_machine_id",
  "nats_unavailable",
  "bad_record", // a garbage value found in a bucket
  "timeout",
  "internal",
  "not_supported",
  "exec_failed", // a task could not be prepared, started or stopped (agent/executor)
  "auth_failed", // NATS refused the credentials (user, password, creds file, TLS)
  "permission_denied", // NATS refused a publish or subscribe these credentials need
] as const;
export type ErrorCode = (typeof ErrorCodes)[number];

export class FlotillaError extends Error {
  readonly code: ErrorCode;
  readonly field?: string;
  readonly value?: unknown;
  readonly line?: number;
  /** Temporary errors are worth retrying; fatal ones are not. */
  readonly temporary: boolean;

  constructor(
    code: ErrorCode,
    message: string,
    opts: { field?: string; value?: unknown; line?: number; temporary?: boolean; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "FlotillaError";
    this.code = code;
    this.field = opts.field;
    this.value = opts.value;
    this.line = opts.line;
    this.temporary = opts.temporary ?? false;
  }

  toJSON(): { code: ErrorCode; message: string; field?: string; line?: number } {
    const out: { code: ErrorCode; message: string; field?: string; line?: number } = {
      code: this.code,
      message: this.message,
    };
    if (this.field !== undefined) out.field = this.field;
    if (this.line !== undefined) out.line = this.line;
    return out;
  }
}

export function isFlotillaError(e: unknown): e is FlotillaError {
  return e instanceof FlotillaError;
}

/** A short, human description of any thrown value (no stack traces for users). */
export function describeError(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}

/** JetStream's "wrong last sequence" (10071): a compare-and-set lost a race. */
export function isWrongLastSequence(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  const anyE = e as Error & { code?: unknown; api_error?: { err_code?: number } };
  if (anyE.api_error?.err_code === 10071) return true;
  return /wrong last sequence/i.test(e.message) || /10071/.test(e.message);
}

/**
 * A received value as an error message quotes it: JSON-like, at most `max` characters (then
 * "…"), control characters escaped, and never recursing into a deeply nested value (a request
 * may hold 100,000 nested arrays; JSON.stringify of it would overflow the stack).
 */
export function showValue(v: unknown, max = 60): string {
  let out: string;
  if (typeof v === "string") {
    // Shortened inside the quotes ("aaaa…"), escapes counted.
    let cut = Math.min(v.length, max);
    let q = quote(v.slice(0, cut));
    while (q.length > max - 1 && cut > 0) {
      cut = Math.floor(cut * 0.8);
      q = quote(v.slice(0, cut));
    }
    return cut < v.length ? `${q.slice(0, -1)}…"` : q;
  } else if (v === null || typeof v === "number" || typeof v === "boolean") out = String(v);
  else if (v === undefined) out = "nothing";
  else if (Array.isArray(v)) out = v.length === 0 ? "[]" : `an array of ${v.length}`;
  else if (typeof v === "object") {
    const ks = Object.keys(v);
    out = ks.length === 0 ? "{}" : `an object with ${ks.slice(0, 3).map((k) => showValue(k, 20)).join(", ")}${ks.length > 3 ? ", …" : ""}`;
  } else out = typeof v;
  out = escapeControls(out);
  return out.length > max ? `${out.slice(0, max - 1)}…` : out;
}

/** JSON.stringify leaves U+2028/2029 and C1 controls alone; a message must stay one clean line. */
function escapeControls(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
const quote = (s: string): string => escapeControls(JSON.stringify(s));

/** An error message as one header line: control characters become spaces, at most `max` characters. */
export function oneLine(s: string, max = 200): string {
  const flat = s.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, " ").trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}
