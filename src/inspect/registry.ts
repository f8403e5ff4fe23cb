// Every statechart a daemon runs, by actor kind: what `flotilla statecharts` prints and the API
// verb `statecharts` answers. The definitions are the real machines (their .provide()d copies,
// which the daemon runs, hash the same).
import type { AnyStateMachine } from "xstate";
import { machineMachine } from "../machine/machine.machine.js";
import { heartMachine } from "../machine/heart.machine.js";
import { monitorMachine } from "../machine/monitor.machine.js";
import { leaseMachine } from "../engine/lease.machine.js";
import { engineMachine } from "../engine/engine.machine.js";
import { taskMachine } from "../agent/task.machine.js";
import { agentMachine } from "../agent/agent.machine.js";
import { taskManagerMachine } from "../agent/task-manager.machine.js";
import { FlotillaError } from "../protocol/errors.js";
import { definitionHash, describeMachine, type Definition } from "./definition.js";

export const STATECHARTS: Record<string, AnyStateMachine> = {
  machine: machineMachine,
  heart: heartMachine,
  monitor: monitorMachine,
  engine: engineMachine,
  lease: leaseMachine,
  agent: agentMachine,
  "task-manager": taskManagerMachine,
  task: taskMachine,
};

export interface StatechartInfo {
  actor: string;
  hash: string;
  definition: Definition;
}

export function statechart(actor: string): StatechartInfo {
  const m = STATECHARTS[actor];
  if (!m) {
    throw new FlotillaError("unknown_actor", `no statechart for actor "${actor}"; known: ${Object.keys(STATECHARTS).join(", ")}`, {
      field: "actor",
      value: actor,
    });
  }
  return { actor, hash: definitionHash(m), definition: describeMachine(m) };
}

/** Every statechart, or those matching actor/hash. */
export function statecharts(filter: { actor?: string; hash?: string } = {}): StatechartInfo[] {
  if (filter.actor !== undefined) return [statechart(filter.actor)];
  const all = Object.keys(STATECHARTS).map(statechart);
  if (filter.hash === undefined) return all;
  const hit = all.filter((s) => s.hash === filter.hash);
  if (!hit.length) {
    throw new FlotillaError("unknown_actor", `no statechart has definition hash ${filter.hash} (this daemon runs ${all.map((s) => `${s.actor} ${s.hash}`).join(", ")}); the daemon that sent it runs another version`, {
      field: "hash",
      value: filter.hash,
    });
  }
  return hit;
}
