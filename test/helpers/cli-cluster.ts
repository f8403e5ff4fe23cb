// A fresh cluster (prefix) for CLI tests: the API in the test process, a `flotilla` bound to it
// with --nats/--prefix, unit files in a temporary directory, and a way to write the states an
// agent would write. useCliCluster() sets up the file's nats-server and returns the factory.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll } from "vitest";
import { uniquePrefix } from "./nats-server.js";
import { runCli } from "./cli.js";
import { useNatsServer } from "./fixture.js";
import { putUnitState, startApiInProcess, type InProcessApi } from "./api-in-process.js";
import type { TaskState, UnitStateRecord } from "../../src/protocol/messages.js";
import { UnitStore } from "../../src/unit/store.js";

export type CliCluster = Awaited<ReturnType<ReturnType<typeof useCliCluster>>>;

/** Call at the top level of a test file; each call of the returned function is a new cluster. */
export function useCliCluster() {
  const nats = useNatsServer();
  const apis: InProcessApi[] = [];
  let dir: string | undefined;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "flotilla-cli-units-"));
  });
  nats.defer(async () => {
    for (const a of apis.splice(0)) await a.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  return async function cliCluster() {
    const { server, nc } = nats;
    const api = await startApiInProcess(nc, uniquePrefix("cli"), server.url);
    apis.push(api);
    const cli = (...args: string[]) => runCli(["--nats", server.url, "--prefix", api.names.prefix, ...args], { timeoutMs: 30_000 });
    const store = new UnitStore(api.buckets.units);
    const sub = mkdtempSync(join(dir!, "u-"));
    const file = (name: string, contents: string): string => {
      const p = join(sub, name);
      writeFileSync(p, contents);
      return p;
    };
    const putState = (unit: string, taskState: TaskState, machineId = "m-test", extra: Partial<UnitStateRecord> = {}) =>
      putUnitState(api.buckets, unit, machineId, taskState, extra);
    const snapshot = async () => JSON.stringify(await store.list());
    return { api, cli, store, file, putState, snapshot, sub, nc };
  };
}
