// The page's side of the paged listings and of watch-units (docs/api.md), pure so node tests it:
// every page of a listing (the `v:2` form, `next` followed until `more` is false), and the units
// followed by long polls of watch-units from the cursor taken before they were listed, row
// changes merged in; when the daemon says the watcher is too far behind (`reset`), listed again.

/** Sends one API request: verb, body, timeout in ms. Resolves with the reply's JSON, rejects with the API's error. */
export type Call = (verb: string, body: Record<string, unknown>, timeoutMs?: number) => Promise<unknown>;

/** Rows per page asked for (the daemon's most; its byte budget usually ends a page first). */
export const PAGE_LIMIT = 10_000;
/** How long one watch-units request waits for a change (the daemon holds it, 30 s at most). */
export const WATCH_MS = 10_000;
/** A held watch request fails after this much longer than it was held for. */
export const WATCH_SLACK_MS = 10_000;

/** A reply that is not what the verb answers (named ApiError so the page words it as the API's own error). */
export class ListingError extends Error {
  override name = "ApiError";
  readonly code = "bad_reply";
}

interface PageReply<T> {
  items: T[];
  more: boolean;
  next?: string;
}

function isPage(x: unknown): x is PageReply<unknown> {
  const p = x as PageReply<unknown> | null;
  return typeof p === "object" && p !== null && Array.isArray(p.items) && typeof p.more === "boolean";
}

/** Every row of a listing, page after page, in the daemon's order. */
export async function listAll<T>(call: Call, verb: string, filters: Record<string, unknown> = {}): Promise<T[]> {
  const all: T[] = [];
  let after: string | undefined;
  for (;;) {
    const body: Record<string, unknown> = { ...filters, v: 2, limit: PAGE_LIMIT };
    if (after !== undefined) body.after = after;
    const r = await call(verb, body);
    if (!isPage(r)) {
      throw new ListingError(`the ${verb} reply is not a page ({"v":2,"items":[…],"more":…}): ${JSON.stringify(r)?.slice(0, 200)}; the daemon answering may be older than paged listings`);
    }
    for (const x of r.items as T[]) all.push(x);
    if (!r.more) return all;
    if (typeof r.next !== "string" || r.next === after) {
      throw new ListingError(`the ${verb} reply says more rows follow but gives no new cursor (next ${JSON.stringify(r.next)} after ${JSON.stringify(after)}): the listing cannot go on`);
    }
    after = r.next;
  }
}

export interface UnitKey {
  unit: string;
  machine: string;
}

export interface RowEvent<T extends UnitKey> {
  op: "put" | "del";
  unit: string;
  machine: string;
  row: T | null;
}

export interface WatchReply<T extends UnitKey> {
  events: RowEvent<T>[];
  more: boolean;
  next: string;
  reset?: boolean;
}

function isWatchReply(x: unknown): x is WatchReply<UnitKey> {
  const w = x as WatchReply<UnitKey> | null;
  return typeof w === "object" && w !== null && Array.isArray(w.events) && typeof w.next === "string";
}

/** list-units' order: unit, then machine, by UTF-16 code units (the daemon's key `"<unit> <machine>"`). */
export function compareRows(a: UnitKey, b: UnitKey): number {
  if (a.unit !== b.unit) return a.unit < b.unit ? -1 : 1;
  return a.machine < b.machine ? -1 : a.machine > b.machine ? 1 : 0;
}

const keyOf = (r: UnitKey) => `${r.unit}\u0000${r.machine}`;

/**
 * The rows after a batch of watch events, in list-units' order: a put replaces or adds its row,
 * a del removes it; the last event of a row wins. The rows given are not changed.
 */
