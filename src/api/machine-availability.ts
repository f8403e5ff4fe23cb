// machine-availability: {"machine":"<id or short id>","availability":"drain|pause|active"}.
// Finds the machine in the `machines` bucket (full ID or a unique prefix, such as the 8
// characters list-machines shows), then asks that machine's daemon over its control subject;
// the daemon changes its record and puts it at once, and the leader engine acts on the change
// (drain: its units move away; pause: it takes no new units). Answers the new machine record.
import { z } from "zod";
import type { NatsConnection } from "@nats-io/nats-core";
import type { KV } from "@nats-io/kv";
import { FlotillaError, describeError, showValue, type ErrorCode } from "../protocol/errors.js";
import { Availability, type MachineRecord } from "../protocol/messages.js";
import type { Names } from "../protocol/names.js";
import { listKeys, type BucketRef } from "../nats/kv-keys.js";
import type { HandlerFactory } from "./handlers.js";
import { parseRequest } from "./request.js";

const Body = z.object({ machine: z.string().min(1).max(128), availability: z.unknown() }).strict();
const EX = `{"machine":"<id>","availability":"drain|pause|active"}`;

/**
 * The machine's full ID from its ID or a unique prefix. Keys are listed with listKeys (one
 * STREAM.INFO): kv.keys() on this TTL bucket hangs when a record expires mid-listing. listKeys
 * also names keys whose last entry is a delete marker, so a hit is confirmed with a get.
 */
export async function resolveMachine(machines: BucketRef, wanted: string): Promise<string> {
  const ids = await listKeys(machines.nc, machines.name);
  const live = async (id: string) => {
    const e = await machines.kv.get(id).catch(() => null);
    return e !== null && e.operation === "PUT" && e.value.length > 0;
  };
  if (ids.includes(wanted) && (await live(wanted))) return wanted;
  const candidates = ids.filter((id) => id.startsWith(wanted));
  const hits: string[] = [];
  for (const id of candidates.slice(0, 32)) if (await live(id)) hits.push(id);
  if (hits.length === 1) return hits[0]!;
  if (hits.length > 1) {
    throw new FlotillaError("bad_request", `machine ${showValue(wanted)} is ambiguous: it matches ${hits.sort().join(", ")}`, {
      field: "machine",
      value: wanted,
    });
  }
  throw new FlotillaError("unknown_machine", `no live machine ${showValue(wanted)} (see flotilla list-machines)`, {
    field: "machine",
    value: showValue(wanted),
  });
}

export async function setAvailability(
  nc: NatsConnection,
  names: Names,
  machines: KV,
  body: unknown,
): Promise<MachineRecord> {
  const req = parseRequest(Body, body, "machine-availability", EX);
  const availability = Availability.safeParse(req.availability);
  if (req.availability === undefined) {
    throw new FlotillaError("bad_request", `machine-availability: field availability is missing (expected ${EX})`, { field: "availability" });
  }
  if (!availability.success) {
    throw new FlotillaError("bad_request", `availability ${showValue(req.availability)} is not one of active, pause, drain`, {
      field: "availability",
      value: showValue(req.availability),
    });
  }
  const id = await resolveMachine({ kv: machines, nc, name: names.bucket("machines") }, req.machine);
  let reply;
  try {
    reply = await nc.request(names.machineControlSubject(id, "availability"), JSON.stringify({ availability: availability.data }), {
      timeout: 5000,
    });
  } catch (e) {
    throw new FlotillaError("timeout", `machine ${id} did not answer (is its daemon running?): ${describeError(e)}`, {
      field: "machine",
      value: id,
      temporary: true,
    });
  }
  let answer: MachineRecord & { error?: { code?: string; message?: string } };
  try {
    answer = JSON.parse(new TextDecoder().decode(reply.data) || "{}");
  } catch (e) {
    throw new FlotillaError("internal", `machine ${id} answered something that is not JSON: ${describeError(e)}`, { field: "machine", value: id });
  }
  if (answer.error) {
    throw new FlotillaError((answer.error.code as ErrorCode) ?? "internal", answer.error.message ?? "refused", { field: "availability" });
  }
  return answer;
}

export const machineAvailabilityHandlers: HandlerFactory = (ctx) => ({
  "machine-availability": async (body) => setAvailability(ctx.nc, ctx.names, ctx.buckets.machines, body),
});
