// One XState actor system per daemon (issue 11): every role's statechart is a child of one root
// actor, under a stable system id, so `system.get("engine")` (or "machine", "heart", "monitor",
// "agent", "task-manager:<unit>") finds it and one inspector (inspect/publisher.ts) sees every
// step of every actor. The daemon (server.ts, the composition root) makes the system and hands
// it to the parts through ClusterContext.actors; a part used on its own (a unit test, a bench)
// gets a standalone host where each actor is its own small system, as before.
//
// Children are spawned by the root (its SPAWN and STOP events) rather than created with
// `createActor(..., { parent })`: XState refuses to stop a non-root actor directly, and only a
// parent's stopChild unregisters its system id at once, so that a role stopped and started
// again (the monitor restarting the components) takes the same id.
import {
  createActor,
  enqueueActions,
  setup,
  type ActorRefFrom,
  type AnyActorLogic,
  type AnyActorRef,
  type InputFrom,
  type InspectionEvent,
} from "xstate";
import type { Logger } from "pino";

/** XState's clock (SimulatedClock in tests); xstate does not export the type itself. */
export interface Clock {
  setTimeout(fn: (...args: unknown[]) => void, timeout: number): unknown;
  clearTimeout(id: unknown): void;
}
import { describeError } from "../protocol/errors.js";

export interface SpawnOptions<TLogic extends AnyActorLogic> {
  /** The stable id: a role ("engine"), or role:unit ("task-manager:web.service"). */
  systemId: string;
  input?: InputFrom<TLogic>;
}

/** Where the parts of a daemon get their actors from. */
export interface ActorHost {
  /** Starts an actor of `logic` under `systemId` (which must not be taken). */
  spawn<TLogic extends AnyActorLogic>(logic: TLogic, o: SpawnOptions<TLogic>): ActorRefFrom<TLogic>;
  /** Stops an actor spawned here and frees its system id. */
  stop(ref: AnyActorRef): void;
  /** The live actor under a system id. */
  get(systemId: string): AnyActorRef | undefined;
}

type RootEvent =
  | { type: "SPAWN"; logic: AnyActorLogic; systemId: string; input?: unknown }
  | { type: "STOP"; systemId: string }
  | { type: string; error?: unknown };

/** The root of a daemon's system: it only holds its children. */
function rootMachine(log?: Logger) {
  return setup({
    types: { events: {} as RootEvent },
  }).createMachine({
    id: "daemon",
    on: {
      SPAWN: {
        actions: enqueueActions(({ enqueue, event }) => {
          const e = event as Extract<RootEvent, { type: "SPAWN" }>;
          enqueue.spawnChild(e.logic as never, { id: e.systemId, systemId: e.systemId, input: e.input } as never);
        }),
      },
      STOP: {
        actions: enqueueActions(({ enqueue, event }) => enqueue.stopChild((event as Extract<RootEvent, { type: "STOP" }>).systemId)),
      },
      // A child that reached its final state (a task manager detached) leaves the root's
      // children, or a daemon would keep one per unit it ever ran. Only if the child under
      // that id is still the finished one: a new one may have taken the id since.
      "xstate.done.actor.*": {
        actions: enqueueActions(({ enqueue, event, self }) => {
          const id = event.type.slice("xstate.done.actor.".length);
          const child = (self.getSnapshot().children as Record<string, AnyActorRef | undefined>)[id];
          if (child && child.getSnapshot().status !== "active") enqueue.stopChild(child);
        }),
      },
      // A child that fails would otherwise vanish without a word: it has a parent, so XState
      // reports its error to us and nowhere else.
      "xstate.error.actor.*": {
        actions: [
          enqueueActions(({ enqueue, event, self }) => {
            const child = (self.getSnapshot().children as Record<string, AnyActorRef | undefined>)[event.type.slice("xstate.error.actor.".length)];
            if (child && child.getSnapshot().status !== "active") enqueue.stopChild(child);
          }),
          ({ event }) => log?.error({ err: describeError((event as { error?: unknown }).error) }, `actor ${event.type.slice("xstate.error.actor.".length)} failed`),
        ],
      },
    },
  });
}

/** A daemon's one actor system. */
export class ActorSystem implements ActorHost {
  private readonly root;

  constructor(o: { inspect?: (ev: InspectionEvent) => void; log?: Logger } = {}) {
    this.root = createActor(rootMachine(o.log), { inspect: o.inspect });
    this.root.start();
  }

  spawn<TLogic extends AnyActorLogic>(logic: TLogic, o: SpawnOptions<TLogic>): ActorRefFrom<TLogic> {
    if (this.root.system.get(o.systemId)) throw new Error(`an actor with system id "${o.systemId}" runs already in this daemon`);
    this.root.send({ type: "SPAWN", logic, systemId: o.systemId, input: o.input });
    const ref = this.root.system.get(o.systemId) as ActorRefFrom<TLogic> | undefined;
    // Only when spawn is called from inside the root's own step, which nothing here does.
    if (!ref) throw new Error(`actor "${o.systemId}" was not started (spawned while the daemon's actor system was busy)`);
    return ref;
  }

  stop(ref: AnyActorRef): void {
    const id = (ref as { systemId?: string }).systemId;
    if (id !== undefined && this.root.system.get(id) === ref) this.root.send({ type: "STOP", systemId: id });
  }

  get(systemId: string): AnyActorRef | undefined {
    return this.root.system.get(systemId);
  }

  /** The system ids of the live actors the root spawned (for tests and the logs). */
  ids(): string[] {
    return Object.keys(this.root.getSnapshot().children).sort();
  }

  /** Stops every actor (the daemon's last step). */
  close(): void {
    this.root.stop();
  }
}

/**
 * Each actor a system of its own (a part used outside a daemon): the same interface, with the
 * inspector, clock and the rest a caller would give createActor.
 */
export function standaloneHost(o: { inspect?: (ev: InspectionEvent) => void; clock?: Clock } = {}): ActorHost {
  const live = new Map<string, AnyActorRef>();
  return {
    spawn<TLogic extends AnyActorLogic>(logic: TLogic, so: SpawnOptions<TLogic>): ActorRefFrom<TLogic> {
      // Only what is given: createActor spreads its options over its defaults, so an undefined
      // clock would replace the real one.
      const opts: Record<string, unknown> = { id: so.systemId, systemId: so.systemId, input: so.input };
      if (o.inspect) opts.inspect = o.inspect;
      if (o.clock) opts.clock = o.clock;
      const actor = createActor(logic, opts as never);
      live.set(so.systemId, actor as AnyActorRef);
      actor.start();
      return actor as unknown as ActorRefFrom<TLogic>;
    },
    stop(ref: AnyActorRef): void {
      const id = (ref as { systemId?: string }).systemId;
      if (id !== undefined && live.get(id) === ref) live.delete(id);
      (ref as unknown as { stop(): void }).stop();
    },
    get(systemId: string): AnyActorRef | undefined {
      return live.get(systemId);
    },
  };
}
