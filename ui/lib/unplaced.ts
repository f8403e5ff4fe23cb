// Why a unit is not placed, per machine, from the `status` verb's reply. The leader engine
// stores, next to the combined sentence ("2 machines lack region=mars"), which filter refused
// which machines: `refusals: [{why: "lacks region=mars", count: 2, machines: ["m1","m2"]}]`
// (machines capped, count is the full number). Older daemons give only the sentence. Either
// way the page gets rows it can show.
export interface MachineReason {
  machineId: string;
  reason: string;
}

export interface RefusalGroup {
  why: string;
  count: number;
  machines: string[];
}

export interface Unplaced {
  summary: string | null;
  machines: MachineReason[];
  /** By filter, most common first; count may exceed machines.length (the list is capped). */
  groups: RefusalGroup[];
}

function groupsOf(x: unknown): RefusalGroup[] {
  if (!Array.isArray(x)) return [];
  const out: RefusalGroup[] = [];
  for (const g of x) {
    const o = (g ?? {}) as Record<string, unknown>;
    if (typeof o.why !== "string" || !Array.isArray(o.machines)) continue;
    const machines = o.machines.filter((m): m is string => typeof m === "string");
    out.push({ why: o.why, count: typeof o.count === "number" ? o.count : machines.length, machines });
  }
  return out;
}

function rows(x: unknown): MachineReason[] {
  const out: MachineReason[] = [];
  if (Array.isArray(x)) {
    for (const r of x) {
      if (!r || typeof r !== "object") continue;
      const o = r as Record<string, unknown>;
      const id = o.machineId ?? o.machine ?? o.id;
      const why = o.reason ?? o.why ?? o.one ?? o.message;
      if (typeof id === "string" && typeof why === "string") out.push({ machineId: id, reason: why });
    }
  } else if (x && typeof x === "object") {
    for (const [id, why] of Object.entries(x as Record<string, unknown>)) {
      if (typeof why === "string") out.push({ machineId: id, reason: why });
      else if (why && typeof why === "object" && typeof (why as { reason?: unknown }).reason === "string") {
        out.push({ machineId: id, reason: (why as { reason: string }).reason });
      }
    }
  }
  return out.sort((a, b) => (a.machineId < b.machineId ? -1 : a.machineId > b.machineId ? 1 : 0));
}

/** Reads every shape the status reply has had: a string, or {reason, machines|perMachine}, plus top-level per-machine fields. */
export function unplacedOf(status: unknown): Unplaced {
  const s = (status ?? {}) as Record<string, unknown>;
  let summary: string | null = null;
  let machines: MachineReason[] = [];
  const groups = groupsOf(s.refusals);
  for (const g of groups) for (const m of g.machines) machines.push({ machineId: m, reason: g.why });
  const u = s.unplaced;
  if (typeof u === "string") summary = u;
  else if (u && typeof u === "object" && !Array.isArray(u)) {
    const o = u as Record<string, unknown>;
    if (typeof o.reason === "string") summary = o.reason;
    else if (typeof o.summary === "string") summary = o.summary;
    if (!machines.length) machines = rows(o.machines ?? o.perMachine ?? o.byMachine ?? o.reasons);
  } else if (Array.isArray(u) && !machines.length) machines = rows(u);
  if (machines.length === 0) {
    for (const k of ["unplacedMachines", "unplacedReasons", "unplacedByMachine", "reasons"]) {
      if (s[k] !== undefined) {
        machines = rows(s[k]);
        if (machines.length) break;
      }
    }
  }
  machines.sort((a, b) => (a.machineId < b.machineId ? -1 : a.machineId > b.machineId ? 1 : 0));
  return { summary, machines, groups };
}
