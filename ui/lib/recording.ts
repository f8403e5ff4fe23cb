// Recordings: the inspection history as NDJSON, so a failed run can be looked at later with no
// cluster. Line 1 is a header carrying the statechart definitions (the charts are drawn from
// them); every other line is one inspection v2 message, oldest first:
//   {"recording":"flotilla-inspect","v":1,"prefix":"flotilla","recordedAt":1764…,"statecharts":[…]}
//   {"v":2,"machineId":"…","actor":"heart",…}
// A file of bare messages (say `nats sub 'flotilla.inspect.>' --raw > x.ndjson`) opens too.
import { InspectMessage, StatechartList, type Statechart } from "./types.js";

export interface Recording {
  prefix?: string;
  recordedAt?: number;
  statecharts: Statechart[];
  messages: InspectMessage[];
  /** Lines that were neither a header nor a message: "line 7: …". */
  skipped: string[];
}

export function toNdjson(o: { prefix: string; statecharts: Statechart[]; messages: InspectMessage[]; now?: number }): string {
  const header = { recording: "flotilla-inspect", v: 1, prefix: o.prefix, recordedAt: o.now ?? Date.now(), statecharts: o.statecharts };
  return [JSON.stringify(header), ...o.messages.map((m) => JSON.stringify(m))].join("\n") + "\n";
}

export function parseNdjson(text: string): Recording {
  const out: Recording = { statecharts: [], messages: [], skipped: [] };
  const lines = text.split("\n");
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (!line) return;
    let j: unknown;
    try {
      j = JSON.parse(line);
    } catch {
      out.skipped.push(`line ${i + 1}: not JSON`);
      return;
    }
    const o = j as { recording?: unknown };
    if (o && typeof o === "object" && o.recording === "flotilla-inspect") {
      const h = j as { prefix?: string; recordedAt?: number; statecharts?: unknown };
      out.prefix = typeof h.prefix === "string" ? h.prefix : undefined;
      out.recordedAt = typeof h.recordedAt === "number" ? h.recordedAt : undefined;
      const sc = StatechartList.safeParse(h.statecharts ?? []);
      if (sc.success) out.statecharts.push(...sc.data);
      else out.skipped.push(`line ${i + 1}: the statechart definitions do not parse`);
      return;
    }
    const m = InspectMessage.safeParse(j);
    if (m.success) out.messages.push(m.data);
    else out.skipped.push(`line ${i + 1}: not an inspection v2 message`);
  });
  return out;
}
