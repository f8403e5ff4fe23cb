// Every error that can reach a user or cross NATS carries a stable code, the offending field
// and the value received, so a person at 3 a.m. sees what to fix, and scripts can match codes.

export const ErrorCodes = [
  "bad_json", // a request body that is not JSON
  "bad_request", // JSON that violates the schema (field names the path)
  "payload_too_large",
  "unknown_unit",
  "unknown_machine",
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
