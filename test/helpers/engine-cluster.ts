// A small cluster for engine tests: a real nats-server (the caller's), buckets under a fresh
// prefix, in-process engines on their own connections, and simulated machines (records put
// into `machines` and refreshed on a short interval; stop refreshing and the machine dies).
import { createHash } from "node:crypto";
import type { NatsConnection } from "@nats-io/nats-core";
import { connectOnce } from "../../src/nats/connection.js";
import { ensureBuckets, type Buckets } from "../../src/nats/buckets.js";
import { Names, keys } from "../../src/protocol/names.js";
import { listKeys } from "../../src/nats/kv-keys.js";
import { encode, decodeAs } from "../../src/protocol/codec.js";
import { ScheduleEntry, UnplacedRecord, type Availability, type DesiredState, type MachineRecord, type UnitRecord } from "../../src/protocol/messages.js";
import { Engine } from "../../src/engine/engine.js";
import { createLogger, type Logger } from "../../src/log.js";
import pino from "pino";
import { uniquePrefix } from "./nats-server.js";

export interface ClusterOpts {
  agentTtlMs?: number;
  leaseTtlMs?: number;
  reconcileIntervalMs?: number;
}

export class EngineCluster {
  /** Each engine with its connection and those it opened itself (its lease's). */
  readonly engines: { engine: Engine; nc: NatsConnection; opened: NatsConnection[] }[] = [];
  private readonly beats = new Map<string, { timer: NodeJS.Timeout; record: MachineRecord }>();
  private watchers: { stop(): void }[] = [];

  private constructor(
    readonly url: string,
    readonly nc: NatsConnection,
    readonly names: Names,
    readonly buckets: Buckets,
    readonly o: Required<ClusterOpts>,
  ) {}

  static async create(url: string, opts: ClusterOpts = {}): Promise<EngineCluster> {
    const o = { agentTtlMs: 2000, leaseTtlMs: 1500, reconcileIntervalMs: 500, ...opts };
    const nc = await connectOnce({ url });
    const names = new Names(uniquePrefix("eng"));
    const buckets = await ensureBuckets(nc, names, o);
    return new EngineCluster(url, nc, names, buckets, o);
  }

  async startEngine(
    machineId = `engine${this.engines.length + 1}`,
    log?: Logger,
    opts: { leaseConnect?: (name: string) => Promise<NatsConnection>; /** The engine's main connection (watches, writes) goes here: a proxy, say. */ url?: string } = {},
  ): Promise<Engine> {
    const nc = await connectOnce({ url: opts.url ?? this.url });
    const buckets = await ensureBuckets(nc, this.names, this.o);
    const opened: NatsConnection[] = [];
    const engine = new Engine({
      buckets,
      nc,
      log: (log ?? createLogger({ name: machineId })).child({ component: "engine", machineId }),
      machineId,
      leaseTtlMs: this.o.leaseTtlMs,
      agentTtlMs: this.o.agentTtlMs,
      reconcileIntervalMs: this.o.reconcileIntervalMs,
      leaseConnection: {
        connect: async (name) => {
          if (opts.leaseConnect) return opts.leaseConnect(name);
          const c = await connectOnce({ url: this.url, name: `${machineId}-${name}` });
          opened.push(c);
          return c;
        },
        bucket: this.names.bucket("leases"),
      },
    });
    this.engines.push({ engine, nc, opened });
    await engine.start();
    return engine;
  }

  /** Kills an engine as SIGKILL would: its connection drops, nothing is released. */
  async killEngine(engine: Engine): Promise<void> {
    const i = this.engines.findIndex((e) => e.engine === engine);
    const [{ nc, opened }] = this.engines.splice(i, 1);
    // Close the connections first so that no goodbye (lease release) can reach the server.
    await nc.close();
    for (const c of opened) await c.close();
    await engine.stop().catch(() => undefined);
  }

  leader(): Engine | undefined {
    const ls = this.engines.filter((e) => e.engine.isLeader);
    return ls.length === 1 ? ls[0]!.engine : undefined;
  }

  // ---- simulated machines ----

  addMachine(id: string, o: { metadata?: Record<string, string>; cpu?: number; memory?: number; availability?: Availability } = {}): void {
    const record: MachineRecord = {
      id,
      hostname: id,
      publicIp: "",
      metadata: o.metadata ?? {},
      capacity: { cpu: o.cpu ?? 4, memory: o.memory ?? 8 * 2 ** 30 },
      availability: o.availability ?? "active",
      version: "test",
      startedAt: Date.now(),
      session: id,
      heartbeatAt: Date.now(),
    };
    const beat = () => void this.buckets.machines.put(keys.machine(id), encode({ ...record, heartbeatAt: Date.now() })).catch(() => undefined);
    beat();
    const timer = setInterval(beat, Math.max(100, Math.floor(this.o.agentTtlMs / 4)));
    this.beats.set(id, { timer, record });
  }

