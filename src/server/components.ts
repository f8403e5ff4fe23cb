// The long-lived parts the composition root (server.ts) starts after the machine is
// registered, in this order, and stops in reverse. One line per area. A factory returns
// undefined when its part is switched off (the engine under --no-engine).
// Components must allow start() again after stop(): the monitor restarts them all after
// repeated heartbeat failures.
import type { ClusterContext, Component } from "./context.js";
import { createEngine } from "../engine/engine.js";
import { createAgent } from "../agent/agent.js";

export type ComponentFactory = (ctx: ClusterContext) => Component | undefined;

export const componentFactories: { name: string; create: ComponentFactory }[] = [
  { name: "engine", create: (ctx) => (ctx.config.engineEnabled ? createEngine(ctx) : undefined) },
  { name: "agent", create: (ctx) => createAgent(ctx) },
];

/**
 * A component whose start() and stop() run one at a time, in call order. The monitor gives each
 * stop a time budget and then starts the components again; a stop that outlasts its budget (or
 * a start still waiting on NATS when the stop comes) must finish before the next start begins,
 * or the two interleave and leave the component half-started.
 */
export function serialized(c: Component): Component {
  let chain: Promise<unknown> = Promise.resolve();
  const run = (f: () => Promise<void>): Promise<void> => {
    const p = chain.then(f);
    chain = p.catch(() => undefined);
    return p;
  };
  return {
    start: () => run(() => c.start()),
    stop: () => run(() => c.stop()),
    prepareExit: c.prepareExit ? () => run(() => c.prepareExit!()) : undefined,
  };
}

