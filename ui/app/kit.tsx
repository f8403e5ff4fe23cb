// Small shared pieces: the confirm dialog of every action, problem boxes, formatting.
import { signal } from "@preact/signals";
import type { ComponentChildren } from "preact";
import type { Problem } from "../lib/errors.js";
import { requestProblem } from "../lib/errors.js";
import { ApiError } from "./client.js";
import { config } from "./store.js";

export function shortId(id: string): string {
  return id.length > 12 ? id.slice(0, 8) : id;
}

export function clock(ms: number): string {
  const d = new Date(ms);
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

export function age(ms: number): string {
  if (ms < 0) ms = 0;
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 120_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`;
  return `${Math.round(ms / 3_600_000)} h`;
}

export function bytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(1)} GiB`;
  if (n >= 2 ** 20) return `${Math.round(n / 2 ** 20)} MiB`;
  return n === 0 ? "0" : `${n} B`;
}

const GOOD = new Set(["running", "launched", "active", "complete", "beating", "leader", "steady"]);
const BAD = new Set(["failed", "rejected", "orphaned", "error"]);
const WAIT = new Set(["new", "pending", "assigned", "accepted", "preparing", "ready", "starting", "loaded", "shutdown", "remove", "inactive"]);

export function tone(s: string): string {
  if (GOOD.has(s)) return "good";
  if (BAD.has(s)) return "bad";
  if (WAIT.has(s)) return "wait";
  return "plain";
}

export function Chip({ s, title }: { s: string; title?: string }) {
  return (
    <span class={`chip ${tone(s)}`} title={title}>
      {s}
    </span>
  );
}

export function ProblemBox({ p, children }: { p: Problem; children?: ComponentChildren }) {
  return (
    <div class="problem" role="alert">
      <div class="problem-title">{p.title}</div>
      <div>{p.detail}</div>
      {p.fix && <div class="fix">{p.fix}</div>}
      {children}
    </div>
  );
}

// ---- actions: confirmed, their error shown as the API gave it ----

interface Pending {
  title: string;
  detail: string;
  verb: string;
  run: () => Promise<unknown>;
  state: "ask" | "running" | "done" | "error";
  result?: string;
}

export const dialog = signal<Pending | null>(null);

export function confirmAction(title: string, detail: string, verb: string, run: () => Promise<unknown>): void {
  dialog.value = { title, detail, verb, run, state: "ask" };
}

async function go(): Promise<void> {
  const d = dialog.value;
  if (!d) return;
  dialog.value = { ...d, state: "running" };
  try {
    await d.run();
    dialog.value = { ...d, state: "done", result: "Done." };
  } catch (e) {
    const text =
      e instanceof ApiError
        ? `${e.code}: ${e.message}`
        : (() => {
            const p = requestProblem(config.value?.prefix ?? "flotilla", d.verb, e as Error);
            return `${p.title}. ${p.detail}`;
          })();
    dialog.value = { ...d, state: "error", result: text };
  }
}

export function Dialog() {
  const d = dialog.value;
  if (!d) return null;
  const close = () => (dialog.value = null);
  return (
    <div class="backdrop" onClick={(e) => e.target === e.currentTarget && d.state !== "running" && close()}>
      <div class="dialog" role="dialog" aria-modal="true" aria-label={d.title}>
        <h2>{d.title}</h2>
        <p>{d.detail}</p>
        {d.state === "error" && (
          <div class="problem" data-testid="action-error">
            {d.result}
          </div>
        )}
        {d.state === "done" && (
          <div class="ok" data-testid="action-done">
            {d.result}
          </div>
        )}
        <div class="buttons">
          {d.state === "ask" || d.state === "running" ? (
            <>
              <button onClick={close} disabled={d.state === "running"}>
                Cancel
              </button>
              <button class="primary" data-testid="confirm" onClick={() => void go()} disabled={d.state === "running"}>
                {d.state === "running" ? "Working…" : "Confirm"}
              </button>
            </>
          ) : (
            <button class="primary" data-testid="close" onClick={close}>
              Close
            </button>
          )}
        </div>
      </div>
    </div>
  );
}
