// The one msgpack codec for every internal message and bucket value. Plain maps, no records
// extension, so any msgpack reader (and `nats kv get` piped into a decoder) can read them.
import { Packr } from "msgpackr";
import type { z } from "zod";
import { FlotillaError } from "./errors.js";

const packr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true });

export function encode(value: unknown): Uint8Array {
  return packr.pack(value);
}

export function decode(bytes: Uint8Array): unknown {
  return packr.unpack(bytes);
}

/**
 * Decodes and validates a value read from NATS. Throws a FlotillaError("bad_record") that names
 * the source (bucket/key or subject) and the first failing field.
 */
export function decodeAs<S extends z.ZodType>(
  schema: S,
  bytes: Uint8Array,
  source: string,
  /** A quick check that only passes values the schema accepts (the schema still explains the rest). */
  quick?: (v: unknown) => v is z.infer<S>,
): z.infer<S> {
  let raw: unknown;
  try {
    raw = decode(bytes);
  } catch (e) {
    throw new FlotillaError("bad_record", `${source}: not msgpack (${bytes.length} bytes)`, { field: source, cause: e });
  }
  if (quick?.(raw)) return raw;
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue?.path.join(".") || "(root)";
    throw new FlotillaError("bad_record", `${source}: field ${path}: ${issue?.message ?? "invalid"}`, {
      field: path,
      value: raw,
    });
  }
  return parsed.data;
}
