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
  /**
   * Include the snapshot's context (only for actors whose context is small and JSON-safe):
   * true for every actor this inspector sees, or the roles that do.
   */
  withContext?: boolean | ReadonlySet<string>;
  /** The unit of a per-unit actor system (a task manager): its children (the task) carry it too. */
  unit?: string;
}

/** The roles whose context a daemon's inspector publishes (small, JSON-safe). */
export const CONTEXT_ACTORS: ReadonlySet<string> = new Set(["machine", "engine", "agent"]);

interface RefLike {
  id?: string;
  logic?: unknown;
  _parent?: RefLike;
  systemId?: string;
}

function fromSystemId(systemId: string): { role: string; unit?: string } {
  const colon = systemId.indexOf(":");
  return colon < 0 ? { role: systemId } : { role: systemId.slice(0, colon), unit: systemId.slice(colon + 1) };
}

/**
 * Which actor a step belongs to. An actor with a stable system id is an actor of its own (a
 * daemon's roles, the engine's `lease`, `task-manager:<unit>`); a per-unit child without one
 * (a task manager's `task` attempt) takes its parent's unit; a root without one is `actor`
 * (an inspector made for one actor); any other child is drawn inside its parent.
 */
function identify(ref: RefLike, actor: string | undefined, o: InspectorOptions): { role: string; unit?: string } | undefined {
  if (ref.systemId) {
    const id = fromSystemId(ref.systemId);
    return id.unit === undefined && PER_UNIT_ACTORS.has(id.role) && o.unit !== undefined ? { role: id.role, unit: o.unit } : id;
  }
  if (ref._parent === undefined) {
    if (actor === undefined) return undefined;
    return PER_UNIT_ACTORS.has(actor) ? { role: actor, unit: o.unit ?? ref.id } : { role: actor };
  }
  if (ref.id && PER_UNIT_ACTORS.has(ref.id)) {
    const unit = (ref._parent.systemId ? fromSystemId(ref._parent.systemId).unit : undefined) ?? o.unit;
    if (unit !== undefined) return { role: ref.id, unit };
  }
  return undefined;
}

/** Per subject, for the daemon's whole life: an actor made anew (a unit loaded again) keeps counting. */
const seqs = new Map<string, number>();

interface TransitionLike {
  source?: { id?: string };
  target?: { id?: string }[];
  eventType?: string;
}

/**
 * An inspector for one actor (`actor`: its role) and its children, or, with `actor` undefined,
 * for a daemon's whole actor system (server/actor-system.ts): every actor by its system id.
 */
export function inspector(
  nc: NatsConnection,
  names: Names,
  machineId: string,
  actor: string | undefined,
  o: InspectorOptions = {},
): (ev: InspectionEvent) => void {
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
    const ref = ev.actorRef as RefLike;
    const who = identify(ref, actor, o);
    if (!who) return;
    const { role, unit } = who;
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
    if (o.withContext === true || (o.withContext && o.withContext.has(role))) msg.context = snap.context;
    try {
      nc.publish(subject, JSON.stringify(msg));
    } catch {
      /* inspection is best-effort: never disturb the actor */
    }
  };
}
