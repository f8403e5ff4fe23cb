// The composition root (fleet's server.New): builds the concrete parts and injects them into
// the statecharts. Order of start: connect (retrying visibly), buckets, machine identity and the
// duplicate machine-ID check, first heartbeat, heart + monitor, the machine control subject, the
// API service, then every registered component. Stop runs in reverse, bounded in time, and
// removes the machine record (fleet's Purge on shutdown).
import { randomBytes } from "node:crypto";
import type { NatsConnection, Subscription, Msg } from "@nats-io/nats-core";
import { fromPromise, type ActorRefFrom } from "xstate";
import { ActorSystem } from "./actor-system.js";
import type { Logger } from "pino";
import { z } from "zod";
import { connectOnce, connectWithRetry, redialIfSilent } from "../nats/connection.js";
import { jetstreamManager } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { ensureBuckets, type Buckets } from "../nats/buckets.js";
import { isTemporaryJsError, retryingBuckets, withJsRetry } from "../nats/js-retry.js";
import { Names, keys } from "../protocol/names.js";
import { encode, decodeAs } from "../protocol/codec.js";
import { Availability, MachineRecord } from "../protocol/messages.js";
import { FlotillaError, describeError, isWrongLastSequence, showValue } from "../protocol/errors.js";
import { ApiService } from "../api/service.js";
import { buildHandlers } from "../api/handlers.js";
import { VERSION } from "../version.js";
import { componentFactories, serialized } from "./components.js";
import type { ClusterContext, Component, DaemonConfig } from "./context.js";
import { CONTEXT_ACTORS, inspector } from "../inspect/publisher.js";
import { DEFAULT_INSPECT_LIMITS, ensureInspectStream } from "../inspect/stream.js";
import { detectHost } from "../machine/detect.js";
import { machineMachine } from "../machine/machine.machine.js";
import { heartMachine } from "../machine/heart.machine.js";
import { monitorMachine } from "../machine/monitor.machine.js";
import {
  decideOwnership,
  ensureStateDir,
  pidAlive,
  readAvailability,
  readDaemonStamp,
  resolveMachineId,
  writeAvailability,
  writeDaemonStamp,
} from "../machine/machine-id.js";

/** Consecutive failed beats after which the monitor stops the components. */
export const MONITOR_THRESHOLD = 3;
/**
 * A heartbeat pending this long makes the daemon ping NATS, and a PING unanswered this long
 * makes it redial: a silent link is left within about TTL/2 + 2 x this, not at TCP's next
 * retransmission or after the client's pings give up (20-30 s).
 */
export const LINK_PROBE_MS = 1000;
/** The whole shutdown, components included, finishes within this. */
export const SHUTDOWN_BUDGET_MS = 8000;
/** How often the machine actor re-detects IP, cpu and memory. */
export const REFRESH_MS = 60_000;

const AvailabilityRequest = z.object({ availability: Availability });

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new FlotillaError("timeout", `${what} did not finish within ${ms} ms`, { temporary: true })), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(t));
}

/** True when the server we are connected to answers $JS.API.INFO (JetStream is on there). */
async function jetStreamAnswers(nc: NatsConnection): Promise<boolean> {
  try {
    await jetstreamManager(nc, { timeout: 2000 });
    return true;
  } catch (e) {
    // A timeout is not a "no": the server may just be busy.
    return !/not enabled/i.test(describeError(e));
  }
}

export interface MachineHeart {
  /** Puts the record once, now. */
  beat(): Promise<void>;
}

/**
 * Puts `record()` with a fresh heartbeatAt into the machines bucket, bounded by TTL/2 (at least
 * 1 s) so a put
 * stuck on a dead connection counts as a failed beat instead of hanging the heart.
 */
