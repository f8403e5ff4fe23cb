// The page's listings on a cluster bigger than one capped reply (issue 15), in a real browser:
// Debian's chromium by playwright-core, a real nats-server with its WebSocket listener, a real
// daemon and `flotilla ui`. Thousands of units (and a state of each, on a machine with no daemon)
// go straight into the buckets, as bench/list.ts does; the page must show every one (it pages),
// then show a start, a stop and a destroy as they happen from watch-units, with no list-units
// request at all after its first listing. The test counts the page's requests by subscribing to
// the API subjects itself (a plain subscription gets a copy of every request).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash } from "node:crypto";
import type { ChildProcess } from "node:child_process";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { NatsServer, uniquePrefix } from "../helpers/nats-server.js";
import { startDaemon, type RunningDaemon } from "../helpers/daemon.js";
import { ROOT, spawnCli, stopChild } from "../helpers/cli.js";
import { check } from "../helpers/check.js";
import { openBuckets } from "../../src/nats/buckets.js";
import { Names, keys } from "../../src/protocol/names.js";
import { encode } from "../../src/protocol/codec.js";
import type { UnitRecord, UnitStateRecord } from "../../src/protocol/messages.js";

const CHROMIUM = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";
const SHOTS = join(ROOT, "test-artifacts", "ui");
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"];

/** More rows than one reply without a limit holds (512 KiB of rows, some 200 bytes each). */
const UNITS = 4000;
const MACHINE = "ul-alpha";
/** The bulk states' machine: no daemon runs there, so nothing re-puts or removes them. */
const BULK_MACHINE = "ul-bulk";
const CONTENTS = "[Unit]\nDescription=bulk %i\n\n[Service]\nExecStart=/bin/sleep 600\n";
const HASH = createHash("sha1").update(CONTENTS).digest("hex");
const LIVE = "live.service";

let server: NatsServer;
let prefix: string;
let daemon: RunningDaemon;
let ui: ChildProcess & { output: () => string };
let uiUrl: string;
let ctx: BrowserContext;
let page: Page;
let profile: string;
let nc: NatsConnection;
/** Every request the page (or anyone) sent to these verbs, from the moment the page opened. */
const seen: Record<string, Record<string, unknown>[]> = { "list-units": [], "list-unit-files": [], "list-machines": [], "watch-units": [] };

async function api(verb: string, body: unknown): Promise<unknown> {
  const m = await nc.request(new Names(prefix).apiSubject(verb), JSON.stringify(body), { timeout: 30_000 });
  const j = JSON.parse(m.string()) as { error?: { code: string; message: string } };
  if (j && typeof j === "object" && "error" in j && j.error) throw new Error(`${verb}: ${j.error.code}: ${j.error.message}`);
  return j;
}

async function pipelined<T>(items: T[], f: (t: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += 500) await Promise.all(items.slice(i, i + 500).map(f));
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: the browser tests need Debian's chromium (apt-get install -y chromium), or set CHROMIUM_BIN`);
  }
  server = await NatsServer.start({ websocket: true });
  prefix = uniquePrefix("uilist");
  // A long agent TTL: the states put by hand below stay (the states bucket's max_age is the TTL).
  daemon = await startDaemon({ server, prefix, machineId: MACHINE, agentTtl: "600s" });
  nc = await connect({ servers: server.url });
  const b = await openBuckets(nc, new Names(prefix));
  const names = Array.from({ length: UNITS }, (_, i) => `bulk@${String(i).padStart(5, "0")}.service`);
  const now = Date.now();
  await pipelined(names, (name) => {
    const r: UnitRecord = { name, contents: CONTENTS, hash: HASH, desiredState: "inactive", version: 1, createdAt: now, updatedAt: now };
    return b.units.put(keys.unit(name), encode(r));
  });
  await pipelined(names, (unit) => {
    const s: UnitStateRecord = {
      unit, machineId: BULK_MACHINE, hash: HASH, taskState: "running", load: "loaded", active: "active", sub: "running",
      pid: 1000, restarts: 0, since: now, updatedAt: now,
    };
    return b.states.put(keys.state(unit, BULK_MACHINE), encode(s));
  });
  ui = spawnCli(["--nats", server.url, "--prefix", prefix, "ui", "--listen", "127.0.0.1:0", "--nats-ws", server.wsUrl]);
  uiUrl = (await check(() => /flotilla ui: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(ui.output()), 15_000, `flotilla ui to listen:\n${ui.output()}`))[1]!;
  profile = mkdtempSync(join(tmpdir(), "flotilla-chromium-"));
  ctx = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1400, height: 900 } });
  page = await ctx.newPage();
}, 120_000);

