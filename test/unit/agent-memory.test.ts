// The agent's logic on the in-memory store (src/store/memory-store.ts, MemoryAgentStore): the
// same Agent, watch loops, reconcile, task managers and state publisher as on NATS, with an
// executor that only records what it was asked (no processes) and no server. The worker store
// is real (LMDB in a temporary directory).
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/nats-core";
import { Agent } from "../../src/agent/agent.js";
import { Engine } from "../../src/engine/engine.js";
import { MemoryAgentStore, MemoryCluster, MemoryEngineStore } from "../../src/store/memory-store.js";
import type { Controller, ExitStatus, Executor, RunInfo, TaskSpec } from "../../src/exec/executor.js";
import type { ClusterContext } from "../../src/server/context.js";
import type { Buckets } from "../../src/nats/buckets.js";
import { decodeAs, encode } from "../../src/protocol/codec.js";
import { keys, Names } from "../../src/protocol/names.js";
import { UnitStateRecord, type MachineRecord, type ScheduleEntry, type UnitRecord } from "../../src/protocol/messages.js";
import { silentLogger } from "../../src/log.js";
import { check, holds } from "../helpers/check.js";

/** Runs nothing: says which units run, and what it was asked to start and stop. */
class RecordingExecutor implements Executor {
  readonly live = new Set<string>();
  readonly started: string[] = [];
  readonly stopped: string[] = [];
  private pid = 1000;

  controller(spec: TaskSpec): Controller {
    let exit!: (s: ExitStatus) => void;
    let exited = new Promise<ExitStatus>((r) => (exit = r));
    const end = (s: ExitStatus): ExitStatus => {
      if (this.live.delete(spec.unit)) this.stopped.push(spec.unit);
      exit(s);
      return s;
    };
    return {
      prepare: async () => undefined,
      start: async (): Promise<RunInfo> => {
        exited = new Promise<ExitStatus>((r) => (exit = r));
        this.live.add(spec.unit);
        this.started.push(spec.unit);
        const pid = ++this.pid;
        return { supervisorPid: pid, startTime: pid, mainPid: pid + 1, startedAt: Date.now() };
      },
      adopt: async () => ({ alive: false, exit: { unknown: true } }),
      wait: () => exited,
      shutdown: async () => end({ signal: "SIGTERM" }),
      terminate: async () => void end({ signal: "SIGKILL" }),
      remove: async () => undefined,
      close: () => undefined,
    };
  }
}

const SLEEP = "[Service]\nExecStart=/bin/sleep 600\n";
const hash = (contents: string) => createHash("sha1").update(contents).digest("hex");

function entry(machineId: string, unit: string, contents = SLEEP, epoch = 1): ScheduleEntry {
  return { unit, machineId, hash: hash(contents), desiredState: "launched", contents, epoch, scheduledAt: 1 };
}

function unitRecord(name: string, contents = SLEEP, desiredState: UnitRecord["desiredState"] = "launched"): UnitRecord {
  return { name, contents, hash: hash(contents), desiredState, version: 1, createdAt: 1, updatedAt: 1 };
}

