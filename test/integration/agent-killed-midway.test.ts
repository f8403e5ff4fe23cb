// A daemon SIGKILLed at the worst moments of its agent's life must never leave a workload it
// forgot: the next daemon on the same state dir adopts what runs, one copy per unit (found by the
// chaos test, issue 9 §5). Two moments: between starting a workload and recording it in the
// worker store, and while a restarted agent is taking its tasks back.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, mkdirSync, watch, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NatsServer, uniquePrefix } from "../helpers/nats-server.js";
import { daemonArgs, startDaemon, stopAllDaemons, type RunningDaemon } from "../helpers/daemon.js";
import { runCli, spawnCli } from "../helpers/cli.js";
import { check, holds } from "../helpers/check.js";
import { scanWorkloads } from "../helpers/chaos-observe.js";

let server: NatsServer;
beforeAll(async () => {
  server = await NatsServer.start();
});
afterAll(async () => {
  await stopAllDaemons();
  await server?.dispose();
});

function units(kind: string, n: number) {
  const dir = mkdtempSync(join(tmpdir(), `${kind}-units-`));
  const tag = String(process.pid % 1000) + String(Date.now() % 100000).padStart(5, "0");
  const byMarker = new Map<string, string>();
  const files: string[] = [];
  for (let i = 1; i <= n; i++) {
    const marker = `903.${tag}${String(i).padStart(2, "0")}`;
    const name = `${kind}-${i}.service`;
    byMarker.set(marker, name);
    const f = join(dir, name);
    writeFileSync(f, `[Service]\nExecStart=/bin/sleep ${marker}\n`);
    files.push(f);
  }
  return { byMarker, files, names: [...byMarker.values()] };
}

async function killed(d: RunningDaemon): Promise<void> {
  d.child.kill("SIGKILL");
  await check(() => d.child.exitCode !== null || d.child.signalCode !== null, 10_000, "the daemon gone");
}

/** Every unit runs exactly once, and keeps doing so for a while. */
async function onceEach(byMarker: Map<string, string>, dirs: Map<string, string>, names: string[]): Promise<void> {
  const counts = () => {
    const seen = scanWorkloads(byMarker, dirs);
    return names.map((u) => `${u}:${seen.get(u)?.length ?? 0}`);
  };
  const want = names.map((u) => `${u}:1`);
  await check(() => JSON.stringify(counts()) === JSON.stringify(want) || undefined, 20_000, "one process per unit").catch((e) => {
    throw new Error(`${(e as Error).message}\nprocesses: ${counts().join(" ")}`);
  });
  await holds(() => JSON.stringify(counts()) === JSON.stringify(want), 3000, "one process per unit");
}

describe("an agent SIGKILLed midway", () => {
  it("between starting workloads and recording them: the next agent adopts them, no second copies", async () => {
    const prefix = uniquePrefix("mid");
    const stateDir = mkdtempSync(join(tmpdir(), "flotilla-mid-"));
    mkdirSync(join(stateDir, "run"), { recursive: true });
    const d = await startDaemon({ server, prefix, machineId: "mid1", stateDir });
    const u = units("mid", 10);
    // The moment the first supervisor writes its workload's pid (inotify, well under a ms).
    const gone = new Promise<void>((resolve) => {
      const w = watch(join(stateDir, "run"), { recursive: true }, (_ev, f) => {
        if (String(f).endsWith("/pid")) {
          d.child.kill("SIGKILL");
          w.close();
          resolve();
        }
      });
    });
    void runCli(["--nats", server.url, "--prefix", prefix, "start", "--no-block", ...u.files]).catch(() => undefined);
    await gone;
    await killed(d);
    await startDaemon({ server, prefix, machineId: "mid1", stateDir });
    await onceEach(u.byMarker, new Map([["mid1", stateDir]]), u.names);
  }, 90_000);

  it("while a restarted agent takes its tasks back: the next agent adopts them, no second copies", async () => {
    const prefix = uniquePrefix("adp");
    const stateDir = mkdtempSync(join(tmpdir(), "flotilla-adp-"));
    const d1 = await startDaemon({ server, prefix, machineId: "adp1", stateDir });
    const u = units("adp", 10);
    const r = await runCli(["--nats", server.url, "--prefix", prefix, "start", ...u.files]);
    expect(r.code, r.stderr).toBe(0);
    await killed(d1);
    // The daemon is watched from its first line: it is killed the moment it says it took its
    // tasks back, while their `accepted` steps are being written over `running` in the store
    // and the adoptions are still under way.
    const d2 = spawnCli(daemonArgs({ server, prefix, machineId: "adp1", stateDir }, stateDir));
    const line = (chunk: Buffer) => {
      if (/resumed tasks from the worker store/.test(String(chunk))) d2.kill("SIGKILL");
    };
    d2.stderr?.on("data", line);
    d2.stdout?.on("data", line);
    await check(() => d2.exitCode !== null || d2.signalCode !== null, 30_000, "the second daemon killed as it resumed");
    expect(d2.output()).toMatch(/resumed tasks from the worker store/);
    await startDaemon({ server, prefix, machineId: "adp1", stateDir });
    await onceEach(u.byMarker, new Map([["adp1", stateDir]]), u.names);
  }, 90_000);
});
