// The page's paged listings and its watch of the units (ui/lib/listing.ts), against a fake API
// that answers as the daemon does (docs/api.md): pages of a few rows with `next`, watch-units'
// cursor, changes held until one comes, `reset` for a cursor behind the log's floor.
import { describe, expect, it } from "vitest";
import { applyEvents, compareRows, listAll, UnitsFollower, type Call, type RowEvent } from "../../ui/lib/listing.js";
import { check } from "../helpers/check.js";

interface Row {
  unit: string;
  machine: string;
  sub: string;
}
const row = (unit: string, machine: string, sub = "running"): Row => ({ unit, machine, sub });

/** A daemon's listing and watch, in memory: pages of `pageSize` rows whatever the limit. */
class FakeApi {
  rows = new Map<string, Row>();
  log: (RowEvent<Row> & { pos: number })[] = [];
  pos = 100;
  floor = 0;
  requests: { verb: string; body: Record<string, unknown> }[] = [];
  private waiters: (() => void)[] = [];
  /** Fails the next requests of this verb (once each). */
  failNext = new Map<string, Error>();

  constructor(private readonly pageSize = 2) {}

  key = (r: { unit: string; machine: string }) => `${r.unit} ${r.machine}`;

  put(r: Row): void {
    this.rows.set(this.key(r), r);
    this.log.push({ pos: ++this.pos, op: "put", unit: r.unit, machine: r.machine, row: r });
    this.wake();
  }
  del(unit: string, machine: string): void {
    this.rows.delete(this.key({ unit, machine }));
    this.log.push({ pos: ++this.pos, op: "del", unit, machine, row: null });
    this.wake();
  }
  /** Forgets the log up to now (a watcher behind this is told to list again). */
  forget(): void {
    this.floor = this.pos;
    this.log = [];
    this.wake();
  }
  wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  call: Call = async (verb, body) => {
    this.requests.push({ verb, body });
    const fail = this.failNext.get(verb);
    if (fail) {
      this.failNext.delete(verb);
      throw fail;
    }
    if (verb === "list-units") {
      const keys = [...this.rows.keys()].sort();
      const after = body.after as string | undefined;
      const from = after === undefined ? keys : keys.filter((k) => k > after);
      const page = from.slice(0, this.pageSize);
      const more = from.length > page.length;
      return { v: 2, items: page.map((k) => this.rows.get(k)), more, ...(more ? { next: page.at(-1) } : {}) };
    }
    if (verb === "watch-units") {
      if (body.after === undefined) return { v: 2, events: [], more: false, next: String(this.pos) };
      const from = Number(body.after);
      for (;;) {
        if (from < this.floor) return { v: 2, events: [], more: false, next: String(this.pos), reset: true };
        const events = this.log.filter((e) => e.pos > from);
        if (events.length > 0) {
          return { v: 2, events: events.map(({ op, unit, machine, row }) => ({ op, unit, machine, row })), more: false, next: String(events.at(-1)!.pos) };
        }
        await new Promise<void>((r) => this.waiters.push(r));
      }
    }
    throw new Error(`unexpected verb ${verb}`);
  };

  count(verb: string, o: { after?: boolean } = {}): number {
    return this.requests.filter((r) => r.verb === verb && (o.after === undefined || (r.body.after !== undefined) === o.after)).length;
  }
}

describe("listAll", () => {
  it("follows next until more is false, asking for the paged form", async () => {
    const api = new FakeApi(2);
    for (const u of ["c", "a", "e", "b", "d"]) api.put(row(`${u}.service`, "m1"));
    const rows = await listAll<Row>(api.call, "list-units", { glob: "*" });
    expect(rows.map((r) => r.unit)).toEqual(["a.service", "b.service", "c.service", "d.service", "e.service"]);
    expect(api.requests.map((r) => r.body)).toEqual([
      { glob: "*", v: 2, limit: 10_000 },
      { glob: "*", v: 2, limit: 10_000, after: "b.service m1" },
      { glob: "*", v: 2, limit: 10_000, after: "d.service m1" },
    ]);
  });

  it("an empty listing is one request", async () => {
    const api = new FakeApi();
    expect(await listAll(api.call, "list-units")).toEqual([]);
    expect(api.requests).toHaveLength(1);
  });

  it("a reply that is not a page, or a page that says more with no new cursor, is an error that says so", async () => {
    await expect(listAll(async () => [{ id: "m1" }], "list-machines")).rejects.toThrow(/the list-machines reply is not a page .*older than paged listings/);
    let n = 0;
    const stuck: Call = async () => ({ v: 2, items: [{ id: `m${n++}` }], more: true, next: "m0" });
    await expect(listAll(stuck, "list-machines")).rejects.toThrow(/says more rows follow but gives no new cursor/);
    await expect(listAll(async () => ({ v: 2, items: [], more: true }), "list-machines")).rejects.toMatchObject({ name: "ApiError", code: "bad_reply" });
  });
});

