// One actor system per daemon (issue 11): a real daemon in this process, on a real nats-server,
// runs every role of it as a child of one root under its stable system id, and a unit's task
// manager joins the same system when the unit is started (and leaves it when destroyed).
import { afterAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { useNatsServer } from "../helpers/fixture.js";
import { uniquePrefix } from "../helpers/nats-server.js";
import { check } from "../helpers/check.js";
import { killStateDirWorkloads } from "../helpers/workloads.js";
import { Daemon } from "../../src/server/server.js";
import { loadConfig } from "../../src/server/config.js";
import { Names } from "../../src/protocol/names.js";

const nats = useNatsServer();
const stateDir = mkdtempSync(join(tmpdir(), "flotilla-actors-"));
let daemon: Daemon | undefined;

afterAll(async () => {
  await daemon?.stop();
  killStateDirWorkloads(stateDir);
  rmSync(stateDir, { recursive: true, force: true });
});

describe("a daemon's actor system", () => {
  it("holds machine, heart, monitor, engine, agent and one task manager per started unit", async () => {
    const prefix = uniquePrefix("actors");
    const names = new Names(prefix);
    const { config } = loadConfig({ flags: { nats_url: nats.server.url, prefix, state_dir: stateDir, machine_id: "a1", agent_ttl: "3s", lease_ttl: "2s" }, env: {} });
    daemon = new Daemon(config, pino({ level: "silent" }));
    await daemon.start();
    await check(() => ["agent", "engine", "heart", "machine", "monitor"].every((id) => daemon!.actorIds().includes(id)), 10_000, "every role in the system");
    const req = async (verb: string, body: unknown) => {
      const m = await nats.nc.request(names.apiSubject(verb), JSON.stringify(body), { timeout: 10_000 });
      expect(m.headers?.get("Nats-Service-Error-Code") ?? "", verb).toBe("");
    };
    await req("start", { units: [{ name: "one.service", contents: "[Service]\nExecStart=/bin/sleep 600\n" }] });
    await check(() => daemon!.actorIds().includes("task-manager:one.service"), 15_000, "the unit's task manager in the system", 50);
    expect(daemon.actorIds()).toEqual(["agent", "engine", "heart", "machine", "monitor", "task-manager:one.service"]);
    await req("destroy", { units: [{ name: "one.service" }] });
    await check(() => !daemon!.actorIds().includes("task-manager:one.service"), 15_000, "the task manager gone with its unit", 50);
    await daemon.stop();
    expect(daemon.actorIds()).toEqual([]);
    daemon = undefined;
  });
});
