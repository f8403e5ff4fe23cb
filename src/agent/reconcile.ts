// fleet's AgentReconciler as a pure function: (desired, current) → tasks, each with its reason.
// Order across units: every unload, then every load, then every stop, then every start (an
// unload frees what a load may need; a stop frees what a start may need).

export type Target = "loaded" | "launched";

export interface DesiredTask {
  unit: string;
  hash: string;
  /** `inactive` entries are treated as absent. */
  desiredState: "inactive" | "loaded" | "launched";
}

export interface CurrentTask {
  unit: string;
  hash: string;
  target: Target;
}

export type TaskAction =
  | { type: "unload"; unit: string; reason: string }
  | { type: "load"; unit: string; reason: string }
  | { type: "stop"; unit: string; reason: string }
  | { type: "start"; unit: string; reason: string };

const ORDER = { unload: 0, load: 1, stop: 2, start: 3 } as const;

export function reconcile(desired: ReadonlyMap<string, DesiredTask>, current: ReadonlyMap<string, CurrentTask>): TaskAction[] {
  const out: TaskAction[] = [];
  for (const cur of current.values()) {
    const want = desired.get(cur.unit);
    if (!want || want.desiredState === "inactive") {
      out.push({
        type: "unload",
        unit: cur.unit,
        reason: want ? "desired state is inactive" : "unit is no longer scheduled to this machine",
      });
    } else if (want.hash !== cur.hash) {
      out.push({ type: "unload", unit: cur.unit, reason: `unit changed (hash ${short(cur.hash)} -> ${short(want.hash)})` });
      out.push({ type: "load", unit: cur.unit, reason: `unit changed: load the new version (${short(want.hash)})` });
      if (want.desiredState === "launched") out.push({ type: "start", unit: cur.unit, reason: "unit changed: start the new version" });
    } else if (want.desiredState === "launched" && cur.target === "loaded") {
      out.push({ type: "start", unit: cur.unit, reason: "unit is loaded but its desired state is launched" });
    } else if (want.desiredState === "loaded" && cur.target === "launched") {
      out.push({ type: "stop", unit: cur.unit, reason: "unit is launched but its desired state is loaded" });
    }
  }
  for (const want of desired.values()) {
    if (want.desiredState === "inactive" || current.has(want.unit)) continue;
    out.push({ type: "load", unit: want.unit, reason: `unit scheduled to this machine (desired ${want.desiredState})` });
    if (want.desiredState === "launched") out.push({ type: "start", unit: want.unit, reason: "unit scheduled to this machine with desired state launched" });
  }
  return out
    .map((a, i) => ({ a, i }))
    .sort((x, y) => ORDER[x.a.type] - ORDER[y.a.type] || x.i - y.i)
    .map((x) => x.a);
}

function short(hash: string): string {
  return hash.slice(0, 7);
}
