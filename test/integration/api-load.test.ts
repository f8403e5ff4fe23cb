// Issue 10 §0: `flotilla load` of 1,000 local unit files against a real daemon. The CLI cuts
// them into requests of at most 200 units (watched here on the API subject), the daemon writes
// every unit, and a warning from a later request still reaches the user.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { NatsConnection } from "@nats-io/nats-core";
import { NatsServer, uniquePrefix } from "../helpers/nats-server.js";
import { check } from "../helpers/check.js";
import { runCli } from "../helpers/cli.js";
import { startDaemon, stopAllDaemons } from "../helpers/daemon.js";
import { connectOnce } from "../../src/nats/connection.js";
import { Names } from "../../src/protocol/names.js";
import { UnitStore } from "../../src/unit/store.js";
import { openBuckets } from "../../src/nats/buckets.js";
import { listKeys } from "../../src/nats/kv-keys.js";

let server: NatsServer;
let nc: NatsConnection;
beforeAll(async () => {
  server = await NatsServer.start();
  nc = await connectOnce({ url: server.url });
});
afterAll(async () => {
  await stopAllDaemons();
  await nc?.close();
  await server?.dispose();
});

describe("flotilla load of many files", () => {
  test("1,000 local files: requests of at most 200 units, every unit loaded, warnings of every request printed", async () => {
    const prefix = uniquePrefix("apiload");
    const names = new Names(prefix);
    await startDaemon({ server, prefix, machineId: "al1" });
    const dir = mkdtempSync(join(tmpdir(), "flotilla-apiload-"));
    const files = Array.from({ length: 1000 }, (_, i) => {
      const f = join(dir, `bulk-${String(i).padStart(4, "0")}.service`);
      writeFileSync(f, `[Unit]\nDescription=bulk ${i}\n\n[Service]\nExecStart=/bin/sleep 600\n`);
      return f;
    });
    // Every request of the verb, as the daemon's API service receives it.
    const seen: number[] = [];
    const sub = nc.subscribe(names.apiSubject("load"), {
      callback: (_e, m) => {
        seen.push((JSON.parse(new TextDecoder().decode(m.data)) as { units: unknown[] }).units.length);
      },
    });
    await nc.flush();
    const cli = (...args: string[]) => runCli(["--nats", server.url, "--prefix", prefix, ...args], { timeoutMs: 120_000 });
    // The CLI's own start-up, for comparison: one file.
    const one = join(dir, "one.service");
    writeFileSync(one, "[Service]\nExecStart=/bin/sleep 600\n");
    const t1 = performance.now();
    expect((await cli("load", "--no-block", one)).code).toBe(0);
    const oneMs = performance.now() - t1;
    seen.length = 0;
    const t0 = performance.now();
    const r = await cli("load", "--no-block", ...files);
    const took = performance.now() - t0;
    expect(r.code, r.stderr).toBe(0);
    console.log(`flotilla load --no-block: 1 file ${Math.round(oneMs)} ms, 1,000 files ${Math.round(took)} ms (the CLI process included); load average ${(await import("node:os")).loadavg()[0]!.toFixed(1)}`);
    expect(r.stdout.split("\n").filter((l) => l.startsWith("Triggered unit bulk-"))).toHaveLength(1000);
    await check(() => seen.length === 5, 10_000, "5 load requests seen");
    expect(seen).toEqual([200, 200, 200, 200, 200]);

    const b = await openBuckets(nc, names);
    const store = new UnitStore(b.units, { listKeys: () => listKeys(nc, names.bucket("units")) });
    const listed = await store.list();
    expect(listed).toHaveLength(1001);
    expect(listed.every((u) => u.desiredState === "loaded" && u.version === 1)).toBe(true);

    // The last file changed on disk: the warning comes from the 5th request, and is printed.
    writeFileSync(files[999]!, "[Service]\nExecStart=/bin/sleep 601\n");
    seen.length = 0;
    const again = await cli("load", "--no-block", ...files);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain("WARNING: unit bulk-0999.service in the cluster differs from the given unit file");
    expect(again.stdout.split("\n").filter((l) => l.startsWith("Unit bulk-") && l.includes("already loaded"))).toHaveLength(1000);
    expect(seen).toEqual([200, 200, 200, 200, 200]);
    sub.unsubscribe();
  }, 180_000);
});
