// A statechart definition (API verb `statecharts`) -> the graph elkjs lays out.
//
// Every state node becomes an ELK node nested as in the chart: compound and parallel states are
// containers (a parallel state's regions are containers side by side), a compound state gets an
// initial pseudo-node (the small dot) with an edge to its initial child. Every transition with
// targets becomes one edge per target, labelled by what triggers it (the event, "always", or
// "after <delay>", with its guard), and is placed in the lowest common ancestor of its source
// and target: ELK with hierarchyHandling INCLUDE_CHILDREN routes edges across levels, and an
// edge's coordinates come back relative to the node that contains it. Targetless transitions
// (actions only) are drawn as self-loops. Transitions of the machine's root have no node to
// leave from; they are listed beside the chart (rootTransitions).
import type { Def, StateNodeDef, TransitionDef } from "./types.js";

export interface ElkLabel {
  text: string;
  width: number;
  height: number;
  x?: number;
  y?: number;
}

export interface ElkEdge {
  id: string;
  sources: string[];
  targets: string[];
  labels?: ElkLabel[];
  sections?: { startPoint: { x: number; y: number }; endPoint: { x: number; y: number }; bendPoints?: { x: number; y: number }[] }[];
  container?: string;
}

export interface ElkNode {
  id: string;
  width?: number;
  height?: number;
  x?: number;
  y?: number;
  labels?: ElkLabel[];
  children?: ElkNode[];
  edges?: ElkEdge[];
  layoutOptions?: Record<string, string>;
}

export interface NodeMeta {
  id: string;
  key: string;
  type: StateNodeDef["type"] | "initial";
  parent?: string;
  depth: number;
}

export interface EdgeMeta {
  id: string;
  source: string;
  target: string;
  kind: TransitionDef["kind"] | "initial";
  /** The event type the transition waits for ("" for always and initial). */
  event: string;
  label: string;
  container: string;
  internal: boolean;
}

export interface ChartGraph {
  graph: ElkNode;
  nodes: Map<string, NodeMeta>;
  edges: EdgeMeta[];
  rootTransitions: { label: string; targets: string[] }[];
}

const CHAR_W = 7.2;
const EDGE_CHAR_W = 6.4;

/** XState's own event names, shortened for a label: xstate.done.actor.beat -> "done: beat". */
export function shortEvent(e: string): string {
  const m = /^xstate\.(done|error)\.actor\.(.+)$/.exec(e);
  if (m) return `${m[1]}: ${m[2]}`;
  return e;
}

export function transitionLabel(t: TransitionDef): string {
  let base: string;
  if (t.kind === "always") base = "always";
  else if (t.kind === "after") base = `after ${typeof t.delay === "number" ? `${t.delay} ms` : (t.delay ?? t.event)}`;
  else base = shortEvent(t.event);
  return t.guard ? `${base} [${t.guard}]` : base;
}

/** Ancestors of a state node id, nearest first, ending with the root ("a.b.c" -> "a.b", "a"). */
export function ancestors(id: string, nodes: Map<string, NodeMeta>): string[] {
  const out: string[] = [];
  let p = nodes.get(id)?.parent;
  while (p !== undefined) {
    out.push(p);
    p = nodes.get(p)?.parent;
  }
  return out;
}

/**
 * The node an edge between source and target belongs to: the lowest node that contains both,
 * a node containing itself and its descendants (an edge between a compound state and one of
 * its own children lives in that compound state). A self-loop lives in the node's parent.
 */
export function lowestCommonAncestor(source: string, target: string, nodes: Map<string, NodeMeta>): string {
  const srcChain = [source, ...ancestors(source, nodes)];
  if (source === target) return srcChain[1] ?? source;
  const tgtChain = new Set([target, ...ancestors(target, nodes)]);
  for (const a of srcChain) if (tgtChain.has(a)) return a;
  return srcChain[srcChain.length - 1]!;
}

