// API verb `journal` {"name","lines"?,"before"?}: the last N lines a unit wrote (before the
// stream sequence `before`, when given), from every machine that ran it, oldest first:
// {"unit","lines":[{"machineId","time","line","seq"}],"more"?,"next"?}. A reply holds what fits
// in one NATS message; `more: true` says older lines exist and `next` is the `before` that asks
// for them (the seq of the oldest line returned), so N lines of any size page through.
// `flotilla journal -f` then follows the subject live.
//
// Only about N messages are read, however many the stream keeps for the unit (up to 10,000 per
// machine): the read starts at the sequence after which about N of the unit's lines remain. That
// sequence is found by probing: a consumer created at a start sequence reports, in its create
// reply, how many messages of the filter lie at or after it (num_pending). A few probes (an
// interpolation guess, then halving) land within [N, N + slack]; nats-server 2.9 has no
// multi-filter consumers nor batched direct gets, and this needs neither.
import { z } from "zod";
import { jetstream, jetstreamManager, AckPolicy, DeliverPolicy, type JetStreamManager } from "@nats-io/jetstream";
import { nanos } from "@nats-io/nats-core";
import type { ClusterContext } from "../server/context.js";
import type { ApiHandlers } from "./service.js";
import { FlotillaError, describeError, showValue } from "../protocol/errors.js";
import { unescapeUnit } from "../protocol/names.js";
import type { NatsConnection } from "@nats-io/nats-core";
import type { Names } from "../protocol/names.js";
import { normalizeUnitName } from "../unit/names.js";
import { parseRequest } from "./request.js";

export const MAX_JOURNAL_LINES = 10_000;

export const JournalRequest = z
  .object({
    name: z.string().min(1).max(255),
    lines: z.number().int().min(1).max(MAX_JOURNAL_LINES).default(10),
    /** Only lines stored before this stream sequence: a reply's `next`, for the page before it. */
    before: z.number().int().min(1).optional(),
  })
  .strict();

export interface JournalLine {
  machineId: string;
  time: number;
  line: string;
  /** Its sequence in the journal stream (a page's cursor). */
  seq: number;
}

export interface JournalReply {
  unit: string;
  lines: JournalLine[];
  /** Older lines left out so that the reply fits in the server's max_payload (absent: none). */
  omitted?: number;
  /** Older lines of the unit exist (left out to fit, or before the N asked for). */
  more?: boolean;
  /** With more: the `before` of the request for the lines older than these. */
  next?: number;
}

/** Room kept in a reply for its headers and the JSON around the lines. */
const REPLY_MARGIN = 16 * 1024;

/**
 * The newest lines whose JSON fits in maxBytes: 10,000 lines of up to 16 KiB each is far more
 * than the 1 MiB a NATS message holds by default, and a reply that cannot be sent is no answer.
 */
export function fitReply(lines: JournalLine[], maxBytes: number): { lines: JournalLine[]; omitted: number } {
  let bytes = 0;
  let i = lines.length;
  while (i > 0) {
    const size = Buffer.byteLength(JSON.stringify(lines[i - 1]), "utf8") + 1;
    if (bytes + size > maxBytes) break;
    bytes += size;
    i--;
  }
  return { lines: i === 0 ? lines : lines.slice(i), omitted: i };
}

/** What a read cost: messages delivered and start sequences probed (tests assert on them). */
export interface JournalReadStats {
  delivered: number;
  probes: number;
}

/** Probes at most this many start sequences, then reads from the best one found. */
const MAX_PROBES = 40;

/** Lines past N a read may deliver (and drop) to save probes. */
const slackFor = (lines: number): number => Math.max(16, lines >> 2);

async function addProbe(jsm: JetStreamManager, stream: string, filter: string, seq: number) {
  return jsm.consumers.add(stream, {
    filter_subject: filter,
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: seq,
    ack_policy: AckPolicy.None,
    mem_storage: true,
    // Cleans up after a daemon that died mid-read.
    inactive_threshold: nanos(30_000),
  });
}