  setAvailability(id: string, availability: Availability): void {
    const b = this.beats.get(id)!;
    b.record.availability = availability;
    void this.buckets.machines.put(keys.machine(id), encode({ ...b.record, heartbeatAt: Date.now() }));
  }

  /** Stops a machine's heartbeats; its record then expires by TTL with no watch event. */
  killMachine(id: string): void {
    const b = this.beats.get(id);
    if (b) clearInterval(b.timer);
    this.beats.delete(id);
  }

  // ---- units ----

  async putUnit(name: string, contents: string, desiredState: DesiredState = "launched"): Promise<void> {
    const rec: UnitRecord = {
      name,
      contents,
      hash: createHash("sha1").update(contents).digest("hex"),
      desiredState,
      version: 1,
      createdAt: Date.now(),
      updatedAt: Date.now(),
    };
    await this.buckets.units.put(keys.unit(name), encode(rec));
  }

  async destroyUnit(name: string): Promise<void> {
    await this.buckets.units.delete(keys.unit(name));
  }

  /** unit -> machines it is scheduled on (non-unplaced keys), read fresh. */
  async schedule(): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    // listKeys, not kv.keys(): that one can wait forever when keys are deleted while it lists,
    // and a check() cannot time out a call that never returns.
    for (const k of await listKeys(this.nc, this.names.bucket("schedule"))) {
      if (keys.parseUnplaced(k) !== undefined) continue;
      const p = keys.parseSchedule(k);
      if (!p) continue;
      const e = await this.buckets.schedule.get(k);
      if (!e || e.operation !== "PUT") continue;
      try {
        decodeAs(ScheduleEntry, e.value, k);
      } catch {
        continue;
      }
      out.set(p.unit, [...(out.get(p.unit) ?? []), p.machineId]);
    }
    return out;
  }

  async entry(machineId: string, unit: string): Promise<ScheduleEntry | undefined> {
    const e = await this.buckets.schedule.get(keys.schedule(machineId, unit));
    return e && e.operation === "PUT" ? decodeAs(ScheduleEntry, e.value, "entry") : undefined;
  }

  async unplacedReason(unit: string): Promise<string | undefined> {
    const e = await this.buckets.schedule.get(keys.unplaced(unit));
    return e && e.operation === "PUT" ? decodeAs(UnplacedRecord, e.value, "unplaced").reason : undefined;
  }

  /**
   * Watches the schedule and records every moment a non-global unit is on two machines at once
   * (by stream order, which is what agents see). Returns the list of violations so far.
   */
  async watchInvariant(): Promise<() => string[]> {
    const on = new Map<string, Set<string>>();
    const violations: string[] = [];
    const w = await this.buckets.schedule.watch();
    this.watchers.push(w);
    void (async () => {
      for await (const e of w) {
        if (keys.parseUnplaced(e.key) !== undefined) continue;
        const p = keys.parseSchedule(e.key);
        if (!p) continue;
        const set = on.get(p.unit) ?? new Set<string>();
        if (e.operation === "PUT") set.add(p.machineId);
        else set.delete(p.machineId);
        on.set(p.unit, set);
        if (set.size > 1) violations.push(`${p.unit} on ${[...set].join(",")} at revision ${e.revision}`);
      }
    })();
    return () => violations;
  }

  async dispose(): Promise<void> {
    for (const w of this.watchers) w.stop();
    for (const b of this.beats.values()) clearInterval(b.timer);
    this.beats.clear();
    for (const { engine, nc } of this.engines.splice(0)) {
      await engine.stop().catch(() => undefined);
      await nc.close().catch(() => undefined);
    }
    await this.nc.close().catch(() => undefined);
  }
}

export function unitFile(fleet: Record<string, string | string[]> = {}): string {
  const lines = ["[Unit]", "Description=test", "", "[Service]", "ExecStart=/bin/sleep 600", ""];
  const entries = Object.entries(fleet);
  if (entries.length) {
    lines.push("[X-Fleet]");
    for (const [k, v] of entries) for (const x of Array.isArray(v) ? v : [v]) lines.push(`${k}=${x}`);
  }
  return lines.join("\n") + "\n";
}

/** A logger that keeps its lines (JSON) for assertions. */
export function capturingLogger(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const log = pino({ level: "info" }, { write: (s: string) => void lines.push(s) });
  return { log, lines };
}
