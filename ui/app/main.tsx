// The statechart visualizer and cluster dashboard: header (connection, recordings), the views,
// routed by the location hash (#/cluster, #/units, #/actor/<key>, #/timeline/<key>, #/journal/<unit>).
import { render } from "preact";
import { signal } from "@preact/signals";
import { ActorView } from "./actor.js";
import { ClusterView } from "./cluster.js";
import { JournalView } from "./journal.js";
import { Dialog, ProblemBox, age, clock } from "./kit.js";
import { TimelineView } from "./timeline.js";
import { UnitsView } from "./units.js";
import {
  config,
  conn,
  historyLoaded,
  listedAt,
  listingProblem,
  now,
  openRecording,
  recordingName,
  recordingText,
  retryNow,
  start,
  streamNote,
  timeAt,
  unknownHashes,
  refetchCharts,
  history,
  credentials,
  signIn,
} from "./store.js";

const route = signal(location.hash);
window.addEventListener("hashchange", () => (route.value = location.hash));

function parseRoute(h: string): { view: string; arg?: string } {
  const [, view = "cluster", ...rest] = h.replace(/^#/, "").split("/");
  const arg = rest.length ? decodeURIComponent(rest.join("/")) : undefined;
  return { view, arg };
}

const opened = signal<string | null>(null);

function download() {
  const blob = new Blob([recordingText()], { type: "application/x-ndjson" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  const d = new Date();
  a.download = `flotilla-${config.value?.prefix ?? "inspect"}-${d.toISOString().replace(/[:.]/g, "-")}.ndjson`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

async function openFile(e: Event) {
  const input = e.target as HTMLInputElement;
  const f = input.files?.[0];
  if (!f) return;
  const skipped = await openRecording(f.name, await f.text());
  opened.value = skipped.length ? `${skipped.length} lines skipped: ${skipped.slice(0, 3).join("; ")}` : null;
  input.value = "";
}

function ConnPill() {
  const c = conn.value;
  const label = {
    idle: "starting",
    connecting: "connecting…",
    connected: "connected",
    reconnecting: "reconnecting…",
    failed: "not connected",
    signin: "sign in",
    recording: "recording",
  }[c.state];
  return (
    <span class={`pill ${c.state}`} data-testid="conn" data-state={c.state} title={config.value?.wsUrl}>
      {label}
    </span>
  );
}

function Banner() {
  const c = conn.value;
  if (c.state === "failed" && c.problem) {
    const wait = c.retryAt ? Math.max(0, Math.ceil((c.retryAt - now.value) / 1000)) : 0;
    return (
      <ProblemBox p={c.problem}>
        <div class="buttons">
          <button class="primary" onClick={retryNow} data-testid="retry">
            Retry now
          </button>
          {wait > 0 && <span class="muted"> retrying in {wait} s</span>}
        </div>
      </ProblemBox>
    );
  }
  if (c.state === "signin") {
    return (
      <ProblemBox p={c.problem ?? { title: "Sign in", detail: "" }}>
        <form
          class="signin"
          data-testid="signin"
          onSubmit={(e) => {
            e.preventDefault();
            const f = new FormData(e.currentTarget as HTMLFormElement);
            signIn({ user: String(f.get("user") ?? ""), pass: String(f.get("pass") ?? "") });
          }}
        >
          <input name="user" placeholder="user" autoComplete="username" defaultValue={credentials.value?.user ?? "operator"} />
          <input name="pass" type="password" placeholder="password" autoComplete="current-password" />
          <button class="primary" type="submit">
            Sign in
          </button>
        </form>
      </ProblemBox>
    );
  }
  if (c.state === "recording") {
    return (
      <div class="note" data-testid="recording-banner">
        Showing the recording <strong>{recordingName.value}</strong>, not a live cluster; actions are off.{" "}
        <button onClick={() => location.reload()}>Back to the live cluster</button>
        {opened.value && <div class="muted small">{opened.value}</div>}
      </div>
    );
  }
  return null;
}

function Notes() {
  const items: preact.ComponentChildren[] = [];
  if (listingProblem.value) items.push(<ProblemBox p={listingProblem.value} />);
  if (streamNote.value) items.push(<div class="note">{streamNote.value}</div>);
  if (unknownHashes.value.size > 0) {
    items.push(
      <div class="note">
        {[...unknownHashes.value.values()][0]}{" "}
        <button onClick={refetchCharts} data-testid="refetch">
          Fetch statecharts again
        </button>
      </div>,
    );
  }
  if (timeAt.value !== null && !route.value.startsWith("#/timeline")) {
    items.push(
      <div class="note time-note">
        Showing the cluster's actors as they were at <span class="mono">{clock(timeAt.value)}</span>.{" "}
        <button onClick={() => (timeAt.value = null)}>Back to live</button>
      </div>,
    );
  }
  return <>{items}</>;
}

function App() {
  const { view, arg } = parseRoute(route.value);
  const tabs: [string, string][] = [
    ["cluster", "Cluster"],
    ["units", "Units"],
    ["actor", "Actors"],
    ["timeline", "Timeline"],
    ["journal", "Journal"],
  ];
  const rec = conn.value.state === "recording";
  return (
    <>
      <header class="top">
        <div class="brand">
          flotilla <span class="muted">{config.value ? config.value.prefix : ""}</span>
        </div>
        <nav class="tabs">
          {tabs.map(([v, label]) => (
            <a key={v} href={`#/${v}`} class={view === v ? "on" : ""} data-tab={v}>
              {label}
            </a>
          ))}
        </nav>
        <div class="right">
          <ConnPill />
          {credentials.value && (
            <button onClick={() => signIn(null)} title="forget the NATS user and password of this tab">
              Sign out {credentials.value.user}
            </button>
          )}
          {!rec && listedAt.value > 0 && <span class="muted small">listed {age(now.value - listedAt.value)} ago</span>}
          {historyLoaded.value !== "all" && conn.value.state === "connected" && <span class="muted small">reading history…</span>}
          <button onClick={download} title="the inspection history as NDJSON" data-testid="download">
            Download recording
          </button>
          <label class="button" title="open an NDJSON recording (no cluster needed)">
            Open recording
            <input type="file" accept=".ndjson,.jsonl,.json,application/x-ndjson" onChange={openFile} data-testid="open-recording" hidden />
          </label>
        </div>
      </header>
      <main>
        <Banner />
        <Notes />
        {(conn.value.state === "failed" || conn.value.state === "signin") && history.count === 0 ? null : (
          <>
        {view === "cluster" && <ClusterView />}
        {view === "units" && <UnitsView />}
        {view === "actor" && <ActorView keyParam={arg} />}
        {view === "timeline" && <TimelineView keyParam={arg} />}
        {view === "journal" && <JournalView unit={arg} />}
          </>
        )}
      </main>
      <Dialog />
    </>
  );
}

render(<App />, document.getElementById("app")!);
void start().catch((e) => {
  conn.value = { state: "failed", problem: { title: "The page could not start", detail: String((e as Error)?.message ?? e) } };
});