/** The last `lines` lines of the unit stored before `before` (all: none given), and how many such lines there are. */
export async function readJournal(
  nc: NatsConnection,
  names: Names,
  unit: string,
  lines: number,
  stats: JournalReadStats = { delivered: 0, probes: 0 },
  before?: number,
): Promise<{ lines: JournalLine[]; total: number }> {
  const jsm = await jetstreamManager(nc);
  const stream = names.journalStream();
  const filter = names.journalUnitFilter(unit);
  let total = 0;
  let firstSeq = 0;
  let lastSeq = 0;
  let subjects: string[] = [];
  try {
    const info = await jsm.streams.info(stream, { subjects_filter: filter });
    for (const n of Object.values(info.state.subjects ?? {})) total += n;
    subjects = Object.keys(info.state.subjects ?? {});
    firstSeq = info.state.first_seq;
    lastSeq = info.state.last_seq;
  } catch (e) {
    if (/not found/i.test(describeError(e))) return { lines: [], total: 0 };
    throw e;
  }
  if (total === 0) return { lines: [], total: 0 };
  const made: string[] = [];
  // Lines at or after `before` count as absent: pending(before) of them are subtracted below.
  let pEnd = 0;
  if (before !== undefined) {
    if (before <= firstSeq) return { lines: [], total: 0 };
    if (before <= lastSeq) {
      const ci = await addProbe(jsm, stream, filter, before);
      void jsm.consumers.delete(stream, ci.name).catch(() => undefined);
      stats.probes++;
      pEnd = ci.num_pending;
      total -= pEnd;
      lastSeq = before - 1;
      if (total <= 0) return { lines: [], total: 0 };
    }
  }
  if (before === undefined && total > lines + slackFor(lines) && subjects.length <= 8) {
    // The search ends at the unit's last line, not the stream's (other units may have written
    // much since): one get per machine that ran it.
    const lasts = await Promise.all(
      subjects.map((subj) => jsm.streams.getMessage(stream, { last_by_subj: subj }).then((m) => m?.seq ?? lastSeq, () => lastSeq)),
    );
    lastSeq = Math.min(lastSeq, Math.max(...lasts));
  }

  const slack = slackFor(lines);
  try {
    // Counts are of lines before the end (pending minus pEnd). Invariant: count(lo) >= lines >
    // count(hi); count(firstSeq) = total, count(lastSeq + 1) = 0.
    let lo = firstSeq;
    let pLo = total;
    let hi = lastSeq + 1;
    let pHi = 0;
    let chosen: { name: string; pending: number } | undefined;
    if (total <= lines + slack) {
      const ci = await addProbe(jsm, stream, filter, firstSeq);
      made.push(ci.name);
      stats.probes++;
      chosen = { name: ci.name, pending: ci.num_pending - pEnd };
    }
    for (let i = 0; !chosen && i < MAX_PROBES && hi - lo > 1; i++) {
      let seq: number;
      if (i % 2 === 0) {
        // Interpolate as if the unit's lines were spread evenly between lo and hi.
        const target = lines + slack / 2;
        seq = Math.round(hi - ((target - pHi) * (hi - lo)) / Math.max(1, pLo - pHi));
      } else {
        seq = Math.floor((lo + hi) / 2);
      }
      seq = Math.min(hi - 1, Math.max(lo + 1, seq));
      const ci = await addProbe(jsm, stream, filter, seq);
      stats.probes++;
      const p = ci.num_pending - pEnd;
      if (p >= lines && p <= lines + slack) chosen = { name: ci.name, pending: p };
      else if (p >= lines) {
        lo = seq;
        pLo = p;
      } else {
        hi = seq;
        pHi = p;
      }
      // Probes that did not land are dropped at once; the chosen one is read, then deleted.
      if (chosen) made.push(ci.name);
      else void jsm.consumers.delete(stream, ci.name).catch(() => undefined);
    }
    if (!chosen) {
      // Out of probes (or a stream changing under us): read from lo, which holds at least N.
      const ci = await addProbe(jsm, stream, filter, lo);
      made.push(ci.name);
      stats.probes++;
      chosen = { name: ci.name, pending: ci.num_pending - pEnd };
    }
    return { lines: await readFrom(nc, stream, chosen.name, chosen.pending, lines, stats, before), total };
  } finally {
    for (const name of made) void jsm.consumers.delete(stream, name).catch(() => undefined);
  }
}

async function readFrom(
  nc: NatsConnection,
  stream: string,
  consumerName: string,
  pending: number,
  lines: number,
  stats: JournalReadStats,
  before?: number,
): Promise<JournalLine[]> {
  const c = await jetstream(nc).consumers.get(stream, consumerName);
  const ring: JournalLine[] = [];
  const dec = new TextDecoder();
  const deadline = Date.now() + 10_000;
  let seen = 0;
  outer: while (seen < pending && Date.now() < deadline) {
    // A line that expires (max_age) before it is delivered leaves pending above 0: `expires` ends the wait.
    const batch = await c.fetch({ max_messages: Math.min(1000, pending - seen), expires: 1000 });
    let got = 0;
    for await (const m of batch) {
      got++;
      seen++;
      stats.delivered++;
      if (before !== undefined && m.seq >= before) break outer;
      const parts = m.subject.split(".");
      ring.push({ machineId: parts[parts.length - 1] ?? "", time: Math.floor(m.info.timestampNanos / 1e6), line: dec.decode(m.data), seq: m.seq });
      if (ring.length > lines) ring.shift();
      if (m.info.pending === 0 || (before !== undefined && m.seq >= before - 1)) break outer;
    }
    if (got === 0) break;
  }
  return ring;
}

const EX_JOURNAL = `{"name":"hello.service","lines":10} (older: "before": the "next" of a reply)`;

export function journalHandlers(ctx: ClusterContext): ApiHandlers {
  return {
    journal: async (body) => {
      const { name, lines, before } = parseRequest(JournalRequest, body, "journal", EX_JOURNAL);
      let unit: string;
      try {
        unit = normalizeUnitName(name);
      } catch (e) {
        throw new FlotillaError("invalid_unit_name", `journal: ${describeError(e)}`, { field: "name", value: showValue(name) });
      }
      const maxPayload = ctx.nc.info?.max_payload ?? 1024 * 1024;
      const page = await readJournal(ctx.nc, ctx.names, unit, lines, undefined, before);
      const fitted = fitReply(page.lines, maxPayload - REPLY_MARGIN);
      const reply: JournalReply = { unit: unescapeUnit(unit), lines: fitted.lines };
      if (fitted.omitted > 0) reply.omitted = fitted.omitted;
      if (page.total > fitted.lines.length && fitted.lines.length > 0) {
        reply.more = true;
        reply.next = fitted.lines[0]!.seq;
      }
      return reply;
    },
  };
}
