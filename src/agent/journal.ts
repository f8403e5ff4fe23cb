// The journal: every task's stdout/stderr, line by line, into the JetStream stream
// <prefix>-journal on <prefix>.journal.<unit>.<machineId>, with size, age and per-subject
// limits. The workload writes to a file under <state-dir>/logs/ (so it never blocks on, or dies
// with, the agent); this tails those files and publishes new lines.
//
// Nothing a task printed is lost while NATS is away (for less than the stream's limits), because
// the log file is the buffer: lines go out with JetStream acknowledgement (pipelined, a batch of
// publishes in flight per file), and a file's position only moves past what the stream
// acknowledged. That position (`acked`) is where every read starts, what the worker store keeps
// (a restarted agent continues there) and the only part rotation may cut. A failed batch is sent
// again from it, after a backoff or at once when the connection comes back; a stream that is not
// there (its creation failed at start, or it was deleted) is created again.
//
// Resending can repeat lines the stream already has (the ack was lost, not the message), so
// every line carries a Nats-Msg-Id: its subject, the file's epoch and the byte offset where the
// line ends. The stream drops a repeat within its duplicate window. The epoch names one life
// of the file: it changes when the file is rotated or found cut, so the offsets of a new life
// never collide with the last one's.
import { closeSync, fstatSync, ftruncateSync, openSync, promises as fsp, statSync } from "node:fs";
import type { NatsConnection, Status } from "@nats-io/nats-core";
import { jetstream, jetstreamManager, JetStreamApiError, RetentionPolicy, StorageType, DiscardPolicy, type JetStreamClient } from "@nats-io/jetstream";
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

/** A longer line is sent in pieces of this many bytes. */
export const MAX_LINE = 16 * 1024;
const CHUNK = 256 * 1024;
/** Publishes in flight per file before their acks are awaited. */
const BATCH = 1000;
/** How long the stream remembers a Nats-Msg-Id (JetStream's default, stated). */
const DUPLICATE_WINDOW_MS = 2 * 60_000;

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
    duplicate_window: DUPLICATE_WINDOW_MS * 1_000_000,
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

export interface LogLine {
  data: Uint8Array;
  /** Byte offset in the file just past this line (its newline included). */
  end: number;
}

/**
 * The whole lines of `buf`, read from byte `base` of a file: each without its newline, a line
 * longer than MAX_LINE in pieces of MAX_LINE (cut at the same places whenever it is read again
 * from a line's start, so a resent piece has the same offset). An unfinished last line is left
 * for a later read, unless `rest` (the task is gone: its last words).
 */
export function splitLines(buf: Uint8Array, base: number, rest = false): LogLine[] {
  const out: LogLine[] = [];
  let start = 0;
  for (;;) {
    const nl = buf.indexOf(10, start);
    const stop = nl === -1 ? buf.length : nl;
    while (stop - start > MAX_LINE) {
      out.push({ data: buf.subarray(start, start + MAX_LINE), end: base + start + MAX_LINE });
      start += MAX_LINE;
    }
    if (nl === -1) break;
    out.push({ data: buf.subarray(start, nl), end: base + nl + 1 });
    start = nl + 1;
  }
  if (rest && start < buf.length) out.push({ data: buf.subarray(start), end: base + buf.length });
  return out;
}

/** A new epoch: later than the last one and than any this host handed out before. */
function nextEpoch(prev = 0): number {
  return Math.max(prev + 1, Date.now());
}

/** JetStream's "message size exceeds maximum allowed": the stream refuses this line for good. */
const MESSAGE_TOO_LARGE = 10054;

function refusedForGood(e: unknown): boolean {
  return e instanceof JetStreamApiError && e.code === MESSAGE_TOO_LARGE;
}

function streamMissing(e: unknown): boolean {
  // nats-server answers a publish to a subject no stream takes with "no responders", which
  // nats.js reports as JetStream not enabled.
  return /no responders|not enabled|stream not found/i.test(describeError(e));
}

interface Tail {
  unit: string;
  file: string;
  subject: string;
  /** Bytes of whole lines the stream acknowledged: where reads start, what is saved, what rotation may cut. */
  acked: number;
  epoch: number;
  savedOffset: number;
  savedEpoch: number;
  busy: boolean;
  noSave?: boolean;
  /** Failed batches in a row; no new attempt before retryAt. */
  failures: number;
  retryAt: number;
}

export interface JournalOptions {
  nc: NatsConnection;
  names: Names;
  machineId: string;
  store: WorkerStore;
  log: Logger;
  pollMs?: number;
  /** Rotate a log file once it is past this size and wholly acknowledged (default: never). */
  maxFileBytes?: number;
  /** The stream's limits, for creating it again when it is not there. */
  limits?: JournalLimits;
  /** How long a publish waits for its acknowledgement (default 5 s). */
  ackTimeoutMs?: number;
}