export function kvBeat(buckets: Buckets, ttlMs: number, record: () => Omit<MachineRecord, "heartbeatAt">): () => Promise<void> {
  return async () => {
    const r = record();
    // At least a second: on a loaded machine a slow put is not a dead server.
    const bound = Math.max(1000, Math.floor(ttlMs / 2));
    // A JetStream cluster electing the bucket's leader after a node loss refuses puts at once
    // ("jetstream is not enabled") for 5-6 s: retried within the bound, that is one failed beat
    // at most, not three in 2.5 s (which made the monitor stop every component, the API too).
    const p = withJsRetry(() => buckets.machines.put(keys.machine(r.id), encode({ ...r, heartbeatAt: Date.now() })), {
      budgetMs: bound - 100,
      delayMs: 100,
      maxDelayMs: 500,
    });
    p.catch(() => undefined);
    await withTimeout(p, bound, "heartbeat put");
  };
}

/**
 * The first beat: a compare-and-set of our record against the revision the duplicate check read.
 * False when another daemon's session holds the key now. Two other ways the compare-and-set
 * fails are not duplicates:
 * - the record the check read expired (the bucket's max age) or was removed just after: the key
 *   is empty now. This throws a temporary error, and the caller checks again (it had made a
 *   daemon restarted one TTL after a SIGKILL exit with "already in use ... at the same moment");
 * - the key holds our own session: an earlier attempt of ours, retried after a timeout, landed.
 */
export async function claimMachineRecord(kv: KV, key: string, record: MachineRecord, seenRevision: number): Promise<boolean> {
  try {
    if (seenRevision === 0) await kv.create(key, encode(record));
    else await kv.update(key, encode(record), seenRevision);
    return true;
  } catch (e) {
    if (!isWrongLastSequence(e)) throw e;
  }
  const now = await kv.get(key);
  if (!now || now.operation !== "PUT" || now.value.length === 0) {
    throw new FlotillaError("conflict", `the machine record ${key} expired or was removed while this daemon registered; checking it again`, {
      temporary: true,
    });
  }
  try {
    return decodeAs(MachineRecord, now.value, key).session === record.session;
  } catch {
    return false;
  }
}

export class Daemon {
  readonly log: Logger;
  readonly session = randomBytes(8).toString("hex");
  machineId = "";
  private nc?: NatsConnection;
  private names: Names;
  private buckets?: Buckets;
  private machine?: ActorRefFrom<typeof machineMachine>;
  private heart?: ActorRefFrom<typeof heartMachine>;
  /** A link probe (probeLink) is in flight. */
  private probing = false;
  /** Between the client's "disconnect" and "reconnect": it is dialing. */
  private linkDown = false;
  private monitor?: ActorRefFrom<typeof monitorMachine>;
  /** The daemon's one actor system: machine, heart, monitor, engine (+ lease), agent, task managers. */
  private actors?: ActorSystem;
  private control?: Subscription;
  private api?: ApiService;
  private components: { name: string; component: Component }[] = [];
  private componentsUp = false;
  private lastBeatAt = 0;
  private stopping?: Promise<void>;
  private beatOnce?: () => Promise<void>;

  /** The system ids of the actors this daemon runs now (for tests and tools). */
  actorIds(): string[] {
    return this.actors?.ids() ?? [];
  }

  constructor(
    readonly config: DaemonConfig,
    private readonly rootLog: Logger,
  ) {
    this.names = new Names(config.prefix);
    this.log = rootLog.child({ component: "daemon" });
  }

  get connection(): NatsConnection | undefined {
    return this.nc;
  }

  async start(signal?: AbortSignal): Promise<void> {
    try {
      await this.startInner(signal);
    } catch (e) {
      // Whatever got started (actors, components, the record) goes away with us.
      await this.stop().catch(() => undefined);
      throw e;
    }
  }