describe("applyEvents", () => {
  const rows = [row("a.service", "m1"), row("a.service", "m2"), row("c.service", "m1")];
  it("a put replaces its row or adds it in list-units' order, a del removes it, the last event of a row wins", () => {
    const out = applyEvents(rows, [
      { op: "put", unit: "b.service", machine: "m1", row: row("b.service", "m1", "start") },
      { op: "put", unit: "a.service", machine: "m2", row: row("a.service", "m2", "dead") },
      { op: "del", unit: "c.service", machine: "m1", row: null },
      { op: "put", unit: "d.service", machine: "m0", row: row("d.service", "m0") },
      { op: "put", unit: "b.service", machine: "m1", row: row("b.service", "m1", "running") },
      { op: "put", unit: "a.service", machine: "m0", row: row("a.service", "m0") },
      { op: "put", unit: "e.service", machine: "m1", row: row("e.service", "m1") },
      { op: "del", unit: "e.service", machine: "m1", row: null },
    ]);
    expect(out.map((r) => `${r.unit} ${r.machine} ${r.sub}`)).toEqual([
      "a.service m0 running",
      "a.service m1 running",
      "a.service m2 dead",
      "b.service m1 running",
      "d.service m0 running",
    ]);
    // the rows given are left as they were
    expect(rows.map((r) => r.sub)).toEqual(["running", "running", "running"]);
  });

  it("a del of a row never listed, and an empty batch, change nothing", () => {
    expect(applyEvents(rows, [{ op: "del", unit: "z.service", machine: "m1", row: null }])).toEqual(rows);
    expect(applyEvents(rows, [])).toEqual(rows);
  });

  it("sorts as the daemon's keys do: unit, then machine (web@1 before web@1.x, m10 before m2)", () => {
    const s = [row("web@1.service", "m2"), row("web@1.servicex", "m1"), row("web@1.service", "m10")].sort(compareRows);
    expect(s.map((r) => `${r.unit} ${r.machine}`)).toEqual(["web@1.service m10", "web@1.service m2", "web@1.servicex m1"]);
    expect(s.map((r) => `${r.unit} ${r.machine}`)).toEqual(s.map((r) => `${r.unit} ${r.machine}`).sort());
  });
});

function follower(api: FakeApi) {
  const seen: Row[][] = [];
  const problems: string[] = [];
  const state = { live: true };
  const f = new UnitsFollower<Row>(api.call, {
    rows: (r) => seen.push(r),
    problem: (verb, e) => problems.push(`${verb}: ${e.message}`),
    live: () => state.live,
  });
  return { f, seen, problems, state };
}

const units = (rs: Row[]) => rs.map((r) => `${r.unit} ${r.machine} ${r.sub}`);

