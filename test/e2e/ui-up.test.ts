// `flotilla up` serves the dashboard too and prints its URL: in a real browser (Debian's
// chromium), the operator signs in with the password up wrote and sees the machine. Ctrl-C
// (SIGINT) stops the dashboard with the rest.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext } from "playwright-core";
import { check } from "../helpers/check.js";
import { spawnCli, stopChild } from "../helpers/cli.js";
import { uniquePrefix } from "../helpers/nats-server.js";
import { killStateDirWorkloads } from "../helpers/workloads.js";
import { readEnvFile } from "../../src/auth/users.js";
import { portFree } from "../../src/util/net.js";

const CHROMIUM = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";
const dataDir = mkdtempSync(join(tmpdir(), "flotilla-ui-up-"));
let ctx: BrowserContext;

async function freePorts(n: number): Promise<number[]> {
  const out: number[] = [];
  for (let p = 20_000 + Math.floor(Math.random() * 20_000); out.length < n; p++) if (await portFree(p)) out.push(p);
  return out;
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium, or set CHROMIUM_BIN`);
  ctx = await chromium.launchPersistentContext(mkdtempSync(join(dataDir, "chromium-")), {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
    viewport: { width: 1400, height: 900 },
  });
});

afterAll(async () => {
  await ctx?.close();
  killStateDirWorkloads(join(dataDir, "state"));
  rmSync(dataDir, { recursive: true, force: true });
});

describe("flotilla up", () => {
  it("runs the dashboard and prints its URL; the operator signs in and sees the machine", async () => {
    const [port, http, ws] = await freePorts(3);
    const prefix = uniquePrefix("uiup");
    const child = spawnCli(["--prefix", prefix, "up", "--data-dir", dataDir, "--port", String(port), "--http-port", String(http), "--ws-port", String(ws), "--agent-ttl", "2s", "--ui", "127.0.0.1:0"]);
    try {
      await check(() => child.output().includes("Press Ctrl-C to stop.") || child.exitCode !== null, 30_000, "up to say it is up");
      const m = /dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(child.output());
      expect(m, child.output()).not.toBeNull();
      const url = m![1]!;
      const cfg = (await (await fetch(`${url}config.json`)).json()) as { wsUrl: string; prefix: string };
      expect(cfg).toEqual({ wsUrl: `ws://127.0.0.1:${ws}`, prefix });
      const op = readEnvFile(join(dataDir, "auth", "operator.env"));
      const page = await ctx.newPage();
      await page.goto(`${url}#/cluster`);
      const form = page.locator('[data-testid="signin"]');
      await form.waitFor({ timeout: 15_000 });
      await form.locator('input[name="user"]').fill(op.NATS_USER!);
      await form.locator('input[name="pass"]').fill(op.NATS_PASSWORD!);
      await form.locator("button").click();
      await page.locator('[data-testid="conn"][data-state="connected"]').waitFor({ timeout: 15_000 });
      await page.locator("[data-machine]").first().waitFor({ timeout: 15_000 });
      await page.close();
      child.kill("SIGINT");
      await check(() => child.exitCode !== null, 30_000, "up to exit on SIGINT");
      await expect(fetch(url)).rejects.toThrow();
    } finally {
      await stopChild(child, "SIGINT");
    }
  });
});