export function buildChartGraph(def: Def): ChartGraph {
  const nodes = new Map<string, NodeMeta>();
  const edges: EdgeMeta[] = [];
  const elkById = new Map<string, ElkNode>();
  const rootTransitions: ChartGraph["rootTransitions"] = [];

  const mk = (s: StateNodeDef, parent: string | undefined, depth: number): ElkNode => {
    nodes.set(s.id, { id: s.id, key: s.key, type: s.type, parent, depth });
    const kids = Object.values(s.states ?? {});
    const label = s.key;
    const n: ElkNode = { id: s.id, labels: [{ text: label, width: label.length * CHAR_W, height: 16 }] };
    elkById.set(s.id, n);
    if (kids.length > 0) {
      n.children = [];
      n.edges = [];
      n.layoutOptions = {
        "elk.padding": "[top=30,left=14,bottom=14,right=14]",
        "elk.nodeSize.constraints": "MINIMUM_SIZE",
        "elk.nodeSize.minimum": `(${Math.max(60, label.length * CHAR_W + 28)},40)`,
      };
      if (s.type === "parallel") n.layoutOptions["elk.direction"] = "DOWN";
      if (s.type === "compound" && s.initial && parent !== undefined) {
        const initId = `${s.id}.__initial`;
        nodes.set(initId, { id: initId, key: "", type: "initial", parent: s.id, depth: depth + 1 });
        n.children.push({ id: initId, width: 12, height: 12 });
      }
      for (const k of kids) n.children.push(mk(k, s.id, depth + 1));
    } else {
      n.width = Math.max(72, label.length * CHAR_W + 28);
      n.height = 34;
    }
    return n;
  };
  const graph = mk(def.root, undefined, 0);
  graph.layoutOptions = {
    ...(graph.layoutOptions ?? {}),
    "elk.algorithm": "layered",
    "elk.direction": "RIGHT",
    "elk.hierarchyHandling": "INCLUDE_CHILDREN",
    "elk.edgeRouting": "ORTHOGONAL",
    "elk.layered.spacing.nodeNodeBetweenLayers": "48",
    "elk.spacing.nodeNode": "28",
    "elk.spacing.edgeEdge": "14",
    "elk.spacing.edgeNode": "16",
    "elk.layered.spacing.edgeNodeBetweenLayers": "16",
    "elk.layered.spacing.edgeEdgeBetweenLayers": "12",
    "elk.spacing.edgeLabel": "4",
    "elk.edgeLabels.inline": "false",
    "elk.padding": "[top=16,left=16,bottom=16,right=16]",
  };
  delete graph.width;
  delete graph.height;
  delete graph.labels;

  let n = 0;
  const addEdge = (source: string, target: string, kind: EdgeMeta["kind"], event: string, label: string, internal: boolean) => {
    const container = lowestCommonAncestor(source, target, nodes);
    const id = `e${n++}`;
    edges.push({ id, source, target, kind, event, label, container, internal });
    const c = elkById.get(container)!;
    c.edges ??= [];
    const e: ElkEdge = { id, sources: [source], targets: [target] };
    if (label) e.labels = [{ text: label, width: label.length * EDGE_CHAR_W, height: 13 }];
    c.edges.push(e);
  };

  const walk = (s: StateNodeDef): void => {
    if (s.type === "compound" && s.initial && s.id !== def.root.id) {
      const child = s.states[s.initial];
      if (child) addEdge(`${s.id}.__initial`, child.id, "initial", "", "", false);
    }
    for (const t of s.transitions ?? []) {
      const label = transitionLabel(t);
      if (s.id === def.root.id) {
        rootTransitions.push({ label, targets: t.targets });
        continue;
      }
      const targets = t.targets.filter((x) => nodes.has(x));
      if (t.targets.length === 0) addEdge(s.id, s.id, t.kind, t.event, label, true);
      for (const target of targets) addEdge(s.id, target, t.kind, t.event, label, false);
    }
    for (const k of Object.values(s.states ?? {})) walk(k);
  };
  walk(def.root);

  // The root's initial child gets a dot too (in the root container).
  if (def.root.initial && def.root.states[def.root.initial]) {
    const initId = `${def.root.id}.__initial`;
    nodes.set(initId, { id: initId, key: "", type: "initial", parent: def.root.id, depth: 1 });
    graph.children = [{ id: initId, width: 12, height: 12 }, ...(graph.children ?? [])];
    addEdge(initId, def.root.states[def.root.initial]!.id, "initial", "", "", false);
  }
  return { graph, nodes, edges, rootTransitions };
}

/**
 * Which edges a step took: a message's transitions are {source, targets, event}; an edge matches
 * when it leaves that source for one of those targets on that event (or, for always/after, from
 * that source to that target).
 */
export function takenEdges(g: ChartGraph, transitions: { source: string; targets: string[]; event: string }[]): Set<string> {
  const out = new Set<string>();
  for (const t of transitions) {
    for (const e of g.edges) {
      if (e.kind === "initial" || e.source !== t.source) continue;
      const toTarget = t.targets.length === 0 ? e.internal : t.targets.includes(e.target);
      if (!toTarget) continue;
      if (e.kind === "on" && t.event && e.event !== t.event && e.event !== "*") continue;
      out.add(e.id);
    }
  }
  return out;
}