export class JournalTailer {
  private readonly tails = new Map<string, Tail>();
  private readonly js: JetStreamClient;
  private timer?: NodeJS.Timeout;
  private status?: AsyncIterable<Status> & { stop(): void };
  private connected = true;
  private stopped = false;
  private ensuring?: Promise<void>;
  private nextEnsureAt = 0;

  constructor(private readonly o: JournalOptions) {
    this.js = jetstream(o.nc, { timeout: o.ackTimeoutMs ?? 5000 });
  }

  start(): void {
    if (this.timer) return;
    this.stopped = false;
    this.timer = setInterval(() => this.pollAll(), this.o.pollMs ?? 200);
    void this.followStatus();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.status?.stop();
    this.status = undefined;
    // What is acknowledged is saved; a batch still in flight is sent again by the next agent.
    await Promise.all([...this.tails.values()].map((t) => this.saveOffset(t)));
    this.tails.clear();
  }

  /** Follows a task's log file from `offset` (undefined: from its current end). */
  async follow(unit: string, file: string, offset?: number): Promise<void> {
    if (this.tails.has(unit)) return;
    let start = offset;
    let epoch = offset === undefined ? undefined : this.o.store.journalPosition(unit)?.epoch;
    if (start === undefined) {
      // Synchronous on purpose (one stat): the offset is fixed before the task can write.
      try {
        start = statSync(file).size;
      } catch {
        start = 0;
      }
    }
    epoch ??= nextEpoch();
    const t: Tail = {
      unit,
      file,
      subject: this.o.names.journalSubject(unit, this.o.machineId),
      acked: start,
      epoch,
      savedOffset: offset ?? -1,
      savedEpoch: epoch,
      busy: false,
      failures: 0,
      retryAt: 0,
    };
    this.tails.set(unit, t);
    if (t.savedOffset !== t.acked) void this.saveOffset(t);
  }

  async unfollow(unit: string): Promise<void> {
    const t = this.tails.get(unit);
    if (!t) return;
    t.noSave = true; // the task is being deleted from the store
    while (t.busy) await new Promise((r) => setTimeout(r, 10));
    await this.read(t, true); // the last words of a stopped task
    this.tails.delete(unit);
  }

  private async followStatus(): Promise<void> {
    const it = this.o.nc.status() as AsyncIterable<Status> & { stop(): void };
    this.status = it;
    try {
      for await (const s of it) {
        if (s.type === "disconnect") this.connected = false;
        else if (s.type === "reconnect") {
          this.connected = true;
          // Send what waited at once, not after the backoff.
          for (const t of this.tails.values()) t.retryAt = 0;
          this.pollAll();
        }
      }
    } catch {
      /* connection closed */
    }
  }

  private pollAll(): void {
    if (this.stopped || !this.connected) return;
    const now = Date.now();
    for (const t of this.tails.values()) if (!t.busy && now >= t.retryAt) void this.read(t);
  }

  private async read(t: Tail, final = false): Promise<void> {
    if (t.busy) return;
    t.busy = true;
    try {
      const st = await fsp.stat(t.file).catch(() => undefined);
      if (!st) return;
      if (st.size < t.acked) {
        // Cut or replaced behind our back: a new life of the file.
        t.acked = 0;
        t.epoch = nextEpoch(t.epoch);
      }
      if (st.size > t.acked) await this.send(t, st.size, final);
      if (this.o.maxFileBytes && t.acked >= this.o.maxFileBytes && !this.stopped) await this.rotate(t);
      if (t.acked !== t.savedOffset || t.epoch !== t.savedEpoch) void this.saveOffset(t);
    } catch (e) {
      this.o.log.debug({ unit: t.unit, err: describeError(e) }, "journal read failed");
    } finally {
      t.busy = false;
    }
  }

  /** Sends the file from t.acked up to `size`; stops at the first publish not acknowledged. */
  private async send(t: Tail, size: number, final: boolean): Promise<void> {
    const fh = await fsp.open(t.file, "r");
    try {
      while (t.acked < size && !this.stopped) {
        const pos = t.acked;
        const len = Math.min(CHUNK, size - pos);
        const buf = Buffer.alloc(len);
        const { bytesRead } = await fh.read(buf, 0, len, pos);
        if (bytesRead <= 0) return;
        const lines = splitLines(buf.subarray(0, bytesRead), pos, final && pos + bytesRead >= size);
        if (lines.length === 0) return; // only an unfinished line: wait for the rest of it
        for (let i = 0; i < lines.length; i += BATCH) {
          if (!(await this.publishBatch(t, lines.slice(i, i + BATCH)))) return;
        }
      }
    } finally {
      await fh.close();
    }
  }

