// What the composition root hands every component: the concrete connection, names, buckets,
// a child logger and this daemon's configuration. Components never open connections or
// create loggers of their own: one that needs a connection apart asks ctx.connect.
import type { ActorHost } from "./actor-system.js";
import type { NatsConnection } from "@nats-io/nats-core";
import type { Logger } from "pino";
import type { Buckets } from "../nats/buckets.js";
import type { Names } from "../protocol/names.js";
import type { MachineRecord } from "../protocol/messages.js";

export interface DaemonConfig {
  natsUrl: string;
  prefix: string;
  machineId?: string; // undefined: read/generate in stateDir
  publicIp?: string;
  metadata: Record<string, string>;
  capacity?: { cpu?: number; memory?: number };
  stateDir: string;
  agentTtlMs: number; // default 10 s
  leaseTtlMs: number; // default 5 s
  engineEnabled: boolean; // --no-engine turns it off
  reconcileIntervalMs: number; // default 2 s
  replicas: number; // bucket replicas, default 1
  /**
   * On a real exit (SIGTERM/SIGINT, not a monitor restart) stop every task first. Off for a host
   * daemon, whose tasks outlive it and are adopted by the next one; on for `flotilla up`.
   */
  stopTasksOnExit: boolean;
  /**
   * A task's output file under <state-dir>/logs is cut back to empty once it has grown past this
   * and all of it is in the journal; the previous contents are kept as <file>.1. Default 64 MiB.
   */
  taskLogMaxBytes: number;
  creds?: string;
  user?: string;
  password?: string;
  token?: string;
  /** Client TLS files (--tls-ca, --tls-cert, --tls-key). */
  tls?: { ca?: string; cert?: string; key?: string };
  /** --no-api: this daemon does not serve the API (a machine-role daemon under auth). Default on. */
  apiEnabled?: boolean;
  /** The inspect stream's limits (the visualizer's history): default 1 h and 64 MiB. */
  inspectMaxAgeMs?: number;
  inspectMaxBytes?: number;
}

export interface ClusterContext {
  nc: NatsConnection;
  names: Names;
  buckets: Buckets;
  log: Logger;
  config: DaemonConfig;
  machineId: string;
  /** The latest machine record this daemon has published (metadata, capacity, availability). */
  machine(): MachineRecord;
  /**
   * Opens a further connection with this daemon's NATS options and credentials, for traffic that
   * must not queue behind the floods on `nc` (the engine's lease). The caller closes it.
   */
  connect(name: string): Promise<NatsConnection>;
  /**
   * The daemon's one actor system (server/actor-system.ts): parts start their statecharts in it
   * under stable system ids. Absent (a part used on its own): each makes its own.
   */
  actors?: ActorHost;
}

/** Every long-lived part: idempotent start/stop, stop bounded in time. */
export interface Component {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Called once before stop() when the daemon itself exits (never on a monitor restart). */
  prepareExit?(): Promise<void>;
}
