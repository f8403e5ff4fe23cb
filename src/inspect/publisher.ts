// Live statecharts (inspection v2): every macrostep of an actor is published on
// <prefix>.inspect.<machineId>.<actor>[.<unit>] and kept in the <prefix>-inspect stream, so a
// viewer that arrives late reads each actor's current state (the last message per subject) and
// can replay its history. Attach with XState's `inspect` option:
//   createActor(machine, { input, inspect: inspector(nc, names, machineId, "heart") })
// Each message names the actor's stable id, a per-id sequence without gaps (per daemon
// session), the definition's hash (definition.ts), the event, the state value and the
// transitions taken. Payloads are JSON: their readers are people and browser tools.
// Publishing is a core publish of a small JSON document per step, never awaited: inspection
// must not slow an actor down or fail it.
import { randomBytes } from "node:crypto";
import type { NatsConnection } from "@nats-io/nats-core";
import type { AnyStateMachine, InspectionEvent } from "xstate";
import { z } from "zod";
import type { Names } from "../protocol/names.js";
import { definitionHash } from "./definition.js";

/** Actors that exist once per unit: their id and subject carry the unit (the actor's own id). */
export const PER_UNIT_ACTORS = new Set(["task", "task-manager"]);

/** This daemon process: sequences restart with it. */
export const SESSION = randomBytes(4).toString("hex");

export const InspectTransition = z.object({ source: z.string(), targets: z.array(z.string()), event: z.string() });

export const InspectMessage = z.object({
  v: z.literal(2),
  machineId: z.string(),
  session: z.string(),
  actor: z.string(),
  /** Stable system id: the role, or role:unit. */
  id: z.string(),
  unit: z.string().optional(),
  seq: z.number().int().positive(),
  defHash: z.string(),
  event: z.string(),
  value: z.unknown(),
  transitions: z.array(InspectTransition),
  status: z.string(),
  at: z.number(),
  context: z.unknown().optional(),
});
export type InspectMessage = z.infer<typeof InspectMessage>;

export interface InspectorOptions {
  /** Include the snapshot's context (only for actors whose context is small and JSON-safe). */
  withContext?: boolean;
  /** The unit of a per-unit actor system (a task manager): its children (the task) carry it too. */
  unit?: string;
}

/** Per subject, for the daemon's whole life: an actor made anew (a unit loaded again) keeps counting. */
const seqs = new Map<string, number>();

interface TransitionLike {
  source?: { id?: string };
  target?: { id?: string }[];
  eventType?: string;
}

export function inspector(
  nc: NatsConnection,
  names: Names,
  machineId: string,
  actor: string,
  o: InspectorOptions = {},
): (ev: InspectionEvent) => void {
  const perUnit = PER_UNIT_ACTORS.has(actor);
  // Transitions of the macrostep in progress, by actor: the snapshot event that ends it takes them.
  const steps = new WeakMap<object, InspectMessage["transitions"]>();
  return (ev) => {
    if (nc.isClosed()) return;
    if (ev.type === "@xstate.microstep") {
      const list = steps.get(ev.actorRef) ?? [];
      for (const t of ev._transitions as TransitionLike[]) {
        list.push({ source: t.source?.id ?? "", targets: (t.target ?? []).map((n) => n.id ?? ""), event: t.eventType ?? "" });
      }
      steps.set(ev.actorRef, list);
      return;
    }
    if (ev.type !== "@xstate.snapshot") return;
    const snap = ev.snapshot as { value?: unknown; status?: string; context?: unknown; machine?: AnyStateMachine };
    if (snap.value === undefined) return; // promise/callback actors have no states to draw
    const ref = ev.actorRef as { id?: string; logic?: unknown; _parent?: unknown; systemId?: string };
    // A child statechart with a stable system id (the engine's `lease`, an agent's
    // `task-manager:<unit>`) is an actor of its own; other children are drawn inside their parent.
    let role = actor;
    let unit = perUnit ? (o.unit ?? ref.id) : undefined;
    if (ref._parent !== undefined) {
      if (!ref.systemId) return;
      const colon = ref.systemId.indexOf(":");
      role = colon < 0 ? ref.systemId : ref.systemId.slice(0, colon);
      unit = colon < 0 ? (PER_UNIT_ACTORS.has(role) ? o.unit : undefined) : ref.systemId.slice(colon + 1);
    }
    const logic = (snap.machine ?? ref.logic) as AnyStateMachine | undefined;
    const id = unit === undefined ? role : `${role}:${unit}`;
    const subject = names.inspectSubject(machineId, role, unit);
    const seq = (seqs.get(subject) ?? 0) + 1;
    seqs.set(subject, seq);
    const msg: InspectMessage = {
      v: 2,
      machineId,
      session: SESSION,
      actor: role,
      id,
      seq,
      defHash: logic && "root" in logic ? definitionHash(logic) : "",
      event: ev.event.type,
      value: snap.value,
      transitions: steps.get(ev.actorRef) ?? [],
      status: snap.status ?? "active",
      at: Date.now(),
    };
    if (unit !== undefined) msg.unit = unit;
    steps.delete(ev.actorRef);
    if (o.withContext) msg.context = snap.context;
    try {
      nc.publish(subject, JSON.stringify(msg));
    } catch {
      /* inspection is best-effort: never disturb the actor */
    }
  };
}
