// A fresh cluster (prefix) for CLI tests: the API in the test process, a `flotilla` bound to it
// with --nats/--prefix, unit files in a temporary directory, and a way to write the states an
// agent would write.
import { mkdtempSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/nats-core";
import type { NatsServer } from "./nats-server.js";
import { uniquePrefix } from "./nats-server.js";
import { runCli } from "./cli.js";
import { startApiInProcess, type InProcessApi } from "./api-in-process.js";
import { encode } from "../../src/protocol/codec.js";
import { keys } from "../../src/protocol/names.js";
import { unitTriple, type TaskState, type UnitStateRecord } from "../../src/protocol/messages.js";
import { UnitStore } from "../../src/unit/store.js";

export async function cliCluster(server: NatsServer, nc: NatsConnection, dir: string, apis: InProcessApi[]) {
  const api = await startApiInProcess(nc, uniquePrefix("cli"), server.url);
  apis.push(api);
  const cli = (...args: string[]) => runCli(["--nats", server.url, "--prefix", api.names.prefix, ...args], { timeoutMs: 30_000 });
  const store = new UnitStore(api.buckets.units);
  const sub = mkdtempSync(join(dir, "u-"));
  const file = (name: string, contents: string): string => {
    const p = join(sub, name);
    writeFileSync(p, contents);
    return p;
  };
  const putState = async (unit: string, taskState: TaskState, machineId = "m-test", extra: Partial<UnitStateRecord> = {}) => {
    const rec: UnitStateRecord = {
      unit,
      machineId,
      hash: "0".repeat(40),
      taskState,
      ...unitTriple(taskState),
      restarts: 0,
      since: Date.now(),
      updatedAt: Date.now(),
      ...extra,
    };
    await api.buckets.states.put(keys.state(unit, machineId), encode(rec));
  };
  const snapshot = async () => JSON.stringify(await store.list());
  return { api, cli, store, file, putState, snapshot, sub };
}

