// Live statecharts: every transition of an actor is published on
// <prefix>.inspect.<machineId>.<actor> so a visualizer (or `nats sub 'flotilla.inspect.>'`) can
// follow it. Attach with XState's `inspect` option:
//   createActor(machine, { input, inspect: inspector(nc, names, machineId, "heart") })
// Payloads are JSON, not msgpack: their only readers are people and browser tools.
import type { NatsConnection } from "@nats-io/nats-core";
import type { InspectionEvent } from "xstate";
import { z } from "zod";
import type { Names } from "../protocol/names.js";

export const InspectMessage = z.object({
  machineId: z.string(),
  actor: z.string(),
  /** The actor's id inside its system (children show up under their parent's subject). */
  actorId: z.string(),
  event: z.string(),
  value: z.unknown(),
  status: z.string(),
  at: z.number(),
  context: z.unknown().optional(),
});
export type InspectMessage = z.infer<typeof InspectMessage>;

export interface InspectorOptions {
  /** Include the snapshot's context (only for actors whose context is small and JSON-safe). */
  withContext?: boolean;
}

export function inspector(
  nc: NatsConnection,
  names: Names,
  machineId: string,
  actor: string,
  o: InspectorOptions = {},
): (ev: InspectionEvent) => void {
  const subject = names.inspectSubject(machineId, actor);
  return (ev) => {
    if (ev.type !== "@xstate.snapshot" || nc.isClosed()) return;
    const snap = ev.snapshot as { value?: unknown; status?: string; context?: unknown };
    if (snap.value === undefined) return; // promise/callback actors have no states to draw
    const msg: InspectMessage = {
      machineId,
      actor,
      actorId: (ev.actorRef as { id?: string }).id ?? actor,
      event: ev.event.type,
      value: snap.value,
      status: snap.status ?? "active",
      at: Date.now(),
    };
    if (o.withContext) msg.context = snap.context;
    try {
      nc.publish(subject, JSON.stringify(msg));
    } catch {
      /* inspection is best-effort: never disturb the actor */
    }
  };
}
