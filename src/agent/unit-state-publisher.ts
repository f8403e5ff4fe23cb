// fleet's UnitStatePublisher: the latest state of each of this machine's units goes to
// states/<unit>.<machineId>. Changes are coalesced (latest only, not history) and written in
// one pipelined batch; every record is put again every TTL/2 so that the bucket's TTL (= agent
// TTL) removes a dead machine's states. While NATS is away writes fail and stay pending; the
// next flush sends the latest. A clean stop removes this machine's records.
import type { Logger } from "pino";
import { keys } from "../protocol/names.js";
import { encode } from "../protocol/codec.js";
import { describeError } from "../protocol/errors.js";
import { unitTriple, type UnitStateRecord } from "../protocol/messages.js";
import type { TaskStatus } from "./worker-store.js";
import type { StateWriter } from "../store/agent-store.js";

export function stateRecord(unit: string, machineId: string, s: TaskStatus, now = Date.now()): UnitStateRecord {
  const rec: UnitStateRecord = {
    unit,
    machineId,
    hash: s.hash,
    taskState: s.taskState,
    ...unitTriple(s.taskState),
    restarts: s.restarts,
    since: s.since,
    updatedAt: now,
  };
  if (s.pid !== undefined) rec.pid = s.pid;
  if (s.exitCode !== undefined) rec.exitCode = s.exitCode;
  if (s.signal !== undefined) rec.signal = s.signal;
  if (s.error !== undefined) rec.error = s.error;
  return rec;
}

export interface UnitStatePublisherOptions {
  /** The states bucket (the agent store's states; nats.js's KV will do). */
  kv: StateWriter;
  machineId: string;
  ttlMs: number;
  log: Logger;
}

export class UnitStatePublisher {
  private readonly latest = new Map<string, TaskStatus>();
  private readonly dirty = new Set<string>();
  private readonly removed = new Set<string>();
  private flushing = false;
  private again = false;
  private scheduled = false;
  private timer?: NodeJS.Timeout;
  private running = false;

  constructor(private readonly o: UnitStatePublisherOptions) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    const every = Math.max(100, Math.floor(this.o.ttlMs / 2));
    this.timer = setInterval(() => {
      for (const u of this.latest.keys()) this.dirty.add(u);
      this.schedule();
    }, every);
  }

  update(unit: string, status: TaskStatus): void {
    this.latest.set(unit, status);
    this.removed.delete(unit);
    this.dirty.add(unit);
    this.schedule();
  }

  remove(unit: string): void {
    this.latest.delete(unit);
    this.dirty.delete(unit);
    this.removed.add(unit);
    this.schedule();
  }

  /** Every pending write, now (after a reconnect). */
  resync(): void {
    for (const u of this.latest.keys()) this.dirty.add(u);
    this.schedule();
  }

  private schedule(): void {
    if (!this.running || this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  async flush(): Promise<void> {
    if (this.flushing) {
      this.again = true;
      return;
    }
    this.flushing = true;
    try {
      do {
        this.again = false;
        const puts = [...this.dirty];
        const dels = [...this.removed];
        this.dirty.clear();
        this.removed.clear();
        const now = Date.now();
        await Promise.all([
          ...puts.map(async (u) => {
            const s = this.latest.get(u);
            if (!s) return;
            try {
              await this.o.kv.put(keys.state(u, this.o.machineId), encode(stateRecord(u, this.o.machineId, s, now)));
            } catch (e) {
              if (this.latest.get(u) === s) this.dirty.add(u);
              this.o.log.debug({ unit: u, err: describeError(e) }, "state write failed; will retry");
            }
          }),
          ...dels.map(async (u) => {
            try {
              await this.o.kv.delete(keys.state(u, this.o.machineId));
            } catch (e) {
              if (!this.latest.has(u)) this.removed.add(u);
              this.o.log.debug({ unit: u, err: describeError(e) }, "state delete failed; will retry");
            }
          }),
        ]);
      } while (this.again && this.running);
    } finally {
      this.flushing = false;
    }
  }

  /** Stops writing; with removeAll, deletes this machine's records (bounded). */
  async stop(removeAll: boolean): Promise<void> {
    this.running = false;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (!removeAll) return;
    const units = [...new Set([...this.latest.keys(), ...this.removed])];
    const work = Promise.all(units.map((u) => this.o.kv.delete(keys.state(u, this.o.machineId)).catch(() => undefined)));
    await Promise.race([work, new Promise((r) => setTimeout(r, 2000))]);
    this.latest.clear();
  }
}
