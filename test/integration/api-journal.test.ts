// The journal verb reads the last N lines of a unit, not every line the stream keeps: with
// 5,000 stored, `lines: 10` receives a few dozen messages on its connection (probes and lines),
// a full read 5,000. Counted with the reading connection's own message counter (nc.stats()),
// so the count does not depend on how readJournal is written.
import { beforeAll, describe, expect, it } from "vitest";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { uniquePrefix } from "../helpers/nats-server.js";
import { useNatsServer } from "../helpers/fixture.js";
import { check } from "../helpers/check.js";
import { startApiInProcess } from "../helpers/api-in-process.js";
import { runCli } from "../helpers/cli.js";
import { ensureJournalStream } from "../../src/agent/journal.js";
import { readJournal, type JournalReadStats } from "../../src/api/journal.js";
import { Names } from "../../src/protocol/names.js";

const nats = useNatsServer();
const names = new Names(uniquePrefix("jrn"));
let reader: NatsConnection;

/** Publishes [subject, line] pairs in order, many in flight. */
async function publish(lines: [string, string][]): Promise<void> {
  const js = jetstream(nats.nc);
  for (let i = 0; i < lines.length; i += 500) {
    await Promise.all(lines.slice(i, i + 500).map(([s, l]) => js.publish(s, l)));
  }
}

/** readJournal on its own connection; `received` is every message that connection took in. */
async function read(unit: string, lines: number): Promise<{ lines: string[]; machines: string[]; received: number; stats: JournalReadStats }> {
  const before = reader.stats().inMsgs;
  const stats: JournalReadStats = { delivered: 0, probes: 0 };
  const out = (await readJournal(reader, names, unit, lines, stats)).lines;
  return { lines: out.map((l) => l.line), machines: out.map((l) => l.machineId), received: reader.stats().inMsgs - before, stats };
}

beforeAll(async () => {
  reader = await nats.connect();
  await ensureJournalStream(nats.nc, names);
  // chatty.service writes 5,000 lines from two machines, interleaved with 5,000 of another unit;
  // early.service wrote 300 lines at the very start and nothing since.
  const batch: [string, string][] = [];
  for (let i = 0; i < 300; i++) batch.push([names.journalSubject("early.service", "m1"), `early ${i}`]);
  for (let i = 0; i < 5000; i++) {
    batch.push([names.journalSubject("chatty.service", i % 3 === 0 ? "m2" : "m1"), `chatty ${i}`]);
    batch.push([names.journalSubject("other.service", "m1"), `other ${i}`]);
  }
  batch.push([names.journalSubject("few.service", "m1"), "few 0"], [names.journalSubject("few.service", "m1"), "few 1"]);
  // wide.service: 200 lines of 15 KiB, 3 MB in all: more than one NATS message holds (the test server's 2 MB).
  for (let i = 0; i < 200; i++) batch.push([names.journalSubject("wide.service", "m1"), `wide ${String(i).padStart(3, "0")} ${"w".repeat(15 * 1024)}`]);
  await publish(batch);
});

