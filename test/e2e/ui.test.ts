// `flotilla ui` end to end, in a real browser: Debian's chromium driven by playwright-core,
// against a real nats-server with its WebSocket listener, two real daemons and the real
// `flotilla ui` (the compiled CLI). Screenshots of every view go to test-artifacts/ui/.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ChildProcess } from "node:child_process";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { connect } from "@nats-io/transport-node";
import { NatsServer, uniquePrefix } from "../helpers/nats-server.js";
import { startDaemon, type RunningDaemon } from "../helpers/daemon.js";
import { ROOT, runCli, spawnCli, stopChild } from "../helpers/cli.js";
import { check } from "../helpers/check.js";

const CHROMIUM = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";
const SHOTS = join(ROOT, "test-artifacts", "ui");
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

let server: NatsServer;
let prefix: string;
let d1: RunningDaemon;
let d2: RunningDaemon;
const uis: ChildProcess[] = [];
let uiUrl: string;
let ctx: BrowserContext;
let page: Page;
let profile: string;
let work: string;
/** Every URL the browser asked for (requests and WebSockets), across all pages. */
const requested: string[] = [];

async function startUi(wsUrl: string): Promise<string> {
  const child = spawnCli(["--nats", server.url, "--prefix", prefix, "ui", "--listen", "127.0.0.1:0", "--nats-ws", wsUrl]);
  uis.push(child);
  const m = await check(() => /flotilla ui: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(child.output()), 15_000, `flotilla ui to listen:\n${child.output()}`);
  return m[1]!;
}

async function shot(p: Page, name: string): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  await p.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

async function newPage(): Promise<Page> {
  const p = await ctx.newPage();
  p.on("request", (r) => requested.push(r.url()));
  p.on("websocket", (ws) => requested.push(ws.url()));
  return p;
}

/** Records every state node id that is ever marked active in the page (transient ones too). */
async function watchActive(p: Page): Promise<void> {
  // A string, not a function: this file is typechecked without the DOM library.
  await p.evaluate(`(() => {
    window.__seenActive = [];
    const note = () => {
      for (const el of document.querySelectorAll('[data-active="true"]')) window.__seenActive.push(el.getAttribute("data-state-id") || "");
    };
    note();
    new MutationObserver(note).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ["data-active"] });
  })()`);
}
const seenActive = (p: Page) => p.evaluate(`[...new Set(window.__seenActive)]`) as Promise<string[]>;

const unitFile = (body: string) => `[Unit]\nDescription=ui test\n\n[Service]\n${body}\n`;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: the browser tests need Debian's chromium (apt-get install -y chromium), or set CHROMIUM_BIN`);
  }
  server = await NatsServer.start({ websocket: true });
  prefix = uniquePrefix("ui");
  [d1, d2] = await Promise.all([
    startDaemon({ server, prefix, machineId: "ui-alpha", metadata: "region=earth,disk=ssd" }),
    startDaemon({ server, prefix, machineId: "ui-beta", metadata: "region=earth" }),
  ]);
  uiUrl = await startUi(server.wsUrl);
  work = mkdtempSync(join(tmpdir(), "flotilla-ui-"));
  profile = mkdtempSync(join(tmpdir(), "flotilla-chromium-"));
  ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 1400, height: 900 },
    acceptDownloads: true,
  });
  page = await newPage();
}, 90_000);

