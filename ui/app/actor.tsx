// Actor: any actor's statechart drawn from its real definition, its active states, the
// transition just taken, its events with timestamps, its context. Follows the timeline's moment
// when one is picked.
import { latest, stateAt, type ActorHistory } from "../lib/history.js";
import { valueText, type InspectMessage } from "../lib/types.js";
import { Chart } from "./chart.js";
import { Chip, clock, shortId } from "./kit.js";
import { charts, history, historyVersion, loadHash, machines, refetchCharts, timeAt, unknownHashes } from "./store.js";

export function actorsByMachine(): [string, ActorHistory[]][] {
  const by = new Map<string, ActorHistory[]>();
  for (const a of history.actors.values()) {
    const l = by.get(a.machineId) ?? [];
    l.push(a);
    by.set(a.machineId, l);
  }
  const order = ["machine", "heart", "monitor", "engine", "lease", "agent", "task-manager", "task"];
  const rank = (x: string) => (order.indexOf(x) < 0 ? 99 : order.indexOf(x));
  for (const l of by.values()) l.sort((a, b) => rank(a.actor) - rank(b.actor) || (a.id < b.id ? -1 : 1));
  return [...by].sort((a, b) => (a[0] < b[0] ? -1 : 1));
}

export function stepOf(a: ActorHistory): InspectMessage | undefined {
  return timeAt.value === null ? latest(a) : stateAt(a, timeAt.value);
}

// @preact/signals skips a component whose props did not change unless it reads a signal that
// did: the history is mutated in place, so every reader of it reads historyVersion.
export function ActorList({ selected, hrefOf }: { selected?: string; hrefOf: (key: string) => string }) {
  void historyVersion.value;
  const hosts = new Map(machines.value.map((m) => [m.id, m.hostname]));
  return (
    <nav class="actor-list" data-testid="actor-list">
      {actorsByMachine().map(([mid, list]) => (
        <div key={mid} class="actor-group">
          <div class="group-title mono" title={mid}>
            {shortId(mid)} {hosts.get(mid) ? <span class="muted">{hosts.get(mid)}</span> : null}
          </div>
          {list.map((a) => {
            const s = stepOf(a);
            return (
              <a key={a.key} href={hrefOf(a.key)} class={`actor-item${a.key === selected ? " selected" : ""}`} data-actor-key={a.key}>
                <span class="actor-name">{a.unit ? `${a.actor} ${a.unit}` : a.actor}</span>
                <span class={`actor-value${s ? "" : " muted"}`} data-value>
                  {s ? valueText(s.value) : "not started"}
                </span>
              </a>
            );
          })}
        </div>
      ))}
    </nav>
  );
}

export function ActorDetail({ a }: { a: ActorHistory }) {
  void historyVersion.value;
  const step = stepOf(a);
  const sc = step?.defHash ? charts.value.get(step.defHash) : undefined;
  const missing = step?.defHash && !sc ? unknownHashes.value.get(step.defHash) : undefined;
  const upto = timeAt.value;
  const events = (upto === null ? a.msgs : a.msgs.filter((m) => m.at <= upto)).slice(-200).reverse();
  return (
    <div class="actor-detail" data-testid="actor-detail" data-actor={a.key}>
      <header class="actor-head">
        <h2>
          {a.actor}
          {a.unit ? <span class="mono"> {a.unit}</span> : null} <span class="muted small mono">on {shortId(a.machineId)}</span>
        </h2>
        {step && (
          <div class="now-state">
            <Chip s={step.status} /> <span class="mono" data-testid="current-value">{valueText(step.value)}</span>
            <span class="muted"> after {step.event} at {clock(step.at)}</span>
          </div>
        )}
      </header>
      {sc ? (
        <Chart sc={sc} step={step} />
      ) : step?.defHash ? (
        <div class="problem">
          {missing ?? `Fetching the definition ${step.defHash}…`}{" "}
          <button
            onClick={() => {
              refetchCharts();
              void loadHash(step.defHash);
            }}
          >
            Fetch statecharts again
          </button>
        </div>
      ) : (
        <div class="muted">No step of this actor at this moment.</div>
      )}
      <div class="two">
        <section>
          <h3>Events</h3>
          <table class="grid events" data-testid="events">
            <thead>
              <tr>
                <th>Time</th>
                <th>#</th>
                <th>Event</th>
                <th>State after</th>
              </tr>
            </thead>
            <tbody>
              {events.map((m) => (
                <tr key={`${m.session}-${m.seq}`} class={m === step ? "current" : ""} data-at={m.at} data-value={valueText(m.value)}>
                  <td class="mono">{clock(m.at)}</td>
                  <td class="mono muted">{m.seq}</td>
                  <td class="mono" title={m.event}>{m.event}</td>
                  <td class="mono" title={valueText(m.value)}>{valueText(m.value)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
        <section>
          <h3>Context</h3>
          {step?.context !== undefined ? (
            <pre class="context" data-testid="context">
              {JSON.stringify(step.context, null, 2)}
            </pre>
          ) : (
            <p class="muted">This actor does not publish its context.</p>
          )}
          {step && (
            <p class="muted small mono">
              id {a.id} · session {step.session} · definition {step.defHash || "—"}
            </p>
          )}
        </section>
      </div>
    </div>
  );
}

export function ActorView({ keyParam }: { keyParam?: string }) {
  void historyVersion.value;
  const a = keyParam ? history.actors.get(keyParam) : undefined;
  return (
    <div class="view split">
      <ActorList selected={keyParam} hrefOf={(k) => `#/actor/${encodeURIComponent(k)}`} />
      <div class="main-pane">
        {a ? (
          <ActorDetail a={a} />
        ) : keyParam ? (
          <div class="problem" role="alert">
            <div class="problem-title">Unknown actor {keyParam}</div>
            No step of an actor with this id on this machine is in the inspect stream or has arrived live. It may not have started yet, have
            stopped more than the stream's age ago, or the link names another cluster. Pick one on the left.
          </div>
        ) : (
          <p class="muted pad">Pick an actor on the left.</p>
        )}
      </div>
    </div>
  );
}
