// API verb `journal` {"name","lines"?}: the last N lines a unit wrote, from every machine that
// ran it, oldest first: {"unit","lines":[{"machineId","time","line"}]}. Read from the journal
// stream with an ordered consumer filtered to the unit (bounded by the stream's per-subject
// limit); `flotilla journal -f` then follows the subject live.
import { z } from "zod";
import { jetstream, jetstreamManager, DeliverPolicy } from "@nats-io/jetstream";
import type { ClusterContext } from "../server/context.js";
import type { ApiHandlers } from "./service.js";
import { FlotillaError, describeError } from "../protocol/errors.js";
import { isValidUnitName, unescapeUnit } from "../protocol/names.js";
import type { NatsConnection } from "@nats-io/nats-core";
import type { Names } from "../protocol/names.js";

export const JournalRequest = z.object({
  name: z.string().min(1),
  lines: z.number().int().min(1).max(10_000).default(10),
});

export interface JournalLine {
  machineId: string;
  time: number;
  line: string;
}

export interface JournalReply {
  unit: string;
  lines: JournalLine[];
}

export async function readJournal(nc: NatsConnection, names: Names, unit: string, lines: number): Promise<JournalLine[]> {
  const jsm = await jetstreamManager(nc);
  const stream = names.journalStream();
  const filter = names.journalUnitFilter(unit);
  let total = 0;
  try {
    const info = await jsm.streams.info(stream, { subjects_filter: filter });
    for (const n of Object.values(info.state.subjects ?? {})) total += n;
  } catch (e) {
    if (/not found/i.test(describeError(e))) return [];
    throw e;
  }
  if (total === 0) return [];
  const js = jetstream(nc);
  const c = await js.consumers.get(stream, { filter_subjects: filter, deliver_policy: DeliverPolicy.All });
  const ring: JournalLine[] = [];
  const dec = new TextDecoder();
  const deadline = Date.now() + 10_000;
  let seen = 0;
  outer: while (seen < total && Date.now() < deadline) {
    const batch = await c.fetch({ max_messages: Math.min(1000, total - seen), expires: 2000 });
    let got = 0;
    for await (const m of batch) {
      got++;
      seen++;
      const parts = m.subject.split(".");
      ring.push({ machineId: parts[parts.length - 1] ?? "", time: Math.floor(m.info.timestampNanos / 1e6), line: dec.decode(m.data) });
      if (ring.length > lines) ring.shift();
      if (m.info.pending === 0) break outer;
    }
    if (got === 0) break;
  }
  return ring;
}

export function journalHandlers(ctx: ClusterContext): ApiHandlers {
  return {
    journal: async (body) => {
      const parsed = JournalRequest.safeParse(body);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw new FlotillaError("bad_request", `journal: field ${issue?.path.join(".") || "(root)"}: ${issue?.message}`, {
          field: issue?.path.join("."),
        });
      }
      const { name, lines } = parsed.data;
      if (!isValidUnitName(name)) {
        throw new FlotillaError("invalid_unit_name", `"${name}" is not a valid unit name`, { field: "name", value: name });
      }
      const reply: JournalReply = { unit: unescapeUnit(name), lines: await readJournal(ctx.nc, ctx.names, name, lines) };
      return reply;
    },
  };
}
