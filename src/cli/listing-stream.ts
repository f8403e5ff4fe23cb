// The CLI side of the paged listings (docs/api.md): pages asked for one after another with the
// next one already in flight while the current one prints, rows written as they come (a table
// whose columns widen as longer cells arrive, one JSON array, or NDJSON), and --watch's long
// polls of watch-units.
import { once } from "node:events";
import type { ApiClient } from "./client.js";
import type { Column, ListFlags } from "./table.js";
import { renderRow, selectColumns } from "./table.js";

/** The first page is small so the first row shows at once; the later ones as big as the daemon allows. */
export const FIRST_PAGE = 200;
export const LATER_PAGE = 10_000;

interface PageReply<T> {
  v: 2;
  items: T[];
  more: boolean;
  next?: string;
}

/** Every row of a listing, page by page, in the daemon's order (sorted, no duplicates). */
export async function* listPages<T>(client: ApiClient, verb: string, filters: Record<string, unknown>): AsyncGenerator<T[]> {
  let inFlight: Promise<PageReply<T>> | undefined = client.request<PageReply<T>>(verb, { ...filters, v: 2, limit: FIRST_PAGE });
  while (inFlight) {
    const p: PageReply<T> = await inFlight;
    inFlight =
      p.more && p.next !== undefined
        ? client.request<PageReply<T>>(verb, { ...filters, v: 2, limit: LATER_PAGE, after: p.next })
        : undefined;
    // Rejections of a prefetch surface at its await; none is left unobserved meanwhile.
    inFlight?.catch(() => undefined);
    yield p.items;
  }
}

/** Writes to stdout, waiting when the pipe is full (a `| head` reader, a slow terminal). */
export async function out(text: string): Promise<void> {
  if (text && !process.stdout.write(text)) await once(process.stdout, "drain");
}

/** Prints rows as they come, in the format the flags ask for. */
export class RowPrinter<T> {
  private widths: number[] | undefined;
  private cols: Column<T>[];
  private count = 0;

  constructor(
    columns: Column<T>[],
    private readonly o: ListFlags,
  ) {
    this.cols = o.json || o.ndjson ? columns : selectColumns(columns, o.fields);
  }

  get mode(): "json" | "ndjson" | "table" {
    return this.o.ndjson ? "ndjson" : this.o.json ? "json" : "table";
  }

  async rows(rows: T[]): Promise<void> {
    if (this.mode === "ndjson") return out(rows.map((r) => JSON.stringify(r) + "\n").join(""));
    if (this.mode === "json") {
      // Exactly JSON.stringify(all, null, 2), one element at a time.
      const parts = rows.map((r, i) => (this.count + i === 0 ? "[\n" : ",\n") + "  " + JSON.stringify(r, null, 2).replace(/\n/g, "\n  "));
      this.count += rows.length;
      return out(parts.join(""));
    }
    const full = Boolean(this.o.full);
    const cells = rows.map((r) => this.cols.map((c) => c.value(r, full)));
    let text = "";
    if (!this.widths) {
      // Widths from the first page (and the legend); later, longer cells widen their column.
      const head = this.cols.map((c) => c.header);
      const all = this.o.legend ? [head, ...cells] : cells;
      this.widths = this.cols.map((_, i) => Math.max(0, ...all.map((r) => r[i]!.length)));
      if (this.o.legend) text += renderRow(head, this.widths);
    }
    for (const c of cells) {
      c.forEach((x, i) => (this.widths![i] = Math.max(this.widths![i]!, x.length)));
      text += renderRow(c, this.widths);
    }
    this.count += rows.length;
    return out(text);
  }

  /** Ends the listing (closes the JSON array). */
  async end(): Promise<void> {
    if (this.mode === "json") await out(this.count === 0 ? "[]\n" : "\n]\n");
  }
}

/** Lists every page through a printer; returns how many rows were printed. */
export async function printListing<T>(client: ApiClient, verb: string, filters: Record<string, unknown>, printer: RowPrinter<T>): Promise<number> {
  let n = 0;
  for await (const rows of listPages<T>(client, verb, filters)) {
    await printer.rows(rows);
    n += rows.length;
  }
  await printer.end();
  return n;
}

export interface WatchEvent<T> {
  op: "put" | "del";
  unit: string;
  machine: string;
  row: T | null;
}

interface WatchReply<T> {
  events: WatchEvent<T>[];
  next: string;
  more: boolean;
  reset?: boolean;
}

/** How long one watch-units request waits for a change (the daemon holds it). */
export const WATCH_POLL_MS = 10_000;

/**
 * Follows watch-units from `cursor` on, handing over every batch of events; when the daemon no
 * longer has the events since the cursor (too far behind), calls relist() for a fresh start.
 */
export async function followWatch<T>(
  client: ApiClient,
  filters: Record<string, unknown>,
  cursor: string,
  on: (events: WatchEvent<T>[]) => Promise<void>,
  relist: () => Promise<string>,
  stopped: () => boolean,
): Promise<void> {
  while (!stopped()) {
    let r: WatchReply<T>;
    try {
      r = await client.request<WatchReply<T>>("watch-units", { ...filters, after: cursor, timeoutMs: WATCH_POLL_MS }, WATCH_POLL_MS + 10_000);
    } catch (e) {
      if (stopped()) return;
      throw e;
    }
    if (r.reset) {
      cursor = await relist();
      continue;
    }
    if (r.events.length) await on(r.events);
    cursor = r.next;
  }
}
