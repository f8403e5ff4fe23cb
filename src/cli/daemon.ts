// `flotilla daemon` (fleetd): one process per host running the machine, heart, monitor, API and
// every registered component. Config: --config FILE (INI like fleet.conf) < FLOTILLA_* env <
// flags. SIGTERM/SIGINT stop it within a bounded time and remove its machine record.
import type { Command } from "commander";
import type { CommandRegistrar } from "./main.js";
import { existsSync } from "node:fs";
// The daemon's implementation (server, engine, xstate, lmdb, pino...) is imported when the
// command runs, not when the CLI starts: `flotilla --help` and every other verb skip it.
import type { LoadedConfig, RawConfig } from "../server/config.js";
import { FlotillaError } from "../protocol/errors.js";
import { Names } from "../protocol/names.js";
import type { DaemonConfig } from "../server/context.js";
import type { Logger } from "pino";

interface DaemonFlags {
  config?: string;
  machineId?: string;
  metadata?: string;
  publicIp?: string;
  capacity?: string;
  stateDir?: string;
  agentTtl?: string;
  leaseTtl?: string;
  engine?: boolean;
  api?: boolean;
  stopTasksOnExit?: boolean;
  reconcileInterval?: string;
  replicas?: string;
  taskLogMaxSize?: string;
  inspectMaxAge?: string;
  inspectMaxSize?: string;
  authEnv?: string;
}

/** Only what the user typed: commander's defaults (from NATS_URL etc.) must not beat the file. */
export function flagsOf(program: Command, cmd: Command): RawConfig {
  const o = cmd.opts<DaemonFlags>();
  const fromCli = (c: Command, name: string) => c.getOptionValueSource(name) === "cli";
  const flags: RawConfig = {};
  const g = program.opts<Record<string, string | undefined>>();
  if (fromCli(program, "nats")) flags.nats_url = g.nats;
  if (fromCli(program, "prefix")) flags.prefix = g.prefix;
  for (const k of ["creds", "user", "password", "token"] as const) if (fromCli(program, k)) flags[k] = g[k];
  if (fromCli(program, "tlsCa")) flags.tls_ca = g.tlsCa;
  if (fromCli(program, "tlsCert")) flags.tls_cert = g.tlsCert;
  if (fromCli(program, "tlsKey")) flags.tls_key = g.tlsKey;
  if (o.machineId !== undefined) flags.machine_id = o.machineId;
  if (o.metadata !== undefined) flags.metadata = o.metadata;
  if (o.publicIp !== undefined) flags.public_ip = o.publicIp;
  if (o.capacity !== undefined) flags.capacity = o.capacity;
  if (o.stateDir !== undefined) flags.state_dir = o.stateDir;
  if (o.agentTtl !== undefined) flags.agent_ttl = o.agentTtl;
  if (o.leaseTtl !== undefined) flags.lease_ttl = o.leaseTtl;
  if (o.reconcileInterval !== undefined) flags.reconcile_interval = o.reconcileInterval;
  if (o.replicas !== undefined) flags.replicas = o.replicas;
  if (fromCli(cmd, "engine") && o.engine === false) flags.disable_engine = "true";
  if (fromCli(cmd, "api") && o.api === false) flags.disable_api = "true";
  if (o.stopTasksOnExit) flags.stop_tasks_on_exit = "true";
  if (o.taskLogMaxSize !== undefined) flags.task_log_max_size = o.taskLogMaxSize;
  if (o.inspectMaxAge !== undefined) flags.inspect_max_age = o.inspectMaxAge;
  if (o.inspectMaxSize !== undefined) flags.inspect_max_size = o.inspectMaxSize;
  if (o.authEnv !== undefined) flags.auth_env = o.authEnv;
  return flags;
}

export function addDaemonOptions(cmd: Command): Command {
  return cmd
    .option("--config <file>", "INI config file like fleet.conf (env FLOTILLA_CONFIG)", process.env.FLOTILLA_CONFIG)
    .option("--machine-id <id>", "use this machine ID instead of the one kept in the state dir")
    .option("--metadata <k=v,...>", "machine metadata, e.g. region=us-west,az=1 (env FLOTILLA_METADATA)")
    .option("--public-ip <ip>", "IP to advertise (default: detected)")
    .option("--capacity <cpu=N,memory=SIZE>", "schedulable capacity (default: detected cores and memory)")
    .option("--state-dir <dir>", "where machine-id and local state live (env FLOTILLA_STATE_DIR; default ~/.local/state/flotilla)")
    .option("--agent-ttl <duration>", "machine heartbeat TTL (default 10s)")
    .option("--lease-ttl <duration>", "engine leader lease TTL (default 5s)")
    .option("--reconcile-interval <duration>", "engine reconcile period (default 2s)")
    .option("--replicas <n>", "replicas of the KV buckets (default 1)")
    .option("--no-engine", "do not run the engine on this machine (agent only)")
    .option("--no-api", "do not serve the API from this machine (with --no-engine: what a machine-role user may run; docs/auth.md)")
    .option("--task-log-max-size <size>", "a task's output file under <state-dir>/logs is rotated past this size (default 64M)")
    .option("--inspect-max-age <duration>", "how long the inspect stream keeps statechart steps for the visualizer (default 1h)")
    .option("--inspect-max-size <size>", "how much the inspect stream keeps (default 64M)")
    .option("--auth-env <file>", "NATS user and password (and machine ID) from one of flotilla auth's .env files (env FLOTILLA_AUTH_ENV)")
    .option(
      "--stop-tasks-on-exit",
      "stop every task when the daemon exits (default: tasks keep running and the next daemon adopts them)",
    );
}