describe("journal reads only the last N lines", () => {
  it("lines: 10 of 5,000 stored receives a few dozen messages; a full read receives all 5,000", async () => {
    const last = await read("chatty.service", 10);
    expect(last.lines).toEqual(Array.from({ length: 10 }, (_, i) => `chatty ${4990 + i}`));
    expect(last.machines).toEqual(Array.from({ length: 10 }, (_, i) => ((4990 + i) % 3 === 0 ? "m2" : "m1")));
    const full = await read("chatty.service", 5000);
    expect(full.lines.length).toBe(5000);
    expect(full.lines[0]).toBe("chatty 0");
    console.log(
      `journal: lines 10 received ${last.received} messages (${last.stats.delivered} lines, ${last.stats.probes} probes); ` +
        `lines 5000 received ${full.received}`,
    );
    expect(last.received).toBeLessThan(80);
    expect(last.stats.delivered).toBeLessThanOrEqual(10 + 16);
    expect(full.received).toBeGreaterThanOrEqual(5000);
  });

  it("finds the last lines of a unit that wrote long ago, and of one with fewer lines than asked", async () => {
    const early = await read("early.service", 25);
    expect(early.lines).toEqual(Array.from({ length: 25 }, (_, i) => `early ${275 + i}`));
    expect(early.received).toBeLessThan(120);
    expect((await read("few.service", 10)).lines).toEqual(["few 0", "few 1"]);
    expect((await read("never.service", 10)).lines).toEqual([]);
    for (const n of [1, 2, 17, 333, 1000]) {
      const r = await read("chatty.service", n);
      expect(r.lines, `lines ${n}`).toEqual(Array.from({ length: n }, (_, i) => `chatty ${5000 - n + i}`));
      expect(r.stats.delivered, `lines ${n}`).toBeLessThanOrEqual(n + Math.max(16, n >> 2));
    }
  });

  it("leaves no consumer behind", async () => {
    const jsm = await jetstreamManager(nats.nc);
    await check(async () => (await jsm.streams.info(names.journalStream())).state.consumer_count === 0, 10_000, "no journal consumers");
  });

  it("over the API: the verb answers the last lines; bad bodies get clear errors", async () => {
    const api = await startApiInProcess(nats.nc, names.prefix, nats.server.url);
    try {
      const req = async (body: unknown) => {
        const m = await nats.nc.request(names.apiSubject("journal"), JSON.stringify(body), { timeout: 5000 });
        return JSON.parse(new TextDecoder().decode(m.data));
      };
      const ok = await req({ name: "chatty", lines: 3 });
      expect(ok.unit).toBe("chatty.service");
      expect(ok.lines.map((l: { line: string }) => l.line)).toEqual(["chatty 4997", "chatty 4998", "chatty 4999"]);
      expect((await req({ name: "chatty.service", lines: 0 })).error).toMatchObject({ code: "bad_request", field: "lines" });
      expect((await req({ name: "chatty.service", lines: "5" })).error.message).toContain('(got "5")');
      expect((await req({ name: "a\nb" })).error).toMatchObject({ code: "invalid_unit_name", field: "name" });
      expect((await req({ name: "chatty.service", follow: true })).error).toMatchObject({ code: "bad_request", field: "follow" });
      // Asked for more than fits in one message: the newest lines that fit, and how many were left out.
      const wide = await req({ name: "wide", lines: 200 });
      expect(wide.error).toBeUndefined();
      const kept = wide.lines.map((l: { line: string }) => l.line.slice(0, 8));
      expect(wide.omitted).toBeGreaterThan(0);
      expect(kept.length + wide.omitted).toBe(200);
      expect(kept.length).toBeGreaterThan(100);
      expect(kept).toEqual(Array.from({ length: kept.length }, (_, i) => `wide ${String(200 - kept.length + i).padStart(3, "0")}`));
      expect(JSON.stringify(wide).length).toBeLessThanOrEqual(nats.nc.info!.max_payload);
      // ...and says where the older ones are: pages through `before` join to exactly the 200.
      expect(wide.more).toBe(true);
      expect(wide.next).toBe(wide.lines[0].seq);
      const older = await req({ name: "wide", lines: 200 - kept.length, before: wide.next });
      expect(older.error).toBeUndefined();
      const joined = [...older.lines, ...wide.lines].map((l: { line: string }) => l.line.slice(0, 8));
      expect(joined).toEqual(Array.from({ length: 200 }, (_, i) => `wide ${String(i).padStart(3, "0")}`));
      expect(older.more ?? false).toBe(false);
      // Interleaved with another unit and two machines: a page before a cursor is the lines just before it.
      const tail = await req({ name: "chatty", lines: 4 });
      expect(tail.more).toBe(true);
      const prev = await req({ name: "chatty", lines: 3, before: tail.next });
      expect(prev.lines.map((l: { line: string }) => l.line)).toEqual(["chatty 4993", "chatty 4994", "chatty 4995"]);
      expect(prev.lines.map((l: { machineId: string }) => l.machineId)).toEqual(["m1", "m1", "m2"]);
      expect(prev).toMatchObject({ more: true, next: prev.lines[0].seq });
      const first = await req({ name: "early", lines: 5, before: (await req({ name: "early", lines: 295 })).next });
      expect(first.lines.map((l: { line: string }) => l.line)).toEqual(["early 0", "early 1", "early 2", "early 3", "early 4"]);
      expect(first.more ?? false).toBe(false);
      expect((await req({ name: "early", lines: 5, before: 1 })).lines).toEqual([]);
      expect((await req({ name: "chatty", before: 0 })).error).toMatchObject({ code: "bad_request", field: "before" });
    } finally {
      await api.stop();
    }
  });

  it("the CLI prints the last lines (more than one reply holds, page by page) and refuses -n above what the journal keeps", async () => {
    const api = await startApiInProcess(nats.nc, names.prefix, nats.server.url);
    try {
      const g = ["--nats", nats.server.url, "--prefix", names.prefix];
      const r = await runCli([...g, "journal", "-n", "3", "chatty"]);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe("chatty 4997\nchatty 4998\nchatty 4999\n");
      const wide = await runCli([...g, "journal", "-n", "200", "wide"]);
      expect(wide.code, wide.stderr).toBe(0);
      expect(wide.stderr).toBe("");
      expect(wide.stdout.split("\n").filter(Boolean).map((l) => l.slice(0, 8))).toEqual(Array.from({ length: 200 }, (_, i) => `wide ${String(i).padStart(3, "0")}`));
      const big = await runCli([...g, "journal", "-n", "20000", "chatty"]);
      expect(big.code).toBe(2);
      expect(big.stderr).toContain("-n: 20000 is more than the 10000 lines the journal keeps per unit and machine");
      expect(big.stderr).toContain("[bad_flag]");
    } finally {
      await api.stop();
    }
  });
});
