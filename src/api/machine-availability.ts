// machine-availability: {"machine":"<id or short id>","availability":"drain|pause|active"}.
// Finds the machine in the `machines` bucket (full ID or a unique prefix, such as the 8
// characters list-machines shows), then asks that machine's daemon over its control subject;
// the daemon changes its record and puts it at once, and the leader engine acts on the change
// (drain: its units move away; pause: it takes no new units). Answers the new machine record.
import { z } from "zod";
import type { NatsConnection } from "@nats-io/nats-core";
import type { KV } from "@nats-io/kv";
import { FlotillaError, describeError, type ErrorCode } from "../protocol/errors.js";
import { Availability, type MachineRecord } from "../protocol/messages.js";
import type { Names } from "../protocol/names.js";
import type { HandlerFactory } from "./handlers.js";

const Body = z.object({ machine: z.string().min(1), availability: Availability });

export async function resolveMachine(kv: KV, wanted: string): Promise<string> {
  const ids: string[] = [];
  for await (const k of await kv.keys()) ids.push(k);
  if (ids.includes(wanted)) return wanted;
  const hits = ids.filter((id) => id.startsWith(wanted));
  if (hits.length === 1) return hits[0]!;
  if (hits.length > 1) {
    throw new FlotillaError("bad_request", `machine "${wanted}" is ambiguous: it matches ${hits.sort().join(", ")}`, {
      field: "machine",
      value: wanted,
    });
  }
  throw new FlotillaError("unknown_machine", `no live machine "${wanted}" (see flotilla list-machines)`, { field: "machine", value: wanted });
}

export async function setAvailability(
  nc: NatsConnection,
  names: Names,
  machines: KV,
  body: unknown,
): Promise<MachineRecord> {
  const parsed = Body.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path.join(".") || "body";
    const value = (body as Record<string, unknown> | undefined)?.[field];
    throw new FlotillaError(
      "bad_request",
      field === "availability"
        ? `availability ${JSON.stringify(value)} is not one of active, pause, drain`
        : `${field}: ${issue?.message ?? "invalid"}; send {"machine":"<id>","availability":"drain|pause|active"}`,
      { field, value },
    );
  }
  const id = await resolveMachine(machines, parsed.data.machine);
  let reply;
  try {
    reply = await nc.request(names.machineControlSubject(id, "availability"), JSON.stringify({ availability: parsed.data.availability }), {
      timeout: 5000,
    });
  } catch (e) {
    throw new FlotillaError("timeout", `machine ${id} did not answer (is its daemon running?): ${describeError(e)}`, {
      field: "machine",
      value: id,
      temporary: true,
    });
  }
  const answer = JSON.parse(new TextDecoder().decode(reply.data) || "{}") as MachineRecord & { error?: { code?: string; message?: string } };
  if (answer.error) {
    throw new FlotillaError((answer.error.code as ErrorCode) ?? "internal", answer.error.message ?? "refused", { field: "availability" });
  }
  return answer;
}

export const machineAvailabilityHandlers: HandlerFactory = (ctx) => ({
  "machine-availability": async (body) => setAvailability(ctx.nc, ctx.names, ctx.buckets.machines, body),
});