afterAll(async () => {
  await ctx?.close();
  for (const u of uis) await stopChild(u);
  await d1?.stop();
  await d2?.stop();
  await server?.dispose();
  if (profile) rmSync(profile, { recursive: true, force: true });
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("flotilla ui in a real browser", () => {
  it("serves the page with a Content-Security-Policy and /config.json", async () => {
    const r = await fetch(uiUrl);
    expect(r.status).toBe(200);
    const csp = r.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain(`connect-src 'self' ${server.wsUrl}`);
    const cfg = (await (await fetch(`${uiUrl}config.json`)).json()) as { wsUrl: string; prefix: string };
    expect(cfg).toEqual({ wsUrl: server.wsUrl, prefix });
    expect((await fetch(`${uiUrl}..%2f..%2fpackage.json`)).status).toBe(404);
  });

  it("shows the machines", async () => {
    await page.goto(`${uiUrl}#/cluster`);
    await page.locator('[data-testid="conn"][data-state="connected"]').waitFor({ timeout: 15_000 });
    await page.locator('[data-machine="ui-alpha"]').waitFor({ timeout: 15_000 });
    await page.locator('[data-machine="ui-beta"]').waitFor();
    expect(await page.locator('[data-machine="ui-alpha"]').innerText()).toContain("disk=ssd");
    // the engine leader comes from the lease actors' steps in the inspect stream
    await check(async () => /Leader: ui-(alpha|beta)/.test(await page.locator('[data-testid="leader"]').innerText()), 15_000, "a leader shown");
    await shot(page, "cluster");
  });

  it("the heart's chart changes live", async () => {
    await page.goto(`${uiUrl}#/actor/${encodeURIComponent("ui-alpha/heart")}`);
    await page.locator('svg[data-chart="heart"]').waitFor({ timeout: 15_000 });
    await watchActive(page);
    const rows = page.locator('[data-testid="events"] tbody tr');
    const before = Number(await rows.first().locator("td").nth(1).innerText());
    // a beat takes milliseconds: its steps (waiting -> beating -> waiting) arrive live, one row each
    await check(async () => Number(await rows.first().locator("td").nth(1).innerText()) >= before + 4, 15_000, "new heart steps in the event list");
    const values = await rows.evaluateAll((trs) => trs.slice(0, 6).map((t) => t.getAttribute("data-value")));
    expect(new Set(values)).toEqual(new Set(["beating", "waiting"]));
    expect(await seenActive(page)).toContain("heart.waiting");
    // the step just taken is marked on its edge
    await page.locator('svg[data-chart="heart"] [data-taken="true"]').first().waitFor({ timeout: 10_000 });
    await shot(page, "actor-heart");
  });

  it("a started unit's task chart reaches running and its history grows", async () => {
    const f = join(work, "hello.service");
    writeFileSync(f, unitFile("ExecStart=/bin/sh -c 'while true; do echo tick; sleep 0.3; done'") + "\n[X-Fleet]\nCPU=0.5\nMemory=64M\n");
    const r = await runCli(["--nats", server.url, "--prefix", prefix, "start", f], { timeoutMs: 40_000 });
    expect(r.code, r.stderr).toBe(0);
    await page.goto(`${uiUrl}#/units`);
    const cell = page.locator('[data-unit="hello.service"] a .chip', { hasText: "running" });
    await cell.waitFor({ timeout: 20_000 });
    await shot(page, "units");
    await cell.click();
    await page.locator('svg[data-chart="task"]').waitFor({ timeout: 15_000 });
    await page.locator('svg[data-chart="task"] [data-state-id="task.running"][data-active="true"]').waitFor({ timeout: 15_000 });
    const values = await page.locator('[data-testid="events"] tbody tr').evaluateAll((trs) => trs.map((t) => t.getAttribute("data-value")));
    // one row per step, newest first: accepted -> preparing (init, through `always`), ready -> starting, running
    expect(values.length).toBeGreaterThanOrEqual(3);
    expect(values[0]).toBe("running");
    expect(values.at(-1)).toBe("preparing.run");
    expect(values).toContain("starting.run");
    // the transition that led to running is marked
    await page.locator('svg[data-chart="task"] [data-taken="true"]').first().waitFor({ timeout: 5_000 });
    await shot(page, "actor-task");
    // the machine that runs it shows the unit's reservation as used capacity
    const machine = (await page.locator('[data-testid="actor-detail"]').getAttribute("data-actor"))!.split("/")[0]!;
    await page.goto(`${uiUrl}#/cluster`);
    const cap = page.locator(`[data-machine="${machine}"] [data-capacity]`);
    await check(async () => /^0\.5 \/ \d+ cpu · 64 MiB \//.test(await cap.innerText()), 10_000, "0.5 cpu and 64 MiB reserved");
    await shot(page, "cluster-running");
  });

  it("shows, per machine, why a unit with an impossible MachineMetadata is not placed", async () => {
    const f = join(work, "nowhere.service");
    writeFileSync(f, unitFile("ExecStart=/bin/sleep 600") + "\n[X-Fleet]\nMachineMetadata=region=mars\n");
    const r = await runCli(["--nats", server.url, "--prefix", prefix, "start", "--no-block", f], { timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(0);
    await page.goto(`${uiUrl}#/units`);
    const why = page.locator('[data-unplaced="nowhere.service"]');
    await why.waitFor({ timeout: 20_000 });
    await check(async () => (await why.innerText()).includes("region=mars"), 15_000, "the combined reason");
    for (const m of ["ui-alpha", "ui-beta"]) {
      const refusal = page.locator(`[data-unit="nowhere.service"] [data-refusal="${m}"]`);
      await refusal.waitFor({ timeout: 15_000 });
      expect(await refusal.innerText()).toContain("region=mars");
    }
    await shot(page, "units-unplaced");
  });

  it("a reload shows the current states at once, from the stream", async () => {
    const machine = await check(async () => {
      const out = await runCli(["--nats", server.url, "--prefix", prefix, "list-units", "--json"]);
      const rows = JSON.parse(out.stdout) as { unit: string; machine: string; taskState: string }[];
      return rows.find((x) => x.unit === "hello.service" && x.taskState === "running")?.machine;
    }, 10_000, "hello.service running");
    await page.goto(`${uiUrl}#/actor/${encodeURIComponent(`${machine}/task:hello.service`)}`);
    await page.reload();
    // a running task publishes nothing more: only the stream's last message per subject has it
    const item = page.locator(`[data-actor-key="${machine}/task:hello.service"] [data-value]`);
    await check(async () => (await item.innerText()) === "running", 5_000, "the task shown running right after the reload");
    await page.locator('svg[data-chart="task"] [data-state-id="task.running"][data-active="true"]').waitFor({ timeout: 5_000 });
  });

  it("the timeline shows a state from the past", async () => {
    const machine = (await page.locator('[data-testid="actor-detail"]').getAttribute("data-actor"))!.split("/")[0]!;
    const key = `${machine}/task:hello.service`;
    await page.goto(`${uiUrl}#/timeline/${encodeURIComponent(key)}`);
    // the whole history is read from the stream: the task's first step is there
    const first = page.locator('[data-testid="events"] tbody tr[data-value="preparing.run"]');
    await first.waitFor({ timeout: 15_000 });
    const at = Number(await first.getAttribute("data-at"));
    await page.locator('[data-testid="scrubber"]').evaluate((el, v) => {
      (el as unknown as { value: string }).value = String(v);
      el.dispatchEvent(new Event("input", { bubbles: true }));
    }, at);
    const row = page.locator(`.timeline-table tr[data-actor-key="${key}"] [data-value]`);
    await check(async () => (await row.innerText()) === "preparing.run", 5_000, "the task shown as it was then");
    await page.locator('svg[data-chart="task"] [data-state-id="task.preparing.run"][data-active="true"]').waitFor({ timeout: 5_000 });
    expect(await page.locator('svg[data-chart="task"] [data-state-id="task.running"]').getAttribute("data-active")).toBe("false");
    expect(await page.locator('[data-testid="time-at"]').innerText()).not.toBe("live");
    await shot(page, "timeline");
    await page.locator('[data-testid="live"]').click();
    await check(async () => (await row.innerText()) === "running", 5_000, "back to live");
  });

  it("follows a unit's journal", async () => {
    await page.goto(`${uiUrl}#/journal/hello.service`);
    const j = page.locator('[data-testid="journal"]');
    await check(async () => ((await j.innerText()).match(/tick/g) ?? []).length >= 2, 15_000, "journal lines");
    const n = ((await j.innerText()).match(/tick/g) ?? []).length;
    await check(async () => ((await j.innerText()).match(/tick/g) ?? []).length > n, 10_000, "new lines while following");
    await shot(page, "journal");
  });

  it("stops a unit from the page, after a confirmation", async () => {
    await page.goto(`${uiUrl}#/units`);
    const row = page.locator('[data-unit="hello.service"]');
    await row.locator("button", { hasText: "Stop" }).click();
    await page.locator('[role="dialog"]').waitFor();
    expect(await page.locator('[role="dialog"]').innerText()).toContain("Stop hello.service?");
    await page.locator('[data-testid="confirm"]').click();
    await page.locator('[data-testid="action-done"]').waitFor({ timeout: 15_000 });
    await page.locator('[data-testid="close"]').click();
    await check(async () => !(await row.innerText()).includes("running") && (await row.innerText()).includes("loaded"), 20_000, "hello.service stopped");
  });

  it("shows an action's error as the API gave it", async () => {
    await page.goto(`${uiUrl}#/units`);
    const row = page.locator('[data-unit="nowhere.service"]');
    await row.locator("button", { hasText: "Stop" }).click();
    await page.locator('[role="dialog"]').waitFor();
    // while the person reads the question, someone else destroys the unit
    const r = await runCli(["--nats", server.url, "--prefix", prefix, "destroy", "nowhere.service"], { timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(0);
    await page.locator('[data-testid="confirm"]').click();
    const err = page.locator('[data-testid="action-error"]');
    await err.waitFor({ timeout: 15_000 });
    expect(await err.innerText()).toMatch(/^unknown_unit: unit nowhere\.service does not exist/);
    await shot(page, "action-error");
    await page.locator('[data-testid="close"]').click();
    await check(async () => (await row.count()) === 0, 15_000, "nowhere.service gone from the list");
  });

  it("downloads the history as NDJSON and opens it with no cluster", async () => {
    await page.goto(`${uiUrl}#/actor`);
    await page.locator('[data-actor-key="ui-alpha/heart"]').waitFor({ timeout: 15_000 });
    const [dl] = await Promise.all([page.waitForEvent("download"), page.locator('[data-testid="download"]').click()]);
    const file = join(work, "rec.ndjson");
    await dl.saveAs(file);
    const lines = readFileSync(file, "utf8").trim().split("\n");
    expect(JSON.parse(lines[0]!).recording).toBe("flotilla-inspect");
    expect(lines.length).toBeGreaterThan(10);
    // a page whose NATS is nowhere: the recording still opens and draws
    const offline = await startUi("ws://127.0.0.1:9");
    const p = await newPage();
    await p.goto(`${offline}#/actor/${encodeURIComponent("ui-alpha/heart")}`);
    await p.locator('[data-testid="conn"][data-state="failed"]').waitFor({ timeout: 15_000 });
    await p.locator('[data-testid="open-recording"]').setInputFiles(file);
    await p.locator('[data-testid="recording-banner"]').waitFor({ timeout: 10_000 });
    await p.locator('svg[data-chart="heart"]').waitFor({ timeout: 10_000 });
    await shot(p, "recording");
    await p.close();
  });

  it("says which nats-server option to set when the WebSocket listener is missing", async () => {
    // --nats-ws points at a port nothing listens on, while the NATS client port answers
    const bad = await startUi("ws://127.0.0.1:1");
    const p = await newPage();
    await p.goto(bad);
    const box = p.locator('[role="alert"]');
    await box.first().waitFor({ timeout: 15_000 });
    const text = await box.first().innerText();
    expect(text).toContain("nats-server has no WebSocket listener");
    expect(text).toContain('websocket { listen: "127.0.0.1:1", no_tls: true }');
    await p.locator('[data-testid="retry"]').waitFor();
    await shot(p, "no-websocket");
    await p.close();
  });

  it("an unknown actor is named as such", async () => {
    await page.goto(`${uiUrl}#/actor/${encodeURIComponent("ui-alpha/nonesuch")}`);
    await check(async () => (await page.locator('[role="alert"]').first().innerText()).includes("Unknown actor ui-alpha/nonesuch"), 10_000, "unknown actor");
  });

  it("names a definition hash no daemon describes, and fetches the statecharts again on request", async () => {
    await page.goto(`${uiUrl}#/actor/${encodeURIComponent("ui-alpha/ghost")}`);
    await page.locator('[data-testid="conn"][data-state="connected"]').waitFor({ timeout: 15_000 });
    // a step of an actor kind this version does not know (a daemon of another version)
    const nc = await connect({ servers: server.url });
    const step = { v: 2, machineId: "ui-alpha", session: "other", actor: "ghost", id: "ghost", seq: 1, defHash: "0123456789abcdef", event: "xstate.init", value: "haunting", transitions: [], status: "active", at: Date.now() };
    nc.publish(`${prefix}.inspect.ui-alpha.ghost`, JSON.stringify(step));
    await nc.flush();
    await nc.close();
    const detail = page.locator('[data-testid="actor-detail"]');
    const said = async () => (await detail.innerText()).includes("No daemon answering here describes definition 0123456789abcdef");
    await check(said, 10_000, "the unknown hash named");
    expect(await page.locator('[data-testid="current-value"]').innerText()).toBe("haunting");
    await shot(page, "unknown-hash");
    await page.locator('[data-testid="refetch"]').click();
    await check(said, 10_000, "asked again, still unknown");
  });

  it("made no request outside 127.0.0.1", () => {
    expect(requested.length).toBeGreaterThan(5);
    expect(requested.some((u) => u.startsWith("ws://127.0.0.1:"))).toBe(true);
    const outside = requested.filter((u) => {
      if (u.startsWith("data:") || u.startsWith("blob:")) return false;
      return new URL(u).hostname !== "127.0.0.1";
    });
    expect(outside).toEqual([]);
  });
});
