// Checking an API request body against its zod schema, in one place for every verb: a violation
// becomes bad_request naming the field ("units[0].name") and the value received, shortened, so
// a request of 500 KiB or 100,000 nested arrays gives a message of one short line.
import type { z } from "zod";
import { FlotillaError, showValue } from "../protocol/errors.js";

/** "units.0.name" -> "units[0].name" (keys shortened: a key may be 400 KiB long). */
export function fieldPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const p of path) {
    const s = typeof p === "number" ? `[${p}]` : String(p);
    const k = s.length > 40 ? `${s.slice(0, 39)}…` : s;
    out += typeof p === "number" ? k : out === "" ? k : `.${k}`;
  }
  return out;
}

/** The value at a zod issue's path (a loop, never a recursion). */
function valueAt(body: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = body;
  for (const p of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return v;
}

function kindOf(body: unknown): string {
  return Array.isArray(body) ? "an array" : body === null ? "null" : `a ${typeof body}`;
}

/** Validates a request body; a violation becomes bad_request naming the field and the value. */
export function parseRequest<S extends z.ZodType>(schema: S, body: unknown, verb: string, example: string): z.infer<S> {
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new FlotillaError(
      "bad_request",
      `${verb}: the request body must be a JSON object such as ${example}, not ${kindOf(body)}`,
      { field: "body", value: showValue(body) },
    );
  }
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  let field = fieldPath(issue.path);
  if (issue.code === "unrecognized_keys") {
    const k = fieldPath([String(issue.keys[0])]);
    field = field ? `${field}.${k}` : k;
    throw new FlotillaError("bad_request", `${verb}: field ${field}: unknown field (expected ${example})`, { field });
  }
  const got = valueAt(body, issue.path);
  const message = issue.message.replace(/^Invalid input: /, "");
  throw new FlotillaError("bad_request", `${verb}: field ${field || "body"}: ${message} (got ${showValue(got)})`, {
    field: field || "body",
    value: showValue(got),
  });
}