  private async startInner(signal?: AbortSignal): Promise<void> {
    const c = this.config;
    ensureStateDir(c.stateDir);
    this.machineId = resolveMachineId(c.stateDir, c.machineId);
    const log = this.log.child({ machineId: this.machineId });
    const availability = readAvailability(c.stateDir);

    const nc = await connectWithRetry(
      { url: c.natsUrl, creds: c.creds, user: c.user, password: c.password, token: c.token, tls: c.tls, name: `flotilla-daemon-${this.machineId}` },
      log,
      signal,
    );
    this.nc = nc;
    void this.watchStatus(nc, log);
    if (signal?.aborted) throw new FlotillaError("timeout", "stopped while starting");

    const buckets = await this.untilJetStream(
      "create the buckets",
      () => ensureBuckets(nc, this.names, { agentTtlMs: c.agentTtlMs, leaseTtlMs: c.leaseTtlMs, replicas: c.replicas }),
      nc,
      log,
      signal,
    );
    this.buckets = buckets;
    // The inspect stream (inspection v2): a viewer that comes late reads every actor's state there.
    await this.untilJetStream("create the inspect stream", () => ensureInspectStream(nc, this.names, { maxAgeMs: c.inspectMaxAgeMs ?? DEFAULT_INSPECT_LIMITS.maxAgeMs, maxBytes: c.inspectMaxBytes ?? DEFAULT_INSPECT_LIMITS.maxBytes }, c.replicas), nc, log, signal);

    const facts = detectHost();
    // Every statechart of this daemon runs in it, and its one inspector publishes them all.
    const actors = new ActorSystem({ inspect: inspector(nc, this.names, this.machineId, undefined, { withContext: CONTEXT_ACTORS }), log });
    this.actors = actors;
    this.machine = actors.spawn(
      machineMachine.provide({
        actors: {
          detect: fromPromise(async () => detectHost()),
          persistAvailability: fromPromise<void, { availability: Availability }>(async ({ input }) =>
            writeAvailability(c.stateDir, input.availability),
          ),
        },
      }),
      {
        systemId: "machine",
        input: {
          identity: {
            id: this.machineId,
            version: VERSION,
            session: this.session,
            startedAt: Date.now(),
            metadata: c.metadata,
            publicIp: c.publicIp,
            capacity: c.capacity,
          },
          facts,
          availability,
          refreshMs: REFRESH_MS,
        },
      },
    );

    const put = kvBeat(buckets, c.agentTtlMs, () => this.machine!.getSnapshot().context.record);
    this.beatOnce = async () => {
      // A beat still pending after LINK_PROBE_MS may be a dead link: ask for a PONG, and redial
      // when none comes (connection.ts, redialIfSilent).
      const probe = setTimeout(() => void this.probeLink(nc, log), LINK_PROBE_MS);
      try {
        await put();
      } finally {
        clearTimeout(probe);
      }
      this.lastBeatAt = Date.now();
    };
    // The first beat is a compare-and-set against what the duplicate check read, so two daemons
    // started at once with one ID cannot both win; it is awaited: once start() returns, the
    // machine is listed. Check and claim are retried together: a claim that timed out may have
    // landed, and the next check then finds our own session's record.
    await this.untilJetStream("register the machine", async () => this.claim(buckets, await this.checkDuplicate(buckets, log)), nc, log, signal);
    writeDaemonStamp(c.stateDir, { session: this.session, pid: process.pid });
    this.lastBeatAt = Date.now();
    log.info({ availability, metadata: c.metadata }, "machine registered");

    this.monitor = actors.spawn(
      monitorMachine.provide({
        actors: {
          stopComponents: fromPromise(async () => {
            log.warn({ threshold: MONITOR_THRESHOLD }, "monitor: heartbeats keep failing; stopping components until NATS answers again");
            await this.stopComponents(log);
          }),
          startComponents: fromPromise(async () => {
            log.info("monitor: heartbeat recovered; restarting components");
            await this.startComponents(log);
          }),
        },
      }),
      { systemId: "monitor", input: { threshold: MONITOR_THRESHOLD } },
    );
    this.heart = actors.spawn(heartMachine.provide({ actors: { beat: fromPromise(() => this.beatOnce!()) } }), {
      systemId: "heart",
      input: { ttlMs: c.agentTtlMs },
    });
    this.heart.on("heart.ok", () => this.monitor?.send({ type: "BEAT_OK" }));
    this.heart.on("heart.failed", (e) => {
      log.warn({ failures: e.failures }, `heartbeat failed (${e.failures} in a row): ${e.error}; retrying`);
      this.monitor?.send({ type: "BEAT_FAILED", failures: e.failures });
    });
    this.machine.on("machine.changed", () => this.heart?.send({ type: "BEAT_NOW" }));

    this.control = nc.subscribe(this.names.machineControlSubject(this.machineId, "availability"), {
      callback: (err, msg) => {
        // Anyone on the bus can publish here: a failure is logged, never an unhandled rejection.
        if (!err) this.onAvailability(msg, log).catch((e: unknown) => log.warn(`availability request failed: ${describeError(e)}`));
      },
    });

    await this.startComponents(log);
    log.info({ prefix: c.prefix, agentTtlMs: c.agentTtlMs, engine: c.engineEnabled, stateDir: c.stateDir }, "daemon started");
  }