describe("UnitsFollower", () => {
  it("takes the cursor, lists every page, then applies each change without listing again", async () => {
    const api = new FakeApi(2);
    for (let i = 0; i < 5; i++) api.put(row(`u${i}.service`, "m1"));
    const { f, seen, state } = follower(api);
    const listed = await f.relist();
    expect(listed).toHaveLength(5);
    expect(f.watching).toBe(true);
    // the cursor came first, then the pages
    expect(api.requests.slice(0, 4).map((r) => r.verb)).toEqual(["watch-units", "list-units", "list-units", "list-units"]);
    expect(api.requests[0]!.body).toEqual({});
    api.put(row("u1.service", "m1", "dead"));
    await check(() => seen.length === 1 && f.rows.find((r) => r.unit === "u1.service")?.sub === "dead", 2000, "the change applied");
    api.put(row("new.service", "m2"));
    await check(() => f.rows.some((r) => r.unit === "new.service"), 2000, "a new row");
    api.del("u0.service", "m1");
    await check(() => !f.rows.some((r) => r.unit === "u0.service"), 2000, "a row gone");
    expect(units(f.rows)).toEqual(["new.service m2 running", "u1.service m1 dead", "u2.service m1 running", "u3.service m1 running", "u4.service m1 running"]);
    expect(api.count("list-units")).toBe(3);
    // each watch request went on from the last reply's cursor, held for a while
    const watches = api.requests.filter((r) => r.verb === "watch-units" && r.body.after !== undefined);
    expect(watches[0]!.body).toEqual({ after: "105", timeoutMs: 10_000 });
    expect(watches.map((w) => w.body.after)).toEqual(["105", "106", "107", "108"]);
    state.live = false;
    api.wake();
  });

  it("a change made while the units are listed is applied again, never lost", async () => {
    const api = new FakeApi(1);
    api.put(row("a.service", "m1"));
    api.put(row("b.service", "m1"));
    // between the cursor and the listing, a.service changes: the listing may or may not hold it
    const call = api.call;
    let first = true;
    api.call = async (verb, body) => {
      const r = await call(verb, body);
      if (verb === "watch-units" && first) {
        first = false;
        api.put(row("a.service", "m1", "failed"));
      }
      return r;
    };
    const { f } = follower(api);
    await f.relist();
    await check(() => f.rows.find((r) => r.unit === "a.service")?.sub === "failed", 2000, "a.service failed");
    expect(units(f.rows)).toEqual(["a.service m1 failed", "b.service m1 running"]);
    f.stop();
    api.wake();
  });

  it("lists again when the daemon says the watcher is too far behind, and follows from the fresh cursor", async () => {
    const api = new FakeApi(2);
    api.put(row("a.service", "m1"));
    const { f, seen, problems } = follower(api);
    await f.relist();
    expect(api.count("list-units")).toBe(1);
    // many changes the daemon no longer has
    api.put(row("b.service", "m1"));
    api.del("a.service", "m1");
    api.forget();
    await check(() => api.count("list-units") === 2 && seen.length >= 1, 2000, "a second listing");
    expect(units(f.rows)).toEqual(["b.service m1 running"]);
    expect(api.requests.filter((r) => r.verb === "watch-units" && r.body.after === undefined)).toHaveLength(2);
    expect(f.watching).toBe(true);
    api.put(row("c.service", "m1"));
    await check(() => f.rows.some((r) => r.unit === "c.service"), 2000, "following again");
    expect(problems).toEqual([]);
    f.stop();
    api.wake();
  });

  it("a failed watch request stops the watch and says why; the next relist starts it again", async () => {
    const api = new FakeApi(2);
    api.put(row("a.service", "m1"));
    const { f, problems } = follower(api);
    api.failNext.set("watch-units", new Error("placeholder"));
    // the first watch-units (the cursor) fails: the listing fails as a whole
    await expect(f.relist()).rejects.toThrow("placeholder");
    expect(f.watching).toBe(false);
    await f.relist();
    api.failNext.set("watch-units", Object.assign(new Error("TIMEOUT"), { name: "TimeoutError" }));
    api.put(row("b.service", "m1"));
    await check(() => !f.watching, 2000, "the watch stopped");
    expect(problems).toEqual(["watch-units: TIMEOUT"]);
    await f.relist();
    expect(units(f.rows)).toEqual(["a.service m1 running", "b.service m1 running"]);
    expect(f.watching).toBe(true);
    f.stop();
    api.wake();
  });

  it("stops quietly when the page is no longer live, and after stop()", async () => {
    const api = new FakeApi(2);
    api.put(row("a.service", "m1"));
    const { f, seen, problems, state } = follower(api);
    await f.relist();
    state.live = false;
    api.put(row("b.service", "m1"));
    await check(() => !f.watching, 2000, "stopped");
    expect(seen).toEqual([]);
    expect(problems).toEqual([]);
    state.live = true;
    await f.relist();
    // the watch request held now is answered after stop(): nothing applied, nothing asked again
    await check(() => api.requests.at(-1)!.verb === "watch-units" && api.requests.at(-1)!.body.after !== undefined, 2000, "a held watch");
    f.stop();
    const n = api.requests.length;
    api.put(row("c.service", "m1"));
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    expect(api.requests.length).toBe(n);
    expect(f.watching).toBe(false);
    expect(f.rows.some((r) => r.unit === "c.service")).toBe(false);
  });

  it("concurrent relists share one listing", async () => {
    const api = new FakeApi(10);
    api.put(row("a.service", "m1"));
    const { f } = follower(api);
    const [x, y] = await Promise.all([f.relist(), f.relist()]);
    expect(x).toBe(y);
    expect(api.count("list-units")).toBe(1);
    f.stop();
    api.wake();
  });
});