function machineRecord(id: string, metadata: Record<string, string>): MachineRecord {
  const now = Date.now();
  return { id, hostname: id, publicIp: "", metadata, capacity: { cpu: 4, memory: 2 ** 33 }, availability: "active", version: "t", startedAt: now, session: id, heartbeatAt: now };
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** An agent of machine `machineId` on `cluster`, started. */
async function agentOn(cluster: MemoryCluster, machineId: string, metadata: Record<string, string> = {}) {
  const stateDir = mkdtempSync(join(tmpdir(), "flotilla-agent-memory-"));
  cleanups.push(() => rmSync(stateDir, { recursive: true, force: true }));
  const store = new MemoryAgentStore(cluster, machineId);
  const executor = new RecordingExecutor();
  const record = machineRecord(machineId, metadata);
  const ctx: ClusterContext = {
    // Only the statechart inspectors see it: they publish nothing on a closed connection.
    nc: { isClosed: () => true } as unknown as NatsConnection,
    names: new Names("t"),
    buckets: {} as Buckets,
    log: silentLogger,
    config: {
      natsUrl: "memory",
      prefix: "t",
      metadata,
      stateDir,
      // Long: no re-put of the states every TTL/2 during a test (a resync must write them).
      agentTtlMs: 600_000,
      leaseTtlMs: 5000,
      engineEnabled: false,
      reconcileIntervalMs: 200,
      replicas: 1,
      stopTasksOnExit: false,
      taskLogMaxBytes: 2 ** 20,
    },
    machineId,
    machine: () => record,
    connect: () => Promise.reject(new Error("no NATS in this test")),
  };
  const agent = new Agent(ctx, { executor, store });
  cleanups.push(() => agent.stop());
  await agent.start();
  return { agent, store, executor };
}

/** The state record machine `machineId` wrote for `unit`, if any. */
function stateOf(cluster: MemoryCluster, unit: string, machineId: string): UnitStateRecord | undefined {
  const v = cluster.states.live().get(keys.state(unit, machineId));
  return v ? decodeAs(UnitStateRecord, v, "state") : undefined;
}

describe("the agent on the in-memory store", () => {
  it("starts what its slice of the schedule assigns, writes its state, and stops it when it moves away", async () => {
    const cluster = new MemoryCluster();
    const { executor, store } = await agentOn(cluster, "m1");
    cluster.schedule.write(keys.schedule("m1", "a.service"), encode(entry("m1", "a.service")));
    cluster.schedule.write(keys.schedule("m2", "other.service"), encode(entry("m2", "other.service")));
    await check(() => executor.live.has("a.service"), 5000, "a.service started");
    await check(() => stateOf(cluster, "a.service", "m1")?.taskState === "running", 5000, "a.service's state: running");
    expect(stateOf(cluster, "a.service", "m1")).toMatchObject({ active: "active", sub: "running", hash: hash(SLEEP) });
    expect(store.journal.following.has("a.service")).toBe(true);
    // Another machine's slice is none of its business.
    expect(executor.started).toEqual(["a.service"]);

    // The engine moves a.service to m2.
    cluster.schedule.write(keys.schedule("m2", "a.service"), encode(entry("m2", "a.service")));
    await cluster.schedule.delete(keys.schedule("m1", "a.service"));
    await check(() => executor.stopped.includes("a.service"), 5000, "a.service stopped");
    expect(executor.live.has("a.service")).toBe(false);
    await check(() => stateOf(cluster, "a.service", "m1") === undefined, 5000, "a.service's state removed");
    expect(store.journal.following.has("a.service")).toBe(false);
  });

  it("stops but keeps a unit whose entry asks for loaded, and starts it again when it asks for launched", async () => {
    const cluster = new MemoryCluster();
    const { executor } = await agentOn(cluster, "m1");
    cluster.schedule.write(keys.schedule("m1", "a.service"), encode(entry("m1", "a.service")));
    await check(() => executor.live.has("a.service"), 5000, "a.service started");
    cluster.schedule.write(keys.schedule("m1", "a.service"), encode({ ...entry("m1", "a.service"), desiredState: "loaded" }));
    await check(() => executor.stopped.includes("a.service"), 5000, "a.service stopped");
    await check(() => stateOf(cluster, "a.service", "m1")?.active === "inactive", 5000, "a.service's state: inactive, still there");
    cluster.schedule.write(keys.schedule("m1", "a.service"), encode(entry("m1", "a.service")));
    await check(() => executor.started.length === 2 && executor.live.has("a.service"), 5000, "a.service started again");
  });

  it("runs the Global units whose metadata this machine has, and no others", async () => {
    const cluster = new MemoryCluster();
    const global = (extra = "") => `${SLEEP}[X-Fleet]\nGlobal=true\n${extra}`;
    cluster.units.write(keys.unit("everywhere.service"), encode(unitRecord("everywhere.service", global())));
    cluster.units.write(keys.unit("us.service"), encode(unitRecord("us.service", global("MachineMetadata=region=us\n"))));
    cluster.units.write(keys.unit("eu.service"), encode(unitRecord("eu.service", global("MachineMetadata=region=eu\n"))));
    cluster.units.write(keys.unit("off.service"), encode(unitRecord("off.service", global(), "inactive")));
    cluster.units.write(keys.unit("plain.service"), encode(unitRecord("plain.service")));
    const { executor } = await agentOn(cluster, "m1", { region: "us" });
    await check(() => executor.live.has("everywhere.service") && executor.live.has("us.service"), 5000, "the two globals that fit started");
    await holds(() => executor.started.length === 2, 300, "nothing else started");
    expect(stateOf(cluster, "us.service", "m1")?.taskState).toBe("running");
    // A global that stops fitting (its unit is destroyed) is stopped.
    await cluster.units.delete(keys.unit("us.service"));
    await check(() => executor.stopped.includes("us.service"), 5000, "us.service stopped");
  });

  it("after a lost connection, watches anew: what moved away meanwhile is stopped, what came is started, every state is written again", async () => {
    const cluster = new MemoryCluster();
    const { executor, store, agent } = await agentOn(cluster, "m1");
    for (const u of ["a.service", "b.service"]) cluster.schedule.write(keys.schedule("m1", u), encode(entry("m1", u)));
    await check(() => stateOf(cluster, "a.service", "m1")?.taskState === "running" && stateOf(cluster, "b.service", "m1")?.taskState === "running", 5000, "a and b running");
    const aWritten = (await cluster.states.get(keys.state("a.service", "m1")))!.revision;

    store.disconnect();
    // What happens while the agent cannot hear it.
    await cluster.schedule.delete(keys.schedule("m1", "b.service"));
    cluster.schedule.write(keys.schedule("m1", "c.service"), encode(entry("m1", "c.service")));
    await holds(() => executor.live.has("b.service") && !executor.live.has("c.service"), 300, "tasks untouched while disconnected");

    store.reconnect();
    await check(() => executor.stopped.includes("b.service"), 5000, "b.service stopped after the resync");
    await check(() => executor.live.has("c.service"), 5000, "c.service started after the resync");
    expect(executor.live.has("a.service")).toBe(true);
    await check(async () => (await cluster.states.get(keys.state("a.service", "m1")))!.revision > aWritten, 5000, "a.service's state written again");
    await check(() => stateOf(cluster, "b.service", "m1") === undefined, 5000, "b.service's state removed");
    // Later changes reach it again.
    await cluster.schedule.delete(keys.schedule("m1", "c.service"));
    await check(() => executor.stopped.includes("c.service"), 5000, "c.service stopped");
    expect(agent.snapshot().map((t) => t.unit)).toEqual(["a.service"]);
  });

  it("runs what the engine places, on one in-memory cluster", async () => {
    const cluster = new MemoryCluster();
    for (const m of ["m1", "m2"]) cluster.machines.write(keys.machine(m), encode(machineRecord(m, {})));
    const engine = new Engine({ store: new MemoryEngineStore(cluster), log: silentLogger, machineId: "m1", leaseTtlMs: 3000, agentTtlMs: 600_000, reconcileIntervalMs: 200 });
    cleanups.push(() => engine.stop());
    const [m1, m2] = [await agentOn(cluster, "m1"), await agentOn(cluster, "m2")];
    await engine.start();
    for (let i = 0; i < 4; i++) cluster.units.write(keys.unit(`u${i}.service`), encode(unitRecord(`u${i}.service`)));
    await check(() => m1.executor.live.size + m2.executor.live.size === 4, 5000, "4 units running");
    expect([m1.executor.live.size, m2.executor.live.size]).toEqual([2, 2]);
    for (const [m, { executor }] of [["m1", m1], ["m2", m2]] as const) {
      for (const u of executor.live) await check(() => stateOf(cluster, u, m)?.taskState === "running", 5000, `${u}'s state on ${m}`);
    }
  });
});
