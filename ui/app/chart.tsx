// One statechart drawn from its definition: states as boxes (compound and parallel states as
// containers, a parallel state's regions dashed), active states filled, the edges of the step
// shown marked. The step is either the actor's latest or the one at the timeline's moment.
import { useEffect, useRef, useState } from "preact/hooks";
import { activeIds } from "../lib/active.js";
import { takenEdges } from "../lib/graph.js";
import type { InspectMessage, Statechart } from "../lib/types.js";
import { layoutFor, type Laid } from "./layout.js";

export function Chart({ sc, step }: { sc: Statechart; step?: InspectMessage }) {
  const [laid, setLaid] = useState<Laid | null>(null);
  const [err, setErr] = useState<string | null>(null);
  const [fit, setFit] = useState(false);
  const wrap = useRef<HTMLDivElement>(null);
  useEffect(() => {
    let live = true;
    setErr(null);
    layoutFor(sc).then(
      (l) => live && setLaid(l),
      (e) => live && setErr(String((e as Error)?.message ?? e)),
    );
    return () => {
      live = false;
    };
  }, [sc.hash]);
  // A chart a little wider than the pane is shrunk to fit (no scrollbar for a few pixels); a
  // much wider one is drawn full size and scrolls.
  useEffect(() => {
    if (laid && wrap.current) setFit(laid.width <= wrap.current.clientWidth * 1.3);
  }, [laid]);
  // Keep the active state in view: charts wider than the pane scroll, centred on the deepest active state.
  const focus = laid && step ? deepestActive(laid, activeIds(sc.definition.root.id, step.value)) : undefined;
  useEffect(() => {
    const w = wrap.current;
    if (!w || !laid || !focus || fit) return;
    const b = laid.boxes.get(focus);
    if (!b) return;
    const visible = b.x >= w.scrollLeft && b.x + b.w <= w.scrollLeft + w.clientWidth && b.y >= w.scrollTop && b.y + b.h <= w.scrollTop + w.clientHeight;
    if (visible) return;
    w.scrollTo({ left: Math.max(0, b.x + b.w / 2 - w.clientWidth / 2), top: Math.max(0, b.y + b.h / 2 - w.clientHeight / 2) });
  }, [laid, focus, fit]);
  if (err) return <div class="problem">The chart of {sc.actor} could not be laid out: {err}</div>;
  if (!laid) return <div class="muted pad">laying out the {sc.actor} chart…</div>;
  const rootId = sc.definition.root.id;
  const active = step ? activeIds(rootId, step.value) : new Set<string>();
  const taken = step ? takenEdges(laid.g, step.transitions) : new Set<string>();
  const nodes = [...laid.g.nodes.values()].filter((n) => n.id !== rootId).sort((a, b) => a.depth - b.depth);
  const edgeMeta = new Map(laid.g.edges.map((e) => [e.id, e]));
  const parents = new Set([...laid.g.nodes.values()].map((n) => n.parent));
  const pad = 4;
  return (
    <div class="chart-outer">
    <div class="chart-tools muted small">
      <span>
        <span class="key key-active" /> active <span class="key key-taken" /> just taken <span class="key key-after" /> after (timer){" "}
        <span class="key key-always" /> always
      </span>
      {(laid.width > 900 || fit) && (
        <button onClick={() => setFit(!fit)} title={fit ? "show at full size" : "shrink the whole chart into view"}>
          {fit ? "Full size" : "Fit to width"}
        </button>
      )}
    </div>
    <div class={`chart-wrap${fit ? " fit" : ""}`} ref={wrap}>
      <svg
        class="chart"
        data-chart={sc.actor}
        viewBox={`${-pad} ${-pad} ${laid.width + 2 * pad} ${laid.height + 2 * pad}`}
        width={laid.width + 2 * pad}
        height={laid.height + 2 * pad}
        role="img"
        aria-label={`statechart ${sc.actor}`}
      >
        <defs>
          <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
            <path d="M0,0 L10,5 L0,10 z" class="arrowhead" />
          </marker>
          <marker id="arrow-taken" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
            <path d="M0,0 L10,5 L0,10 z" class="arrowhead taken" />
          </marker>
        </defs>
        {nodes.map((n) => {
          const b = laid.boxes.get(n.id);
          if (!b) return null;
          if (n.type === "initial") return <circle key={n.id} class="initial" cx={b.x + b.w / 2} cy={b.y + b.h / 2} r={5} />;
          const parentType = n.parent ? laid.g.nodes.get(n.parent)?.type : undefined;
          const container = parents.has(n.id);
          const cls = [
            "state",
            `t-${n.type}`,
            container ? "container" : "leaf",
            parentType === "parallel" ? "region" : "",
            active.has(n.id) ? "active" : "",
          ].join(" ");
          return (
            <g key={n.id} class={cls} data-state-id={n.id} data-active={active.has(n.id) ? "true" : "false"}>
              <rect x={b.x} y={b.y} width={b.w} height={b.h} rx={container ? 8 : 6} />
              {n.type === "final" && <rect class="final-inner" x={b.x + 3} y={b.y + 3} width={b.w - 6} height={b.h - 6} rx={4} />}
              {container ? (
                <text x={b.x + 10} y={b.y + 19} class="label container-label">
                  {n.key}
                  {n.type === "parallel" ? "  ∥" : ""}
                </text>
              ) : (
                <text x={b.x + b.w / 2} y={b.y + b.h / 2 + 4} class="label" text-anchor="middle">
                  {n.key}
                </text>
              )}
            </g>
          );
        })}
        {laid.edges.map((e) => {
          const meta = edgeMeta.get(e.id);
          if (!meta || e.points.length < 2) return null;
          const isTaken = taken.has(e.id);
          const d = e.points.map((p, i) => `${i ? "L" : "M"}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(" ");
          return (
            <g key={e.id} class={`edge k-${meta.kind}${isTaken ? " taken" : ""}`} data-edge={meta.label} data-taken={isTaken ? "true" : "false"}>
              <path d={d} marker-end={isTaken ? "url(#arrow-taken)" : "url(#arrow)"} />
              {e.label && (
                <g class="edge-label">
                  <rect x={e.label.x - 2} y={e.label.y - 1} width={e.label.w + 4} height={e.label.h + 2} rx={3} />
                  <text x={e.label.x} y={e.label.y + e.label.h - 3}>
                    {e.label.text}
                  </text>
                </g>
              )}
            </g>
          );
        })}
      </svg>
    </div>
      {laid.g.rootTransitions.length > 0 && (
        <div class="root-transitions muted">
          In any state:{" "}
          {laid.g.rootTransitions.map((t) => (
            <span class="chip" key={t.label}>
              {t.label} → {t.targets.map((x) => x.split(".").slice(1).join(".") || x).join(", ") || "(stays)"}
            </span>
          ))}
        </div>
      )}
    </div>
  );
}

function deepestActive(laid: Laid, active: Set<string>): string | undefined {
  let best: string | undefined;
  let depth = -1;
  for (const id of active) {
    const n = laid.g.nodes.get(id);
    if (n && n.depth > depth) {
      best = id;
      depth = n.depth;
    }
  }
  return best;
}
