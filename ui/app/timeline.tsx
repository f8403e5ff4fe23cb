// Timeline: a scrubber over the inspect stream's history. The moment picked here is the whole
// page's: every chart and list shows the state each actor had then, until "Live".
import { allSteps, density, leaseHistory } from "../lib/history.js";
import { valueText } from "../lib/types.js";
import { ActorDetail, actorsByMachine, stepOf } from "./actor.js";
import { clock, shortId } from "./kit.js";
import { history, historyLoaded, historyVersion, timeAt } from "./store.js";

export function TimeControl() {
  void historyVersion.value;
  const first = history.first;
  const last = history.last;
  if (!Number.isFinite(first)) return <p class="muted">No history yet.</p>;
  const t = timeAt.value ?? last;
  const jump = (dir: -1 | 1) => {
    const steps = allSteps(history).map((m) => m.at);
    const to = dir < 0 ? [...steps].reverse().find((x) => x < t) : steps.find((x) => x > t);
    if (to !== undefined) timeAt.value = to;
  };
  return (
    <div class="time-control" data-testid="time-control">
      <button onClick={() => jump(-1)} disabled={t <= first} title="previous step">
        ◀ step
      </button>
      <input
        type="range"
        data-testid="scrubber"
        min={first}
        max={last}
        step={1}
        value={t}
        onInput={(e) => (timeAt.value = Number((e.target as HTMLInputElement).value))}
      />
      <button onClick={() => jump(1)} disabled={t >= last} title="next step">
        step ▶
      </button>
      <span class="mono when" data-testid="time-at">
        {timeAt.value === null ? "live" : clock(timeAt.value)}
      </span>
      <button class={timeAt.value === null ? "primary" : ""} onClick={() => (timeAt.value = null)} data-testid="live">
        Live
      </button>
      <DensityStrip t={t} />
      <span class="muted small">
        {clock(first)} – {clock(last)} · {history.count} steps{historyLoaded.value !== "all" ? " (loading history…)" : ""}
      </span>
    </div>
  );
}

const BINS = 240;

/** Steps over time (bars) with the lease's leader changes (amber) and the chosen moment; a click picks a moment. */
function DensityStrip({ t }: { t: number }) {
  const first = history.first;
  const span = Math.max(1, history.last - first);
  const bins = density(history, BINS);
  const max = Math.max(1, ...bins);
  const x = (at: number) => ((at - first) / span) * BINS;
  const changes = leaseHistory(history).changes;
  return (
    <svg
      class="density"
      data-testid="density"
      viewBox={`0 0 ${BINS} 24`}
      preserveAspectRatio="none"
      onClick={(e) => {
        const r = (e.currentTarget as SVGSVGElement).getBoundingClientRect();
        timeAt.value = Math.round(first + ((e.clientX - r.left) / r.width) * span);
      }}
    >
      <title>steps over time; amber: the engine lease changed hands; click to go there</title>
      {bins.map((n, i) => (n ? <rect key={i} class="bar" x={i + 0.1} width={0.8} y={24 - (n / max) * 22} height={(n / max) * 22} /> : null))}
      {changes.map((c) => (
        <rect key={`${c.at}-${c.machineId}`} class="lease-mark" x={x(c.at) - 0.4} width={0.8} y={0} height={24} />
      ))}
      <rect class="now-mark" x={x(t) - 0.3} width={0.6} y={0} height={24} />
    </svg>
  );
}

export function TimelineView({ keyParam }: { keyParam?: string }) {
  void historyVersion.value;
  const sel = keyParam ? history.actors.get(keyParam) : undefined;
  return (
    <div class="view">
      <TimeControl />
      <div class="split wide-left">
        <table class="grid timeline-table" data-testid="timeline-table">
          <thead>
            <tr>
              <th>Machine</th>
              <th>Actor</th>
              <th>State then</th>
              <th>Since</th>
            </tr>
          </thead>
          <tbody>
            {actorsByMachine().flatMap(([mid, list]) =>
              list.map((a) => {
                const s = stepOf(a);
                return (
                  <tr key={a.key} data-actor-key={a.key} class={a.key === keyParam ? "selected" : ""}>
                    <td class="mono">{shortId(mid)}</td>
                    <td>
                      <a href={`#/timeline/${encodeURIComponent(a.key)}`}>{a.unit ? `${a.actor} ${a.unit}` : a.actor}</a>
                    </td>
                    <td class="mono" data-value>
                      {s ? valueText(s.value) : <span class="muted">not started</span>}
                    </td>
                    <td class="mono muted">{s ? clock(s.at) : ""}</td>
                  </tr>
                );
              }),
            )}
          </tbody>
        </table>
        <div class="main-pane">{sel ? <ActorDetail a={sel} /> : <p class="muted pad">Pick an actor to see its chart at this moment.</p>}</div>
      </div>
    </div>
  );
}
