// The journal: every task's stdout/stderr, line by line, into the JetStream stream
// <prefix>-journal on <prefix>.journal.<unit>.<machineId>, with size, age and per-subject
// limits. The workload writes to a file under <state-dir>/logs/ (so it never blocks on, or dies
// with, the agent); this tails those files and publishes new lines. The byte offset already
// sent is kept in the worker store, so a restarted agent continues where it stopped.
import { promises as fsp, statSync } from "node:fs";
import type { NatsConnection } from "@nats-io/nats-core";
import { jetstreamManager, RetentionPolicy, StorageType, DiscardPolicy } from "@nats-io/jetstream";
import type { Logger } from "pino";
import type { Names } from "../protocol/names.js";
import { describeError } from "../protocol/errors.js";
import type { WorkerStore } from "./worker-store.js";

export interface JournalLimits {
  maxBytes: number;
  maxAgeMs: number;
  /** Lines kept per unit and machine. */
  maxMsgsPerSubject: number;
}

export const DEFAULT_JOURNAL_LIMITS: JournalLimits = {
  maxBytes: 256 * 1024 * 1024,
  maxAgeMs: 7 * 24 * 3600_000,
  maxMsgsPerSubject: 10_000,
};

const MAX_LINE = 16 * 1024;
const CHUNK = 256 * 1024;

/** Creates the journal stream or brings its limits up to date (idempotent). */
export async function ensureJournalStream(nc: NatsConnection, names: Names, limits: JournalLimits = DEFAULT_JOURNAL_LIMITS): Promise<void> {
  const jsm = await jetstreamManager(nc);
  const cfg = {
    name: names.journalStream(),
    subjects: [names.journalAll()],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_bytes: limits.maxBytes,
    max_age: limits.maxAgeMs * 1_000_000,
    max_msgs_per_subject: limits.maxMsgsPerSubject,
    max_msg_size: MAX_LINE + 1024,
    num_replicas: 1,
    description: "flotilla task output",
  };
  try {
    await jsm.streams.add(cfg);
  } catch (e) {
    if (!/already in use|exists/i.test(describeError(e))) throw e;
    const info = await jsm.streams.info(cfg.name);
    await jsm.streams.update(cfg.name, { ...info.config, ...cfg });
  }
}

interface Tail {
  unit: string;
  file: string;
  subject: string;
  offset: number;
  partial: string;
  busy: boolean;
  savedOffset: number;
  noSave?: boolean;
}

export interface JournalOptions {
  nc: NatsConnection;
  names: Names;
  machineId: string;
  store: WorkerStore;
  log: Logger;
  pollMs?: number;
  /** Rotate a log file once it is past this size and wholly sent (default: never). */
  maxFileBytes?: number;
}

export class JournalTailer {
  private readonly tails = new Map<string, Tail>();
  private timer?: NodeJS.Timeout;
  private readonly enc = new TextEncoder();

  constructor(private readonly o: JournalOptions) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.pollAll(), this.o.pollMs ?? 200);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await Promise.all([...this.tails.values()].map((t) => this.saveOffset(t)));
    this.tails.clear();
  }

  /** Follows a task's log file from `offset` (undefined: from its current end). */
  async follow(unit: string, file: string, offset?: number): Promise<void> {
    if (this.tails.has(unit)) return;
    let start = offset;
    if (start === undefined) {
      // Synchronous on purpose (one stat): the offset is fixed before the task can write.
      try {
        start = statSync(file).size;
      } catch {
        start = 0;
      }
    }
    this.tails.set(unit, {
      unit,
      file,
      subject: this.o.names.journalSubject(unit, this.o.machineId),
      offset: start,
      partial: "",
      busy: false,
      savedOffset: start,
    });
  }

  async unfollow(unit: string): Promise<void> {
    const t = this.tails.get(unit);
    if (!t) return;
    t.noSave = true; // the task is being deleted from the store
    while (t.busy) await new Promise((r) => setTimeout(r, 10));
    await this.read(t); // the last words of a stopped task
    this.tails.delete(unit);
  }

  private pollAll(): void {
    for (const t of this.tails.values()) if (!t.busy) void this.read(t);
  }

  private async read(t: Tail): Promise<void> {
    if (t.busy) return;
    t.busy = true;
    try {
      const st = await fsp.stat(t.file).catch(() => undefined);
      if (!st) return;
      if (st.size < t.offset) {
        t.offset = 0; // truncated or replaced
        t.partial = "";
      }
      if (st.size === t.offset) return;
      const fh = await fsp.open(t.file, "r");
      try {
        while (t.offset < st.size) {
          const len = Math.min(CHUNK, st.size - t.offset);
          const buf = Buffer.alloc(len);
          const { bytesRead } = await fh.read(buf, 0, len, t.offset);
          if (bytesRead <= 0) break;
          t.offset += bytesRead;
          const text = t.partial + buf.subarray(0, bytesRead).toString("utf8");
          const lines = text.split("\n");
          t.partial = lines.pop() ?? "";
          if (t.partial.length > MAX_LINE) {
            lines.push(t.partial);
            t.partial = "";
          }
          for (const line of lines) this.publish(t, line);
        }
      } finally {
        await fh.close();
      }
      if (this.o.maxFileBytes && t.offset >= this.o.maxFileBytes) await this.rotate(t);
      if (t.offset - t.savedOffset > 0) void this.saveOffset(t);
    } catch (e) {
      this.o.log.debug({ unit: t.unit, err: describeError(e) }, "journal read failed");
    } finally {
      t.busy = false;
    }
  }

  /**
   * logrotate's copytruncate: the task holds its log file open for appending, so the file is
   * copied to <file>.1 and cut back to empty, and the task's next write lands at the start. Only
   * when everything in it has been sent (the size is still what was read): a line written
   * between that check and the cut is the one thing that can be lost, as with copytruncate.
   */
  private async rotate(t: Tail): Promise<void> {
    try {
      await fsp.copyFile(t.file, `${t.file}.1`);
      const fh = await fsp.open(t.file, "r+");
      try {
        if ((await fh.stat()).size !== t.offset) return; // more came meanwhile: next time
        await fh.truncate(0);
      } finally {
        await fh.close();
      }
      this.o.log.info({ unit: t.unit, file: t.file, bytes: t.offset }, "task log rotated (the previous part is kept as .1)");
      t.offset = 0;
      t.savedOffset = -1; // save the new offset now
    } catch (e) {
      this.o.log.warn({ unit: t.unit, file: t.file, err: describeError(e) }, "cannot rotate the task log");
    }
  }

  private publish(t: Tail, line: string): void {
    try {
      this.o.nc.publish(t.subject, this.enc.encode(line.length > MAX_LINE ? line.slice(0, MAX_LINE) : line));
    } catch (e) {
      this.o.log.debug({ unit: t.unit, err: describeError(e) }, "journal publish failed");
    }
  }

  private async saveOffset(t: Tail): Promise<void> {
    if (t.noSave) return;
    // Only whole lines count as sent: a partial one is re-read after a restart.
    const sent = Math.max(0, t.offset - Buffer.byteLength(t.partial, "utf8"));
    t.savedOffset = t.offset;
    await this.o.store.putJournalOffset(t.unit, sent).catch(() => undefined);
  }
}
