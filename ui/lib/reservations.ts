// Capacity used per machine: the CPU= and Memory= reservations of [X-Fleet] (flotilla's, see
// src/unit/fleet-options.ts) of every wanted unit the schedule puts there, as the leader's
// scheduler counts them. The stored unit files were validated at submit, so this reads only
// those two keys and skips what it does not understand.
export interface Reservation {
  cpu: number;
  memory: number;
}

const SIZE: Record<string, number> = { "": 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3, t: 1024 ** 4, tb: 1024 ** 4, tib: 1024 ** 4 };

export function reservationOf(contents: string): Reservation {
  const out: Reservation = { cpu: 0, memory: 0 };
  let section = "";
  for (const raw of contents.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#") || line.startsWith(";")) continue;
    const sec = /^\[(.+)\]$/.exec(line);
    if (sec) {
      section = sec[1]!;
      continue;
    }
    if (section !== "X-Fleet") continue;
    const kv = /^([A-Za-z]+)\s*=\s*(.*)$/.exec(line);
    if (!kv) continue;
    if (kv[1] === "CPU") {
      const n = Number(kv[2]);
      if (Number.isFinite(n) && n > 0) out.cpu = n;
    } else if (kv[1] === "Memory") {
      const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(kv[2]!.trim());
      const mult = m ? SIZE[m[2]!.toLowerCase()] : undefined;
      if (m && mult !== undefined) out.memory = Math.round(Number(m[1]) * mult);
    }
  }
  return out;
}

/** Sums reservations per machine: units are { machines it is scheduled on, its reservation }. */
export function usedByMachine(units: { machines: string[]; r: Reservation | undefined }[]): Map<string, Reservation> {
  const out = new Map<string, Reservation>();
  for (const u of units) {
    if (!u.r || (!u.r.cpu && !u.r.memory)) continue;
    for (const m of u.machines) {
      const cur = out.get(m) ?? { cpu: 0, memory: 0 };
      cur.cpu += u.r.cpu;
      cur.memory += u.r.memory;
      out.set(m, cur);
    }
  }
  return out;
}
