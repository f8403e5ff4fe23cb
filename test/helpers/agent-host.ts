// Runs the agent component (and nothing else of the daemon) against a test's nats-server, as
// the leader's stand-in: tests write schedule entries themselves, so they never depend on the
// engine. In-process (agentHost) or as its own process (spawnAgentHost, run with tsx) for the
// tests that SIGKILL the agent. Also: schedule/unschedule/readState helpers.
import { createHash } from "node:crypto";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, existsSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/nats-core";
import { connectOnce } from "../../src/nats/connection.js";
import { ensureBuckets, type Buckets } from "../../src/nats/buckets.js";
import { Names, keys } from "../../src/protocol/names.js";
import { encode, decodeAs } from "../../src/protocol/codec.js";
import { UnitStateRecord, type MachineRecord, type ScheduleEntry } from "../../src/protocol/messages.js";
import type { ClusterContext, DaemonConfig } from "../../src/server/context.js";
import { createLogger } from "../../src/log.js";
import { createAgent, type Agent } from "../../src/agent/agent.js";
import { ROOT } from "./cli.js";

export { killStateDirWorkloads } from "./workloads.js";

export interface HostOptions {
  url: string;
  prefix: string;
  machineId: string;
  stateDir?: string;
  agentTtlMs?: number;
  metadata?: Record<string, string>;
}

export interface AgentHost {
  agent: Agent;
  ctx: ClusterContext;
  nc: NatsConnection;
  stateDir: string;
  close(): Promise<void>;
}

export async function connectForever(url: string): Promise<NatsConnection> {
  return connect({ servers: url, maxReconnectAttempts: -1, reconnectTimeWait: 100, reconnectJitter: 20, pingInterval: 1000 });
}

export async function hostContext(o: HostOptions): Promise<{ ctx: ClusterContext; nc: NatsConnection; stateDir: string }> {
  const stateDir = o.stateDir ?? mkdtempSync(join(tmpdir(), "flotilla-agent-"));
  const ttl = o.agentTtlMs ?? 1500;
  const nc = await connectForever(o.url);
  const names = new Names(o.prefix);
  const buckets: Buckets = await ensureBuckets(nc, names, { agentTtlMs: ttl, leaseTtlMs: 2000 });
  const config: DaemonConfig = {
    natsUrl: o.url,
    prefix: o.prefix,
    machineId: o.machineId,
    metadata: o.metadata ?? {},
    stateDir,
    agentTtlMs: ttl,
    leaseTtlMs: 2000,
    engineEnabled: false,
    reconcileIntervalMs: 500,
    replicas: 1,
    stopTasksOnExit: false,
    taskLogMaxBytes: 64 * 2 ** 20,
  };
  const record: MachineRecord = {
    id: o.machineId,
    hostname: "test",
    publicIp: "127.0.0.1",
    metadata: o.metadata ?? {},
    capacity: { cpu: 2, memory: 2 ** 31 },
    availability: "active",
    version: "test",
    startedAt: Date.now(),
    session: "test",
    heartbeatAt: Date.now(),
  };
  const ctx: ClusterContext = {
    nc,
    names,
    buckets,
    log: createLogger().child({ machineId: o.machineId }),
    config,
    machineId: o.machineId,
    machine: () => record,
    connect: (name) => connectOnce({ url: o.url, name: `${o.machineId}-${name}` }),
  };
  return { ctx, nc, stateDir };
}

export async function agentHost(o: HostOptions): Promise<AgentHost> {
  const { ctx, nc, stateDir } = await hostContext(o);
  const agent = createAgent(ctx);
  await agent.start();
  return {
    agent,
    ctx,
    nc,
    stateDir,
    close: async () => {
      await agent.stop();
      await nc.close();
    },
  };
}

/** The agent host as its own process (test/helpers/agent-host-main.ts under tsx). */
export function spawnAgentHost(o: HostOptions & { stateDir: string }): ChildProcess & { output: () => string } {
  const child = spawn(process.execPath, ["--import", "tsx", join(ROOT, "test/helpers/agent-host-main.ts")], {
    cwd: ROOT,
    env: {
      ...process.env,
      HOST_URL: o.url,
      HOST_PREFIX: o.prefix,
      HOST_MACHINE_ID: o.machineId,
      HOST_STATE_DIR: o.stateDir,
      HOST_TTL_MS: String(o.agentTtlMs ?? 1500),
    },
    stdio: ["ignore", "pipe", "pipe"],
  }) as ChildProcess & { output: () => string };
  let out = "";
  child.stdout?.on("data", (d) => (out = (out + String(d)).slice(-100_000)));
  child.stderr?.on("data", (d) => (out = (out + String(d)).slice(-100_000)));
  child.output = () => out;
  return child;
}

export function unitHash(contents: string): string {
  return createHash("sha1").update(contents, "utf8").digest("hex");
}

/** Writes schedule/<machineId>.<unit> as the leader engine would. */
export async function schedule(
  buckets: Buckets,
  machineId: string,
  unit: string,
  contents: string,
  desiredState: "inactive" | "loaded" | "launched" = "launched",
  epoch = 1,
): Promise<ScheduleEntry> {
  const entry: ScheduleEntry = { unit, machineId, hash: unitHash(contents), desiredState, contents, epoch, scheduledAt: Date.now() };
  await buckets.schedule.put(keys.schedule(machineId, unit), encode(entry));
  return entry;
}

export async function unschedule(buckets: Buckets, machineId: string, unit: string): Promise<void> {
  await buckets.schedule.delete(keys.schedule(machineId, unit));
}

export async function readState(buckets: Buckets, unit: string, machineId: string): Promise<UnitStateRecord | undefined> {
  const e = await buckets.states.get(keys.state(unit, machineId));
  if (!e || e.operation !== "PUT") return undefined;
  return decodeAs(UnitStateRecord, e.value, "states");
}

/** Is pid alive (and not a zombie)? */
export function pidAlive(pid: number): boolean {
  if (!existsSync(`/proc/${pid}/stat`)) return false;
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = text.slice(text.lastIndexOf(")") + 2).split(" ")[0];
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}
