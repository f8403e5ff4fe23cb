// Layouts of statecharts by elkjs, run in a Web Worker (elk-worker.js, served next to the
// page), one per definition hash: the same chart on ten machines is laid out once.
import ELK from "elkjs/lib/elk-api.js";
import { buildChartGraph, type ChartGraph, type ElkNode } from "../lib/graph.js";
import type { Statechart } from "../lib/types.js";

export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface LaidEdge {
  id: string;
  points: { x: number; y: number }[];
  label?: { x: number; y: number; w: number; h: number; text: string };
}

export interface Laid {
  g: ChartGraph;
  boxes: Map<string, Box>;
  edges: LaidEdge[];
  width: number;
  height: number;
}

let elk: InstanceType<typeof ELK> | null = null;
const cache = new Map<string, Promise<Laid>>();

export function layoutFor(sc: Statechart): Promise<Laid> {
  let p = cache.get(sc.hash);
  if (!p) {
    p = run(sc).catch((e) => {
      cache.delete(sc.hash);
      throw e;
    });
    cache.set(sc.hash, p);
  }
  return p;
}

async function run(sc: Statechart): Promise<Laid> {
  elk ??= new ELK({ workerUrl: "./elk-worker.js" });
  const g = buildChartGraph(sc.definition);
  const out = (await elk.layout(structuredClone(g.graph) as never)) as unknown as ElkNode;
  const boxes = new Map<string, Box>();
  const raw: { e: NonNullable<ElkNode["edges"]>[number]; owner: string }[] = [];
  const walk = (n: ElkNode, ox: number, oy: number) => {
    const x = ox + (n.x ?? 0);
    const y = oy + (n.y ?? 0);
    boxes.set(n.id, { x, y, w: n.width ?? 0, h: n.height ?? 0 });
    for (const e of n.edges ?? []) raw.push({ e, owner: n.id });
    for (const c of n.children ?? []) walk(c, x, y);
  };
  walk(out, 0, 0);
  const edges: LaidEdge[] = raw.map(({ e, owner }) => {
    const o = boxes.get(e.container ?? owner) ?? { x: 0, y: 0, w: 0, h: 0 };
    const points: { x: number; y: number }[] = [];
    for (const s of e.sections ?? []) {
      points.push({ x: s.startPoint.x + o.x, y: s.startPoint.y + o.y });
      for (const b of s.bendPoints ?? []) points.push({ x: b.x + o.x, y: b.y + o.y });
      points.push({ x: s.endPoint.x + o.x, y: s.endPoint.y + o.y });
    }
    const l = e.labels?.[0];
    return {
      id: e.id,
      points,
      label: l ? { x: (l.x ?? 0) + o.x, y: (l.y ?? 0) + o.y, w: l.width, h: l.height, text: l.text } : undefined,
    };
  });
  return { g, boxes, edges, width: out.width ?? 0, height: out.height ?? 0 };
}
