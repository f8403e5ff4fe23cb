// A statechart's definition as a viewer needs it, walked from the real machine (machine.root),
// not from machine.toJSON(): toJSON() drops `always` transitions (the task chart's `accepted`
// comes out with none) and names delayed transitions only by their internal event. Actors,
// guards and actions are referred to by name (CONVENTIONS: named in setup), so they survive.
// Each definition carries a content hash: inspection messages name it, and a viewer that has
// not seen a hash asks for the definitions again.
import { createHash } from "node:crypto";
import type { AnyStateMachine } from "xstate";

export interface TransitionDef {
  kind: "on" | "always" | "after";
  /** The event type ("" for always; xstate.after.<delay>.<state id> for after). */
  event: string;
  /** For after: the delay's name (from setup's delays) or its milliseconds. */
  delay?: string | number;
  guard?: string;
  /** State node ids; empty: a targetless (internal) transition. */
  targets: string[];
  actions: string[];
  reenter?: true;
}

export interface StateNodeDef {
  id: string;
  key: string;
  type: "atomic" | "compound" | "parallel" | "final" | "history";
  initial?: string;
  states: Record<string, StateNodeDef>;
  transitions: TransitionDef[];
  invoke: { id: string; src: string }[];
  tags: string[];
  entry: string[];
  exit: string[];
}

export interface Definition {
  id: string;
  root: StateNodeDef;
}

// The parts of XState's StateNode and TransitionDefinition this walk reads (internal shapes,
// stable across xstate 5.x: checked by test/unit/statecharts.test.ts against the real charts).
interface NodeLike {
  id: string;
  key: string;
  type: StateNodeDef["type"];
  states: Record<string, NodeLike>;
  transitions: Map<string, TransLike[]>;
  always?: TransLike[];
  after: (TransLike & { delay: unknown })[];
  initial?: { target: NodeLike[] };
  invoke: { id: string; src: unknown }[];
  tags: string[];
  entry: unknown[];
  exit: unknown[];
}
interface TransLike {
  eventType: string;
  target?: NodeLike[];
  guard?: unknown;
  actions: unknown[];
  reenter?: boolean;
}

function nameOf(x: unknown): string {
  if (typeof x === "string") return x;
  if (typeof x === "function") return x.name || "(inline)";
  if (x && typeof x === "object" && "type" in x && typeof (x as { type: unknown }).type === "string") return (x as { type: string }).type;
  return "(inline)";
}

function guardName(g: unknown): string | undefined {
  if (g === undefined || g === null) return undefined;
  return nameOf(g);
}

function transition(kind: TransitionDef["kind"], t: TransLike, delay?: unknown): TransitionDef {
  const out: TransitionDef = {
    kind,
    event: kind === "always" ? "" : t.eventType,
    targets: (t.target ?? []).map((n) => n.id),
    actions: (t.actions ?? []).map(nameOf),
  };
  if (delay !== undefined) out.delay = typeof delay === "number" ? delay : nameOf(delay);
  const g = guardName(t.guard);
  if (g) out.guard = g;
  if (t.reenter) out.reenter = true;
  return out;
}

function dropBuiltins(names: string[], builtin: string, count: number): string[] {
  const out = [...names];
  for (let i = 0; i < count; i++) {
    const at = out.lastIndexOf(builtin);
    if (at < 0) break;
    out.splice(at, 1);
  }
  return out;
}

function walk(n: NodeLike): StateNodeDef {
  const afterEvents = new Set(n.after.map((t) => t.eventType));
  const transitions: TransitionDef[] = [];
  for (const [event, ts] of n.transitions) {
    if (afterEvents.has(event)) continue; // listed below with their delays
    for (const t of ts) transitions.push(transition("on", t));
  }
  for (const t of n.after) transitions.push(transition("after", t, t.delay));
  for (const t of n.always ?? []) transitions.push(transition("always", t));
  const states: Record<string, StateNodeDef> = {};
  for (const [k, child] of Object.entries(n.states)) states[k] = walk(child);
  // XState runs each `after` as a delayed raise on entry and its cancel on exit: not the chart's own actions.
  const entry = dropBuiltins(n.entry.map(nameOf), "raise", n.after.length);
  const exit = dropBuiltins(n.exit.map(nameOf), "cancel", n.after.length);
  const def: StateNodeDef = {
    id: n.id,
    key: n.key,
    type: n.type,
    states,
    transitions,
    invoke: n.invoke.map((i) => ({ id: i.id, src: nameOf(i.src) })),
    tags: [...n.tags],
    entry,
    exit,
  };
  const init = n.initial?.target?.[0];
  if (n.type === "compound" && init) def.initial = init.key;
  return def;
}

