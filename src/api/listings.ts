// list-unit-files, list-units, list-machines and watch-units, paged out of the listing index
// (listing-index.ts): a page is a binary search for its cursor plus the rows it returns, at most
// SCAN_MAX index entries looked at, so a request costs milliseconds at 100,000 units and never
// holds the event loop for long. The wire contract (docs/api.md):
//
//   request  {"limit":500,"after":"web@9.service","glob":"web@*","machine":"m1","state":"failed",
//             "desired":"launched","unplaced":true,"v":2}          every field optional
//   reply    without "v": the JSON array of rows, as before paging existed; the headers say
//            Flotilla-More: true|false and Flotilla-Next: <cursor> (when more follow);
//            with "v":2: {"v":2,"items":[...],"more":true,"next":"<cursor>"}
//   no limit: the reply stops at REPLY_BUDGET bytes (and says more), so a plain
//            `nats req flotilla.api.list-unit-files ''` never exceeds max_payload.
//
//   nats req flotilla.api.list-units '{"v":2,"limit":2,"state":"failed"}'
//   nats req flotilla.api.watch-units '{"after":"1234","timeoutMs":10000}'
import { z } from "zod";
import type { ClusterContext } from "../server/context.js";
import { FlotillaError } from "../protocol/errors.js";
import { DesiredState } from "../protocol/messages.js";
import { globMatch, isValidGlob } from "../unit/match.js";
import { ApiReply, type ApiHandlers } from "./service.js";
import { parseRequest } from "./request.js";
import { unitFileRow, unitRow, type RowSources } from "./unit-views.js";
import { ClusterIndex, stateKey, type RowEvent } from "./listing-index.js";
import type { SortedIndex } from "./index-cache.js";

/** Rows of one page at most (the byte budget usually ends a page first). */
export const MAX_LIMIT = 10_000;
/** Index entries one request looks at, at most (a selective filter pages on with `next`). */
export const SCAN_MAX = 20_000;
/** A page stops looking after this long (and says more): the event loop is never held for long. */
export const PAGE_MS = 20;
/** A reply's rows stop at this many bytes, or half the server's max_payload when that is less. */
export const REPLY_BUDGET = 512 * 1024;
/** The longest a watch-units request is held waiting for a change. */
export const MAX_WATCH_MS = 30_000;

const Common = {
  v: z.literal(2).optional(),
  limit: z.number().int().min(1).max(MAX_LIMIT).optional(),
  after: z.string().max(1024).optional(),
  glob: z.string().min(1).max(255).optional(),
};
const UnitFilesBody = z
  .object({
    ...Common,
    machine: z.string().min(1).max(255).optional(),
    state: z.string().min(1).max(64).optional(),
    desired: DesiredState.optional(),
    unplaced: z.boolean().optional(),
  })
  .strict();
const UnitsBody = z
  .object({ ...Common, machine: z.string().min(1).max(255).optional(), state: z.string().min(1).max(64).optional() })
  .strict();
const MachinesBody = z.object(Common).strict();
const WatchBody = z
  .object({
    v: z.literal(2).optional(),
    after: z.string().max(64).optional(),
    timeoutMs: z.number().int().min(0).max(MAX_WATCH_MS).optional(),
    glob: z.string().min(1).max(255).optional(),
    machine: z.string().min(1).max(255).optional(),
    state: z.string().min(1).max(64).optional(),
  })
  .strict();

const EX_LIST = `{"limit":500,"after":"web@9.service","glob":"web@*"}`;

function checkGlob(glob: string | undefined): void {
  if (glob !== undefined && !isValidGlob(glob)) {
    throw new FlotillaError("bad_request", `field glob: ${JSON.stringify(glob)} is not a valid glob (unbalanced [ or a trailing \\)`, {
      field: "glob",
      value: glob,
    });
  }
}

