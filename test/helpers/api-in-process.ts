// The `flotilla` API service in the test process, with every registered handler, against a
// real nats-server and one prefix: enough to drive the API with raw bytes or point the CLI at
// it (--nats/--prefix) without a daemon.
import type { NatsConnection } from "@nats-io/nats-core";
import { ApiService } from "../../src/api/service.js";
import { buildHandlers } from "../../src/api/handlers.js";
import { connectOnce } from "../../src/nats/connection.js";
import { ensureBuckets, type Buckets } from "../../src/nats/buckets.js";
import { Names, keys } from "../../src/protocol/names.js";
import { encode } from "../../src/protocol/codec.js";
import { silentLogger } from "../../src/log.js";
import type { ClusterContext, DaemonConfig } from "../../src/server/context.js";
import { unitTriple, type MachineRecord, type TaskState, type UnitStateRecord } from "../../src/protocol/messages.js";

export interface InProcessApi {
  names: Names;
  buckets: Buckets;
  ctx: ClusterContext;
  stop(): Promise<void>;
}

export async function startApiInProcess(nc: NatsConnection, prefix: string, url: string, machineId = "m-test"): Promise<InProcessApi> {
  const names = new Names(prefix);
  const buckets = await ensureBuckets(nc, names, { agentTtlMs: 60_000, leaseTtlMs: 5_000 });
  const config: DaemonConfig = {
    natsUrl: url,
    prefix,
    machineId,
    metadata: {},
    stateDir: "/nonexistent",
    agentTtlMs: 60_000,
    leaseTtlMs: 5_000,
    engineEnabled: false,
    reconcileIntervalMs: 2_000,
    replicas: 1,
  } as DaemonConfig;
  const record: MachineRecord = {
    id: machineId,
    hostname: "test",
    publicIp: "10.0.0.1",
    metadata: {},
    capacity: { cpu: 2, memory: 2 ** 30 },
    availability: "active",
    version: "test",
    startedAt: Date.now(),
    session: "s",
    heartbeatAt: Date.now(),
  };
  // What the machine's heart would publish, so listings can show the machine's IP.
  await buckets.machines.put(keys.machine(machineId), encode(record));
  const ctx: ClusterContext = {
    nc,
    names,
    buckets,
    log: silentLogger,
    config,
    machineId,
    machine: () => record,
    connect: (name) => connectOnce({ url, name: `${machineId}-${name}` }),
  };
  const service = new ApiService({ nc, names, handlers: buildHandlers(ctx), log: silentLogger, version: "0.0.0-test", machineId });
  await service.start();
  return { names, buckets, ctx, stop: () => service.stop() };
}

/** Writes the states record an agent on machineId would write for unit in taskState. */
export async function putUnitState(
  buckets: Buckets,
  unit: string,
  machineId: string,
  taskState: TaskState,
  extra: Partial<UnitStateRecord> = {},
): Promise<void> {
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
  await buckets.states.put(keys.state(unit, machineId), encode(rec));
}