  /**
   * Runs one start-up step against JetStream until it succeeds, waiting with backoff (up to 5 s)
   * and a visible line on every temporary failure: right after a server (re)start, while daemons
   * create the R3 buckets of a cluster at the same moment, or while a cluster elects a leader,
   * requests time out or find no responder for a while. Never gives up on those (only `signal`
   * ends the wait). "jetstream is not enabled" is fatal only when the server we are connected to
   * says JetStream is off; in a cluster it also means "this stream has no leader yet".
   */
  private async untilJetStream<T>(what: string, fn: () => Promise<T>, nc: NatsConnection, log: Logger, signal?: AbortSignal): Promise<T> {
    let delay = 250;
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (e) {
        const text = describeError(e);
        if (!isTemporaryJsError(e) || signal?.aborted) throw e;
        if (/not enabled/i.test(text) && !(await jetStreamAnswers(nc))) {
          throw new FlotillaError(
            "nats_unavailable",
            `cannot ${what}: JetStream is not enabled on the NATS server (nats-server -js, or jetstream {} in its config): ${text}`,
            { cause: e },
          );
        }
        log.warn(`waiting for JetStream to ${what}: ${text} (attempt ${attempt}, retrying in ${delay} ms)`);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, delay);
          signal?.addEventListener("abort", () => {
            clearTimeout(t);
            resolve();
          });
        });
        if (signal?.aborted) throw new FlotillaError("timeout", `stopped while waiting for JetStream to ${what}`);
        delay = Math.min(delay * 2, 5000);
      }
    }
  }

  private duplicateError(detail: string): FlotillaError {
    return new FlotillaError(
      "duplicate_machine_id",
      `machine ID ${this.machineId} is already in use by a live daemon${detail}. ` +
        `Stop that daemon, or give this one another --machine-id or --state-dir.`,
      { field: "machine_id", value: this.machineId },
    );
  }

  private async claim(buckets: Buckets, seen: { revision: number }): Promise<void> {
    const record = { ...this.machine!.getSnapshot().context.record, heartbeatAt: Date.now() };
    const won = await claimMachineRecord(buckets.machines, keys.machine(this.machineId), record, seen.revision);
    if (!won) throw this.duplicateError(" (another daemon registered it at the same moment)");
  }

  /** fleet's duplicate machine-ID check; see decideOwnership for the rule. */
  private async checkDuplicate(buckets: Buckets, log: Logger): Promise<{ revision: number }> {
    const key = keys.machine(this.machineId);
    const entry = await buckets.machines.get(key);
    let existing: MachineRecord | undefined;
    if (entry && entry.operation === "PUT" && entry.value.length > 0) {
      try {
        existing = decodeAs(MachineRecord, entry.value, `${this.names.bucket("machines")}/${key}`);
      } catch (e) {
        log.warn(`overwriting an unreadable machine record: ${describeError(e)}`);
      }
    }
    const d = decideOwnership(existing, {
      session: this.session,
      now: Date.now(),
      ttlMs: this.config.agentTtlMs,
      stamp: readDaemonStamp(this.config.stateDir),
      alive: pidAlive,
    });
    if (!d.take) {
      const host = existing?.hostname ? ` on host ${existing.hostname}` : "";
      throw this.duplicateError(`${host} (last heartbeat ${d.ageMs} ms ago)`);
    }
    if (d.reason === "own-previous") log.info("taking over the machine record of this state dir's previous daemon (its process is gone)");
    return { revision: entry && entry.operation === "PUT" ? entry.revision : 0 };
  }

  private async onAvailability(msg: Msg, log: Logger): Promise<void> {
    const reply = (v: unknown) => {
      try {
        if (msg.reply) msg.respond(JSON.stringify(v));
      } catch {
        /* requester gone */
      }
    };
    let body: unknown;
    try {
      body = JSON.parse(new TextDecoder().decode(msg.data) || "{}");
    } catch {
      reply({ error: { code: "bad_json", message: "availability request is not JSON; send {\"availability\":\"drain\"}" } });
      return;
    }
    const parsed = AvailabilityRequest.safeParse(body);
    if (!parsed.success) {
      const a = (body as { availability?: unknown })?.availability;
      reply({
        error: {
          code: "bad_request",
          field: "availability",
          // showValue, not JSON.stringify: 100,000 nested arrays overflowed the stack and ended the daemon.
          message: `availability ${showValue(a)} is not one of active, pause, drain`,
        },
      });
      return;
    }
    this.machine?.send({ type: "SET_AVAILABILITY", availability: parsed.data.availability });
    try {
      await this.beatOnce?.();
    } catch (e) {
      log.warn(`availability changed but the record could not be put yet: ${describeError(e)}`);
    }
    log.info({ availability: parsed.data.availability }, "availability changed");
    reply(this.record());
  }

  private record(): MachineRecord {
    return { ...this.machine!.getSnapshot().context.record, heartbeatAt: this.lastBeatAt };
  }

  private context(log: Logger): ClusterContext {
    return {
      nc: this.nc!,
      names: this.names,
      buckets: this.buckets!,
      log: log,
      config: this.config,
      machineId: this.machineId,
      machine: () => this.record(),
      actors: this.actors,
      connect: (name) => {
        const c = this.config;
        return connectOnce({
          url: c.natsUrl,
          creds: c.creds,
          user: c.user,
          password: c.password,
          token: c.token,
          tls: c.tls,
          name: `flotilla-daemon-${this.machineId}-${name}`,
        });
      },
    };
  }

  private async startComponents(log: Logger): Promise<void> {
    if (this.componentsUp) return;
    const ctx = this.context(log);
    if (!this.api && this.config.apiEnabled !== false) {
      this.api = new ApiService({
        nc: this.nc!,
        names: this.names,
        // The API's KV reads and writes retry what a JetStream cluster refuses while it elects a
        // leader (a few seconds after a node loss): a late answer beats an error.
        handlers: buildHandlers({
          ...ctx,
          buckets: retryingBuckets(ctx.buckets),
          log: this.rootLog.child({ component: "api", machineId: this.machineId }),
        }),
        log: this.rootLog.child({ component: "api", machineId: this.machineId }),
        version: VERSION,
        machineId: this.machineId,
      });
    }
    if (this.components.length === 0) {
      for (const f of componentFactories) {
        const component = f.create({ ...ctx, log: this.rootLog.child({ component: f.name, machineId: this.machineId }) });
        if (component) this.components.push({ name: f.name, component: serialized(component) });
      }
    }
    this.componentsUp = true;
    await this.api?.start();
    for (const { name, component } of this.components) {
      try {
        await component.start();
        log.debug({ part: name }, "component started");
      } catch (e) {
        log.error({ part: name }, `component ${name} failed to start: ${describeError(e)}`);
        throw e;
      }
    }
  }

  private async stopComponents(log: Logger, budgetMs = SHUTDOWN_BUDGET_MS / 2): Promise<void> {
    if (!this.componentsUp) return;
    this.componentsUp = false;
    const each = Math.max(500, Math.floor(budgetMs / (this.components.length + 1)));
    for (const { name, component } of [...this.components].reverse()) {
      await withTimeout(component.stop(), each, `stopping ${name}`).catch((e) =>
        log.warn({ part: name }, `component ${name} did not stop cleanly: ${describeError(e)}`),
      );
    }
    await withTimeout(this.api?.stop() ?? Promise.resolve(), each, "stopping the API").catch(() => undefined);
  }

  private async probeLink(nc: NatsConnection, log: Logger): Promise<void> {
    if (this.probing || this.linkDown) return; // the client is dialing already
    this.probing = true;
    try {
      if (await redialIfSilent(nc, LINK_PROBE_MS)) {
        log.warn(
          `NATS did not answer a ping within ${LINK_PROBE_MS} ms while a heartbeat was waiting: the connection looks dead ` +
            `(a cable pulled, a network detached, the server's host gone); dropping it and dialing again`,
        );
      }
    } catch (e) {
      log.warn(`probing the NATS connection failed: ${describeError(e)}`);
    } finally {
      this.probing = false;
    }
  }

  private async watchStatus(nc: NatsConnection, log: Logger): Promise<void> {
    try {
      for await (const s of nc.status()) {
        if (s.type === "disconnect" || s.type === "reconnect") this.linkDown = s.type === "disconnect";
        if (s.type === "disconnect") log.warn(`disconnected from NATS (${"server" in s ? s.server : ""}); reconnecting`);
        else if (s.type === "reconnect") {
          log.info(`reconnected to NATS (${"server" in s ? s.server : ""})`);
          // Back now, not at the heart's next retry (up to TTL/3 away).
          this.heart?.send({ type: "BEAT_NOW" });
        }
      }
    } catch {
      /* connection closed */
    }
  }

  /** Graceful stop: components, heart, record removal, connection. Idempotent and bounded. */
  stop(): Promise<void> {
    this.stopping ??= this.stopInner();
    return this.stopping;
  }

  private async stopInner(): Promise<void> {
    const log = this.log.child({ machineId: this.machineId });
    const deadline = Date.now() + SHUTDOWN_BUDGET_MS;
    const left = () => Math.max(200, deadline - Date.now());
    if (this.monitor) this.actors?.stop(this.monitor);
    if (this.componentsUp) {
      for (const { name, component } of [...this.components].reverse()) {
        if (!component.prepareExit) continue;
        await withTimeout(component.prepareExit(), Math.max(500, left() - 3000), `preparing ${name} to exit`).catch((e) =>
          log.warn({ part: name }, `${name} did not finish its exit work: ${describeError(e)}`),
        );
      }
    }
    await this.stopComponents(log, left() - 2000);
    this.control?.unsubscribe();
    this.actors?.close(); // the heart and the machine (the components stopped theirs)
    if (this.buckets && this.machineId && this.lastBeatAt > 0) {
      await withTimeout(this.buckets.machines.purge(keys.machine(this.machineId)), Math.min(1500, left()), "removing the machine record")
        .then(() => log.info("machine record removed"))
        .catch((e) => log.warn(`could not remove the machine record (it expires after the agent TTL): ${describeError(e)}`));
    }
    await this.abandon(left());
    log.info("daemon stopped");
  }

  private async abandon(ms = 2000): Promise<void> {
    const nc = this.nc;
    this.nc = undefined;
    if (!nc || nc.isClosed()) return;
    await withTimeout(nc.drain(), Math.min(ms, 2000), "draining NATS").catch(() => nc.close().catch(() => undefined));
  }
}
