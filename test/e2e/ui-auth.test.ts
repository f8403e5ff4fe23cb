// `flotilla ui` against a nats-server with the users of `flotilla auth init` (what `flotilla up`
// runs by default): the page asks for a user and password, and a viewer sees the cluster and
// its statecharts (API verbs, the inspect stream, live steps) without one refusal in the
// server's log. Debian's chromium via playwright-core, a real engine daemon.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext } from "playwright-core";
import { AuthNatsServer } from "../helpers/auth-nats-server.js";
import { uniquePrefix } from "../helpers/nats-server.js";
import { check } from "../helpers/check.js";
import { spawnCli, stopChild } from "../helpers/cli.js";
import { killStateDirWorkloads } from "../helpers/workloads.js";
import { AUTH_CONF, initAuth, type Credentials } from "../../src/auth/users.js";

const CHROMIUM = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";
const prefix = uniquePrefix("uiauth");
const dir = mkdtempSync(join(tmpdir(), "flotilla-ui-auth-"));
let server: AuthNatsServer;
let creds: Record<string, Credentials>;
let wsPort: number;
const children: ReturnType<typeof spawnCli>[] = [];
let ctx: BrowserContext;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium, or set CHROMIUM_BIN`);
  creds = Object.fromEntries(initAuth({ dir: join(dir, "auth"), prefix, machines: [{ id: "ua-1", role: "engine" }] }).map((c) => [c.role === "engine" ? "engine" : c.user, c]));
  wsPort = await freePort();
  server = await AuthNatsServer.start(join(dir, "auth", AUTH_CONF), [`websocket { listen: "127.0.0.1:${wsPort}", no_tls: true }`]);
  const e = creds.engine!;
  children.push(
    spawnCli(["daemon", "--machine-id", "ua-1", "--state-dir", join(dir, "state"), "--agent-ttl", "2s", "--lease-ttl", "2s", "--stop-tasks-on-exit"], {
      NATS_URL: server.url,
      NATS_USER: e.user,
      NATS_PASSWORD: e.password,
      FLOTILLA_PREFIX: prefix,
    }),
  );
  await check(() => children[0]!.output().includes("is up"), 30_000, `the daemon up:\n${children[0]!.output()}`);
  ctx = await chromium.launchPersistentContext(mkdtempSync(join(dir, "chromium-")), {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
    viewport: { width: 1400, height: 900 },
  });
}, 90_000);

afterAll(async () => {
  await ctx?.close();
  for (const c of children) await stopChild(c);
  killStateDirWorkloads(join(dir, "state"));
  await server?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe("flotilla ui with NATS users", () => {
  it("asks for a user and password; a viewer then sees machines and live statecharts, with no refusal", async () => {
    const ui = spawnCli(["--nats", server.url, "--prefix", prefix, "ui", "--listen", "127.0.0.1:0", "--nats-ws", `ws://127.0.0.1:${wsPort}`]);
    children.push(ui);
    const url = (await check(() => /flotilla ui: (http:\S+)/.exec(ui.output()), 15_000, "flotilla ui to listen"))[1]!;
    const page = await ctx.newPage();
    await page.goto(`${url}#/actor/${encodeURIComponent("ua-1/heart")}`);
    const form = page.locator('[data-testid="signin"]');
    await form.waitFor({ timeout: 15_000 });
    expect(await page.locator('[role="alert"]').first().innerText()).toContain("operator.env");
    await form.locator('input[name="user"]').fill(creds.viewer!.user);
    await form.locator('input[name="pass"]').fill("not the password");
    await form.locator("button").click();
    await check(async () => (await page.locator('[role="alert"]').first().innerText()).includes("NATS refused the user viewer"), 15_000, "a refused password said so");
    await page.locator('[data-testid="signin"] input[name="pass"]').fill(creds.viewer!.password);
    await page.locator('[data-testid="signin"] button').click();
    await page.locator('[data-testid="conn"][data-state="connected"]').waitFor({ timeout: 15_000 });
    // the heart's chart, from the definition (statecharts verb) and the stream (push consumer into the viewer's inbox)
    await page.locator('svg[data-chart="heart"] [data-active="true"]').first().waitFor({ timeout: 15_000 });
    const rows = page.locator('[data-testid="events"] tbody tr');
    const first = Number(await rows.first().locator("td").nth(1).innerText());
    await check(async () => Number(await rows.first().locator("td").nth(1).innerText()) > first + 1, 15_000, "live heart steps");
    await page.goto(`${url}#/cluster`);
    await page.locator('[data-machine="ua-1"]').waitFor({ timeout: 15_000 });
    expect(server.violations()).toEqual([]);
  });
});