export function describeMachine(machine: AnyStateMachine): Definition {
  const root = machine.root as unknown as NodeLike;
  return { id: machine.id, root: walk(root) };
}

const hashes = new WeakMap<object, string>();

/** A content hash of the definition (16 hex characters), the same for every .provide() of one chart. */
export function definitionHash(machine: AnyStateMachine): string {
  // Keyed by the config, which every .provide() copy shares: an agent makes one copy per unit,
  // and walking each anew cost about 0.2 ms a unit.
  const key = (machine as { config?: object }).config ?? machine;
  let h = hashes.get(key);
  if (!h) {
    h = createHash("sha256").update(JSON.stringify(describeMachine(machine))).digest("hex").slice(0, 16);
    hashes.set(key, h);
  }
  return h;
}

/** All state node ids of a definition, depth first (for viewers and tests). */
export function stateIds(n: StateNodeDef): string[] {
  return [n.id, ...Object.values(n.states).flatMap(stateIds)];
}

// ---- text formats ----

function mermaidId(id: string): string {
  return id.replace(/[^A-Za-z0-9_]/g, "_");
}

function edgeLabel(t: TransitionDef): string {
  const base = t.kind === "always" ? "always" : t.kind === "after" ? `after ${t.delay}` : t.event;
  return t.guard ? `${base} [${t.guard}]` : base;
}

/** Mermaid stateDiagram-v2 text. */
export function toMermaid(d: Definition): string {
  const lines = ["stateDiagram-v2"];
  const body = (n: StateNodeDef, indent: string): void => {
    const kids = Object.values(n.states);
    if (n.initial) lines.push(`${indent}[*] --> ${mermaidId(n.states[n.initial]!.id)}`);
    for (const k of kids) {
      if (Object.keys(k.states).length) {
        lines.push(`${indent}state "${k.key}" as ${mermaidId(k.id)} {`);
        body(k, indent + "  ");
        lines.push(`${indent}}`);
      } else {
        lines.push(`${indent}state "${k.key}" as ${mermaidId(k.id)}`);
      }
      if (k.type === "final") lines.push(`${indent}${mermaidId(k.id)} --> [*]`);
    }
  };
  body(d.root, "  ");
  const edges = (n: StateNodeDef): void => {
    for (const t of n.transitions) {
      for (const target of t.targets) {
        // Mermaid cannot start an edge at the chart itself: say what applies in every state.
        if (n === d.root) lines.push(`  %% in any state: ${edgeLabel(t)} --> ${target}`);
        else lines.push(`  ${mermaidId(n.id)} --> ${mermaidId(target)}: ${edgeLabel(t)}`);
      }
    }
    for (const k of Object.values(n.states)) edges(k);
  };
  edges(d.root);
  return lines.join("\n") + "\n";
}

/** Graphviz dot text (compound states as clusters). */
export function toDot(d: Definition): string {
  const q = (s: string) => JSON.stringify(s);
  const lines = [`digraph ${q(d.id)} {`, "  compound=true; rankdir=LR; node [shape=box, style=rounded];"];
  const body = (n: StateNodeDef, indent: string): void => {
    for (const k of Object.values(n.states)) {
      if (Object.keys(k.states).length) {
        lines.push(`${indent}subgraph ${q("cluster_" + k.id)} { label=${q(k.key + (k.type === "parallel" ? " (parallel)" : ""))};`);
        lines.push(`${indent}  ${q(k.id)} [label=${q(k.key)}, shape=point];`);
        body(k, indent + "  ");
        lines.push(`${indent}}`);
      } else {
        lines.push(`${indent}${q(k.id)} [label=${q(k.key)}${k.type === "final" ? ", peripheries=2" : ""}];`);
      }
    }
  };
  body(d.root, "  ");
  const edges = (n: StateNodeDef): void => {
    for (const t of n.transitions) for (const target of t.targets) lines.push(`  ${q(n.id)} -> ${q(target)} [label=${q(edgeLabel(t))}];`);
    for (const k of Object.values(n.states)) edges(k);
  };
  edges(d.root);
  lines.push("}");
  return lines.join("\n") + "\n";
}