  /**
   * Publishes the lines all at once (in order on the one connection) and awaits their acks;
   * t.acked moves to the end of the last line of the unbroken acknowledged run. Lines after a
   * failed one are sent again even if they were stored: their Nats-Msg-Ids make them no-ops.
   */
  private async publishBatch(t: Tail, lines: LogLine[]): Promise<boolean> {
    const results = await Promise.allSettled(
      lines.map((l) => this.js.publish(t.subject, l.data, { msgID: `${t.subject}:${t.epoch}:${l.end}` })),
    );
    let ok = 0;
    for (; ok < results.length; ok++) {
      const r = results[ok]!;
      if (r.status === "fulfilled") continue;
      if (!refusedForGood(r.reason)) break;
      // Resending it would stop this unit's journal for good: skip the one line, say so.
      this.o.log.warn(
        { unit: t.unit, offset: lines[ok]!.end, bytes: lines[ok]!.data.length },
        `journal: the stream ${this.o.names.journalStream()} refuses a line of ${t.unit} (${describeError(r.reason)}); skipping that line (it stays in ${t.file})`,
      );
    }
    if (ok > 0) t.acked = lines[ok - 1]!.end;
    if (ok === results.length) {
      if (t.failures > 0) this.o.log.info({ unit: t.unit, failures: t.failures }, "journal: task output reaches the journal again (resent from where it stopped)");
      t.failures = 0;
      return true;
    }
    const err = (results[ok] as PromiseRejectedResult).reason;
    this.failed(t, err);
    return false;
  }

  private failed(t: Tail, err: unknown): void {
    t.failures += 1;
    const delay = Math.min(250 * 2 ** (t.failures - 1), 5000);
    t.retryAt = Date.now() + delay;
    const missing = streamMissing(err);
    const msg =
      `journal: ${t.unit}'s output is not reaching the journal stream ${this.o.names.journalStream()} ` +
      `(${describeError(err)}); it stays in ${t.file} and is sent from byte ${t.acked} ` +
      (missing ? "once the stream is created again (trying now)" : "when NATS answers again");
    if (t.failures === 1) this.o.log.warn({ unit: t.unit, offset: t.acked }, msg);
    else this.o.log.debug({ unit: t.unit, offset: t.acked, failures: t.failures, retryInMs: delay }, msg);
    if (missing) this.ensureStream();
  }

  /** Creates the stream again (one attempt at a time, at most one every 2 s). */
  private ensureStream(): void {
    if (this.ensuring || this.stopped || Date.now() < this.nextEnsureAt) return;
    this.nextEnsureAt = Date.now() + 2000;
    this.ensuring = ensureJournalStream(this.o.nc, this.o.names, this.o.limits ?? DEFAULT_JOURNAL_LIMITS)
      .then(() => {
        this.o.log.info(`journal: stream ${this.o.names.journalStream()} created; sending the task output that waited`);
        for (const t of this.tails.values()) t.retryAt = 0;
      })
      .catch((e) => this.o.log.warn(`journal: cannot create the stream ${this.o.names.journalStream()} (trying again): ${describeError(e)}`))
      .finally(() => (this.ensuring = undefined));
  }

  /**
   * logrotate's copytruncate: the task holds its log file open for appending, so the file is
   * copied to <file>.1 and cut back to empty, and the task's next write lands at the start. Only
   * when everything in it has been acknowledged (the size is still what was acknowledged): a
   * line written between that check and the cut is the one thing that can be lost, as with
   * copytruncate.
   */
  private async rotate(t: Tail): Promise<void> {
    try {
      const st = await fsp.stat(t.file);
      if (st.size !== t.acked) return; // not all acknowledged yet, or more came: next time
      await fsp.copyFile(t.file, `${t.file}.1`);
      // The task appends to this file itself (it is its stdout). The size check and the cut are
      // two syscalls back to back, with no turn of the event loop between them: with an await
      // between them, a line the task wrote meanwhile was cut unsent (seen under CI's load).
      const fd = openSync(t.file, "r+");
      try {
        if (fstatSync(fd).size !== t.acked) return; // more came meanwhile: next time
        ftruncateSync(fd, 0);
      } finally {
        closeSync(fd);
      }
      this.o.log.info({ unit: t.unit, file: t.file, bytes: t.acked }, "task log rotated (the previous part is kept as .1)");
      t.acked = 0;
      t.epoch = nextEpoch(t.epoch);
      await this.saveOffset(t);
    } catch (e) {
      this.o.log.warn({ unit: t.unit, file: t.file, err: describeError(e) }, "cannot rotate the task log");
    }
  }

  private async saveOffset(t: Tail): Promise<void> {
    if (t.noSave) return;
    t.savedOffset = t.acked;
    t.savedEpoch = t.epoch;
    await this.o.store.putJournalOffset(t.unit, t.acked, t.epoch).catch(() => undefined);
  }
}
