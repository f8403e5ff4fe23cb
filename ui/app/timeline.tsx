// Timeline: a scrubber over the inspect stream's history. The moment picked here is the whole
// page's: every chart and list shows the state each actor had then, until "Live".
import { allSteps } from "../lib/history.js";
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
      <span class="muted small">
        {clock(first)} – {clock(last)} · {history.count} steps{historyLoaded.value !== "all" ? " (loading history…)" : ""}
      </span>
    </div>
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