export function applyEvents<T extends UnitKey>(rows: readonly T[], events: readonly RowEvent<T>[]): T[] {
  if (events.length === 0) return rows.slice();
  const last = new Map<string, T | null>();
  for (const e of events) last.set(keyOf(e), e.op === "put" && e.row ? { ...e.row, unit: e.unit, machine: e.machine } : null);
  const out: T[] = [];
  for (const r of rows) {
    const k = keyOf(r);
    if (!last.has(k)) {
      out.push(r);
      continue;
    }
    const x = last.get(k)!;
    last.delete(k);
    if (x) out.push(x);
  }
  const added = [...last.values()].filter((x): x is T => x !== null);
  if (added.length === 0) return out;
  added.sort(compareRows);
  // Merge the new rows into place (both lists sorted).
  const merged: T[] = [];
  let i = 0;
  for (const a of added) {
    while (i < out.length && compareRows(out[i]!, a) < 0) merged.push(out[i++]!);
    merged.push(a);
  }
  while (i < out.length) merged.push(out[i++]!);
  return merged;
}

export interface FollowerHooks<T> {
  /** The rows changed (after a watch batch). */
  rows(rows: T[]): void;
  /** A watch request failed; the follower stopped (watching is false) until the next relist(). */
  problem(verb: string, e: Error): void;
  /** False: stop quietly (the connection went away, a recording was opened). */
  live(): boolean;
}

/**
 * list-units, then watch-units from the cursor taken before the listing: the rows kept up to date
 * without listing again. relist() lists (sharing one listing between concurrent callers) and
 * starts the watch loop; the loop lists again by itself when the daemon answers `reset`, and on a
 * failed request stops (watching false) so the caller lists again on its next refresh.
 */
export class UnitsFollower<T extends UnitKey> {
  rows: T[] = [];
  private cursor: string | null = null;
  private gen = 0;
  private listing: Promise<T[]> | undefined;

  constructor(
    private readonly call: Call,
    private readonly hooks: FollowerHooks<T>,
    private readonly watchMs = WATCH_MS,
  ) {}

  /** True while a watch loop follows the rows listed last. */
  get watching(): boolean {
    return this.cursor !== null;
  }

  /** Lists the units (the cursor first: a change made while it pages is applied again, never lost) and follows them. */
  relist(): Promise<T[]> {
    this.listing ??= this.list().finally(() => (this.listing = undefined));
    return this.listing;
  }

  /** Stops following (the loop ends at its next reply). */
  stop(): void {
    this.gen++;
    this.cursor = null;
  }

  private async list(): Promise<T[]> {
    const gen = ++this.gen;
    this.cursor = null;
    const w = await this.call("watch-units", {});
    if (!isWatchReply(w)) throw new ListingError(`the watch-units reply has no cursor: ${JSON.stringify(w)?.slice(0, 200)}`);
    const rows = await listAll<T>(this.call, "list-units");
    if (gen !== this.gen) return this.rows;
    this.rows = rows;
    this.cursor = w.next;
    void this.loop(gen);
    return rows;
  }

  private async loop(gen: number): Promise<void> {
    while (gen === this.gen && this.cursor !== null) {
      if (!this.hooks.live()) return this.stopIf(gen);
      let r: unknown;
      try {
        r = await this.call("watch-units", { after: this.cursor, timeoutMs: this.watchMs }, this.watchMs + WATCH_SLACK_MS);
        if (!isWatchReply(r)) throw new ListingError(`the watch-units reply is not a batch of changes: ${JSON.stringify(r)?.slice(0, 200)}`);
      } catch (e) {
        if (gen !== this.gen) return;
        this.stopIf(gen);
        if (this.hooks.live()) this.hooks.problem("watch-units", e as Error);
        return;
      }
      if (gen !== this.gen) return;
      if (!this.hooks.live()) return this.stopIf(gen);
      if (r.reset) {
        // Too far behind (or a daemon that started after the cursor): list again, fresh cursor.
        this.cursor = null;
        try {
          await this.relist();
          this.hooks.rows(this.rows);
        } catch (e) {
          if (this.hooks.live()) this.hooks.problem("list-units", e as Error);
        }
        return;
      }
      if (r.events.length > 0) {
        this.rows = applyEvents(this.rows, r.events as RowEvent<T>[]);
        this.hooks.rows(this.rows);
      }
      this.cursor = r.next;
    }
  }

  private stopIf(gen: number): void {
    if (gen === this.gen) this.cursor = null;
  }
}