/** The literal start of a glob ("web@" of "web@*"): the keys it can match lie in [p, p + U+FFFF]. */
export function globPrefix(glob: string | undefined): { from?: string; to?: string } {
  if (glob === undefined) return {};
  const i = glob.search(/[*?[\\]/);
  const p = i < 0 ? glob : glob.slice(0, i);
  return p === "" ? {} : { from: p, to: `${p}\uffff` };
}

interface Page {
  parts: string[];
  more: boolean;
  next: string | undefined;
}

/** Scans an index from the cursor, keeping rows that `row` returns (null: filtered out). */
export function page<V>(
  idx: SortedIndex<V>,
  o: { after?: string; glob?: string; limit?: number; budget: number },
  row: (key: string, v: V) => unknown | null,
): Page {
  const parts: string[] = [];
  let bytes = 0;
  /** The last key fully dealt with (included or filtered out): where a page cut short goes on. */
  let prev: string | undefined;
  let cut = false;
  const limit = o.limit ?? MAX_LIMIT;
  const t0 = performance.now();
  let looked = 0;
  const r = idx.scan({ after: o.after, ...globPrefix(o.glob), scanLimit: SCAN_MAX }, (key, v) => {
    // Bounded in time too: a filter that matches little over a big index stops here and says more.
    if ((++looked & 255) === 0 && performance.now() - t0 > PAGE_MS) {
      cut = true;
      return false;
    }
    const x = row(key, v);
    if (x !== null) {
      const j = JSON.stringify(x);
      if (parts.length > 0 && bytes + j.length + 1 > o.budget) {
        cut = true;
        return false;
      }
      parts.push(j);
      bytes += j.length + 1;
    }
    prev = key;
    return parts.length < limit;
  });
  if (cut) return { parts, more: true, next: prev };
  return { parts, more: r.more, next: r.more ? r.last : undefined };
}

function answer(p: Page, v2: boolean): ApiReply {
  const items = `[${p.parts.join(",")}]`;
  if (v2) {
    return new ApiReply(`{"v":2,"items":${items},"more":${p.more}${p.next !== undefined ? `,"next":${JSON.stringify(p.next)}` : ""}}`);
  }
  const h: Record<string, string> = { "Flotilla-More": String(p.more), "Flotilla-Count": String(p.parts.length) };
  if (p.more && p.next !== undefined) h["Flotilla-Next"] = p.next;
  return new ApiReply(items, h);
}

export function listingHandlers(ctx: ClusterContext): ApiHandlers {
  const index = new ClusterIndex(ctx);
  // Started with the API, not on the first listing: a first listing that comes while the NATS
  // cluster has lost a node would meet consumer creates that time out (a third of them, for as
  // long as the node is away), while watches made before the loss come back by themselves.
  const eager = setTimeout(() => void index.ready().catch(() => undefined), 0);
  eager.unref?.();
  const budget = () => Math.min(REPLY_BUDGET, Math.floor((ctx.nc.info?.max_payload ?? 1024 * 1024) / 2));
  const globOk = (glob: string | undefined, unit: string) => glob === undefined || globMatch(glob, unit);

  const h: ApiHandlers = {};

  h["list-unit-files"] = async (body) => {
    const req = parseRequest(UnitFilesBody, body, "list-unit-files", EX_LIST);
    checkGlob(req.glob);
    await index.ready();
    await index.sync(["units", "schedule", "states", "machines"]);
    await index.units.flush();
    const src: RowSources = {
      schedule: index.schedule,
      unplaced: index.unplaced,
      states: index.statesByUnit,
      machines: index.machines,
      waiting: index.waiting(),
    };
    return answer(
      page(index.units, { ...req, budget: budget() }, (name, u) => {
        if (!globOk(req.glob, name)) return null;
        if (req.desired !== undefined && u.desiredState !== req.desired) return null;
        const row = unitFileRow(u, src, u);
        const states = index.statesByUnit.get(name) ?? [];
        if (req.machine !== undefined && !row.machines.includes(req.machine) && !(row.global && states.some((s) => s.machineId === req.machine))) {
          return null;
        }
        if (req.state !== undefined && row.currentState !== req.state) return null;
        if (req.unplaced) {
          const placed = row.global ? row.machines.length > 0 || states.length > 0 : row.target !== null;
          if (placed || u.desiredState === "inactive") return null;
        }
        return row;
      }),
      req.v === 2,
    );
  };

  const unitRowOk = (req: { glob?: string; machine?: string; state?: string }, unit: string, machine: string, s: { active: string; sub: string; load: string; taskState: string }) =>
    globOk(req.glob, unit) &&
    (req.machine === undefined || machine === req.machine) &&
    (req.state === undefined || s.active === req.state || s.sub === req.state || s.load === req.state || s.taskState === req.state);

  h["list-units"] = async (body) => {
    const req = parseRequest(UnitsBody, body, "list-units", EX_LIST);
    checkGlob(req.glob);
    await index.ready();
    await index.sync(["states", "machines"]);
    await index.states.flush();
    // A cursor without a machine ("web@1.service") means after every row of that unit.
    const after = req.after === undefined || req.after.includes(" ") ? req.after : stateKey(req.after, "\uffff");
    return answer(
      page(index.states, { ...req, after, budget: budget() }, (_k, s) => (unitRowOk(req, s.unit, s.machineId, s) ? unitRow(s, index.machines) : null)),
      req.v === 2,
    );
  };

  h["list-machines"] = async (body) => {
    const req = parseRequest(MachinesBody, body, "list-machines", `{"limit":100,"after":"m1"}`);
    checkGlob(req.glob);
    await index.ready();
    await index.sync(["machines"]);
    await index.machines.flush();
    return answer(page(index.machines, { ...req, budget: budget() }, (id, m) => (globOk(req.glob, id) ? m : null)), req.v === 2);
  };

  h["watch-units"] = async (body) => {
    const req = parseRequest(WatchBody, body, "watch-units", `{"after":"1234","timeoutMs":10000}`);
    checkGlob(req.glob);
    await index.ready();
    await index.sync(["states"]);
    const now = () => ({ v: 2, events: [] as unknown[], more: false, next: String(index.position) });
    if (req.after === undefined) return now();
    const from = Number(req.after);
    if (!Number.isFinite(from) || from < 0) {
      throw new FlotillaError("bad_request", `watch-units: field after: a cursor from an earlier reply's "next" (got ${JSON.stringify(req.after)})`, {
        field: "after",
        value: req.after,
      });
    }
    if (from < index.floor) return { ...now(), reset: true };
    // A deletion has no row to match a state against: watchers get every one their other filters allow.
    const eventOk = (e: RowEvent) =>
      unitRowOk({ ...req, state: e.row ? req.state : undefined }, e.unit, e.machine, e.row ?? { active: "", sub: "", load: "", taskState: "" });
    const collect = (): { events: RowEvent[]; next: number; more: boolean } => {
      const ring = index.ring;
      let lo = 0;
      let hi = ring.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (ring[mid]!.pos <= from) lo = mid + 1;
        else hi = mid;
      }
      const events: RowEvent[] = [];
      let next = from;
      let bytes = 0;
      for (let i = lo; i < ring.length && i < lo + SCAN_MAX; i++) {
        const e = ring[i]!;
        if (eventOk(e)) {
          bytes += JSON.stringify(e).length;
          if (events.length > 0 && bytes > budget()) return { events, next, more: true };
          events.push(e);
        }
        next = e.pos;
      }
      return { events, next, more: ring.length - lo > SCAN_MAX };
    };
    const reply = (c: ReturnType<typeof collect>) => ({
      v: 2,
      events: c.events.map((e) => ({ op: e.op, unit: e.unit, machine: e.machine, row: e.row })),
      more: c.more,
      next: String(c.next),
    });
    const c = collect();
    if (c.events.length > 0 || c.more || !req.timeoutMs) return reply(c);
    await new Promise<void>((resolve) => {
      const t = setTimeout(done, req.timeoutMs);
      t.unref?.();
      const off = index.onEvent(() => {
        const last = index.ring.at(-1);
        if (last && eventOk(last)) done();
      });
      function done() {
        clearTimeout(t);
        off();
        resolve();
      }
    });
    if (from < index.floor) return { ...now(), reset: true };
    return reply(collect());
  };

  return h;
}
