// Journal: a unit's output from every machine that ran it, the last lines (API verb `journal`)
// then following live (subject <prefix>.journal.<unit>.<machineId>).
import { useEffect, useRef, useState } from "preact/hooks";
import { requestProblem } from "../lib/errors.js";
import { api } from "./client.js";
import { clock, shortId } from "./kit.js";
import { config, conn, nc, unitFiles } from "./store.js";

interface Line {
  machineId: string;
  time: number;
  line: string;
}

function escapeUnit(u: string): string {
  return u.replace(/@/g, "=40").replace(/:/g, "=3A");
}

export function JournalView({ unit }: { unit?: string }) {
  const [lines, setLines] = useState<Line[]>([]);
  const [err, setErr] = useState<string | null>(null);
  const [follow, setFollow] = useState(true);
  const box = useRef<HTMLDivElement>(null);
  const connected = conn.value.state === "connected";
  useEffect(() => {
    setLines([]);
    setErr(null);
    const c = nc.current;
    const cfg = config.value;
    if (!unit || !c || !cfg) return;
    let live = true;
    const dec = new TextDecoder();
    const sub = c.subscribe(`${cfg.prefix}.journal.${escapeUnit(unit)}.*`, {
      callback: (e, m) => {
        if (e || !live) return;
        const parts = m.subject.split(".");
        setLines((l) => [...l, { machineId: parts[parts.length - 1] ?? "", time: Date.now(), line: dec.decode(m.data) }].slice(-5000));
      },
    });
    api<{ lines: Line[] }>(c, cfg.prefix, "journal", { name: unit, lines: 200 })
      .then((r) => live && setLines((l) => [...r.lines, ...l]))
      .catch((e) => live && setErr(`${requestProblem(cfg.prefix, "journal", e as Error).title}: ${(e as Error).message}`));
    return () => {
      live = false;
      sub.unsubscribe();
    };
  }, [unit, connected]);
  useEffect(() => {
    if (follow && box.current) box.current.scrollTop = box.current.scrollHeight;
  }, [lines, follow]);
  return (
    <div class="view">
      <div class="toolbar">
        <label>
          Unit{" "}
          <select value={unit ?? ""} onChange={(e) => (location.hash = `#/journal/${encodeURIComponent((e.target as HTMLSelectElement).value)}`)}>
            <option value="">choose…</option>
            {unitFiles.value.map((f) => (
              <option key={f.unit} value={f.unit}>
                {f.unit}
              </option>
            ))}
          </select>
        </label>
        <label>
          <input type="checkbox" checked={follow} onChange={(e) => setFollow((e.target as HTMLInputElement).checked)} /> follow
        </label>
        <span class="muted small">{lines.length} lines</span>
      </div>
      {err && <div class="problem">{err}</div>}
      {unit ? (
        <div class="journal" ref={box} data-testid="journal">
          {lines.map((l, i) => (
            <div key={i} class="jline">
              <span class="mono muted">{clock(l.time)}</span> <span class="mono muted">{shortId(l.machineId)}</span> <span class="mono">{l.line}</span>
            </div>
          ))}
          {lines.length === 0 && !err && <div class="muted">No output yet.</div>}
        </div>
      ) : (
        <p class="muted">Choose a unit.</p>
      )}
    </div>
  );
}