afterAll(async () => {
  await ctx?.close();
  if (ui) await stopChild(ui);
  await nc?.close();
  await daemon?.stop();
  await server?.dispose();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

const rowCount = () => page.locator("tr[data-unit]").count();
const cellChip = (unit: string) => page.locator(`[data-cell="${unit}@${MACHINE}"] .chip`);

describe("the page's listings at thousands of units", () => {
  it("the cluster holds more rows than one reply without a limit", async () => {
    const names = new Names(prefix);
    for (const verb of ["list-units", "list-unit-files"]) {
      const m = await nc.request(names.apiSubject(verb), "", { timeout: 30_000 });
      expect(m.headers?.get("Flotilla-More"), verb).toBe("true");
      expect(Number(m.headers?.get("Flotilla-Count")), verb).toBeLessThan(UNITS);
    }
  });

  it("shows every unit and every task: it pages through each listing", async () => {
    for (const verb of Object.keys(seen)) {
      nc.subscribe(new Names(prefix).apiSubject(verb), {
        callback: (_e, m) => {
          seen[verb]!.push(m.data.length ? (JSON.parse(m.string()) as Record<string, unknown>) : {});
        },
      });
    }
    await nc.flush();
    await page.goto(`${uiUrl}#/units`);
    await page.locator('[data-testid="conn"][data-state="connected"]').waitFor({ timeout: 15_000 });
    await check(async () => (await rowCount()) === UNITS, 30_000, `${UNITS} unit rows`);
    await page.goto(`${uiUrl}#/cluster`);
    // tasks by state count list-units' rows: every page of them
    await check(async () => new RegExp(`running\\s*${UNITS}\\b`).test(await page.locator('[data-testid="task-counts"]').innerText()), 15_000, `${UNITS} running tasks`);
    // the paged form, its cursor followed
    const lu = seen["list-units"]!;
    expect(lu.length).toBeGreaterThanOrEqual(2);
    expect(lu[0]).toMatchObject({ v: 2 });
    expect(lu[0]!.after).toBeUndefined();
    expect(typeof lu[1]!.after).toBe("string");
    expect(seen["list-unit-files"]!.some((b) => typeof b.after === "string")).toBe(true);
    // the cursor was taken first: a watch-units with no `after`
    expect(seen["watch-units"]!.some((b) => b.after === undefined)).toBe(true);
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: join(SHOTS, "listings-cluster.png") });
  });

  it("shows a start, a stop and a destroy as they happen, from watch-units, with no new list-units", async () => {
    await page.goto(`${uiUrl}#/units`);
    await check(async () => (await rowCount()) === UNITS, 15_000, `${UNITS} unit rows`);
    const listed = seen["list-units"]!.length;
    const watches = () => seen["watch-units"]!.filter((b) => b.after !== undefined).length;
    const watched = watches();
    expect(watched).toBeGreaterThan(0);

    await api("start", { units: [{ name: LIVE, contents: "[Unit]\nDescription=live\n\n[Service]\nExecStart=/bin/sleep 600\n" }] });
    await check(async () => (await cellChip(LIVE).count()) === 1 && (await cellChip(LIVE).innerText()) === "running", 30_000, `${LIVE} running on ${MACHINE}`);
    await page.screenshot({ path: join(SHOTS, "listings-units-live.png") });

    await api("stop", { units: [{ name: LIVE }] });
    // its task stopped: the cell says so (or is empty once the machine reports no row)
    await check(async () => {
      const t = (await cellChip(LIVE).count()) === 1 ? await cellChip(LIVE).innerText() : "(none)";
      return t !== "running" ? t : "";
    }, 30_000, `${LIVE} no longer running`);

    await api("destroy", { units: [{ name: LIVE }] });
    await check(async () => (await page.locator(`[data-unit="${LIVE}"]`).count()) === 0, 30_000, `${LIVE} gone from the page`);
    expect(await rowCount()).toBe(UNITS);

    // every change came from the watch: the page did not list the units again
    expect(seen["list-units"]!.length, "list-units requests after the first listing").toBe(listed);
    // each change ended a held watch-units request and the page asked again from the new cursor
    await check(() => watches() >= watched + 3, 10_000, "a watch-units request after each change");
    // the machines and unit files are still listed again (no watch for them), every page
    expect(seen["list-machines"]!.length).toBeGreaterThan(1);
  });
});
