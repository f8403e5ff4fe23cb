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