/** How long a daemon waits for its auth_env file to appear before it gives up. */
export const AUTH_ENV_WAIT_MS = 60_000;

/**
 * The config, once its auth_env file exists: in a compose file the auth service writes it and
 * podman-compose cannot make the agents wait for that service to finish (no depends_on
 * conditions), so a daemon started first waits here, saying what for, instead of failing.
 */
async function loadConfigWhenAuthEnv(load: () => LoadedConfig, log: Logger): Promise<LoadedConfig> {
  const deadline = Date.now() + AUTH_ENV_WAIT_MS;
  for (let said = false; ; said = true) {
    try {
      return load();
    } catch (e) {
      const missing = e instanceof FlotillaError && e.field === "auth_env" && typeof e.value === "string" && !existsSync(e.value);
      if (!missing || Date.now() > deadline) throw e;
      if (!said) log.warn(`waiting up to ${AUTH_ENV_WAIT_MS / 1000} s for ${String(e.value)} (auth_env: this machine's NATS credentials; in the compose file the auth service writes them)`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/** Runs a daemon until SIGTERM/SIGINT; resolves with the exit code. */
export async function runDaemon(program: Command, cmd: Command): Promise<number> {
  const [{ createLogger }, { loadConfig }, { Daemon, SHUTDOWN_BUDGET_MS }] = await Promise.all([
    import("../log.js"),
    import("../server/config.js"),
    import("../server/server.js"),
  ]);
  const log = createLogger();
  const o = cmd.opts<DaemonFlags>();
  const { config, warnings } = await loadConfigWhenAuthEnv(() => loadConfig({ flags: flagsOf(program, cmd), file: o.config }), log);
  for (const w of warnings) log.warn(w);

  const abort = new AbortController();
  const daemon = new Daemon(config, log);
  let stopped: Promise<void> | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopped) {
      log.warn(`${sig} again: exiting now`);
      process.exit(1);
    }
    log.info(`${sig}: shutting down`);
    abort.abort();
    stopped = daemon.stop();
    // Bounded: whatever hangs, the process is gone shortly after the budget.
    setTimeout(() => {
      log.error(`shutdown took longer than ${SHUTDOWN_BUDGET_MS + 2000} ms; exiting`);
      process.exit(1);
    }, SHUTDOWN_BUDGET_MS + 2000).unref();
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  try {
    if (config.user || config.creds || config.token) await checkPermissions(config, log, abort.signal);
    await daemon.start(abort.signal);
  } catch (e) {
    if (stopped) {
      await stopped;
      return 0;
    }
    // A component that failed half-way must not keep a failed daemon alive.
    setTimeout(() => process.exit(process.exitCode ?? 1), 1000).unref();
    throw await refusedAtStart(e, config);
  }
  process.stdout.write(`flotilla daemon: machine ${daemon.machineId} is up (prefix ${config.prefix}, NATS ${config.natsUrl})\n`);
  await new Promise<void>((resolve) => {
    const wait = () => (stopped ? stopped.then(resolve) : setTimeout(wait, 100));
    wait();
  });
  process.off("SIGTERM", onSignal);
  process.off("SIGINT", onSignal);
  // Anything a component forgot to close must not keep a stopped daemon alive.
  setTimeout(() => process.exit(process.exitCode ?? 0), 300).unref();
  return 0;
}

/**
 * With credentials, before anything starts: are we allowed what this configuration does? A
 * refusal is a FlotillaError("permission_denied") naming the subject and the role (exit 1).
 */
async function checkPermissions(config: DaemonConfig, log: Logger, signal: AbortSignal): Promise<void> {
  const [{ ensureStateDir, resolveMachineId }, { connectWithRetry }, { probePermissions }] = await Promise.all([
    import("../machine/machine-id.js"),
    import("../nats/connection.js"),
    import("../auth/probe.js"),
  ]);
  ensureStateDir(config.stateDir);
  const machineId = resolveMachineId(config.stateDir, config.machineId);
  const nc = await connectWithRetry(
    { url: config.natsUrl, creds: config.creds, user: config.user, password: config.password, token: config.token, tls: config.tls, name: `flotilla-daemon-${machineId}-probe` },
    log,
    signal,
  );
  try {
    await probePermissions(nc, new Names(config.prefix), { machineId, engine: config.engineEnabled, api: config.apiEnabled !== false }, config.user);
  } finally {
    await nc.close().catch(() => undefined);
  }
}

/**
 * A refusal the start-up check could not foresee, said plainly: most often a machine-role
 * daemon that finds no buckets (only engines may create them).
 */
async function refusedAtStart(e: unknown, config: DaemonConfig): Promise<unknown> {
  const { permissionViolation } = await import("../auth/probe.js");
  const pv = permissionViolation(e);
  if (!pv) return e;
  const who = config.user ? `user "${config.user}"` : "these credentials";
  const create = /^\$JS\.API\.STREAM\.(CREATE|UPDATE)\./.test(pv.subject);
  return new FlotillaError(
    "permission_denied",
    `NATS refused ${who} to ${pv.operation} to ${pv.subject}` +
      (create
        ? ": the cluster's buckets and streams are missing or have other settings (--agent-ttl, --lease-ttl), and only an engine may create or change them; start an engine daemon first, or give this one the engine role"
        : ": this daemon's role does not allow it (docs/auth.md lists what each role may do)"),
    { field: "user", value: config.user, cause: e },
  );
}

export const registerDaemon: CommandRegistrar = (program) => {
  const cmd = program.command("daemon").description("run the flotilla daemon on this host (fleetd)");
  addDaemonOptions(cmd).action(async () => {
    const code = await runDaemon(program, cmd);
    if (code !== 0) throw new FlotillaError("internal", "daemon failed");
  });
};
