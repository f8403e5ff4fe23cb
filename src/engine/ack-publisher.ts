// JetStream publishes whose acknowledgements come back on one inbox, and sequences of them that
// are proven stored by checkpoints.
//
// kv.put() costs a request object and a timer per message, which on a busy 2-core machine caps
// near 4,000/s and stalls the event loop. A core publish whose reply subject is our own inbox
// costs a few microseconds, and JetStream still answers it with its PubAck (stream sequence =
// KV revision) or an error.
//
// A sequence goes further: only every CHECKPOINT-th message (and the last) asks for an
// acknowledgement. JetStream stores the messages of one connection to one stream in the order
// they were published, each at the next stream sequence, so a checkpoint acknowledged at exactly
// base + n proves that all n messages before it were stored, at base+1..base+n, and that nobody
// else wrote in between. Any other answer (a different sequence, an error, no answer in time)
// proves nothing past the last good checkpoint: the caller must then re-read the stream. The
// engine is the schedule's only writer and knows the stream sequence its view accounts for, so
// this is exactly the check it makes anyway (engine.ts, accountWrites), at one acknowledgement
// per CHECKPOINT writes instead of one each.
import { createInbox, headers, Empty, type NatsConnection, type Subscription, type MsgHdrs } from "@nats-io/nats-core";
import { Slicer } from "./slicer.js";

interface Pending {
  resolve: (seq: number) => void;
  reject: (e: Error) => void;
  at: number;
}

/** One message of a sequence. */
export interface SeqMessage {
  subject: string;
  data: Uint8Array;
  /** A KV delete (KV-Operation: DEL, empty body), as kv.delete() publishes. */
  del?: boolean;
}

export interface SequenceOptions {
  /** The stream's last sequence before the first message (what the caller's view accounts for). */
  base: number;
  /** Checked before each chunk is published; false stops the sequence there (a reason). */
  guard?: () => string | undefined;
  /** Messages per checkpoint (default CHECKPOINT). */
  every?: number;
  /** Chunks published ahead of their checkpoint's answer (default CHUNKS_IN_FLIGHT). */
  inFlight?: number;
  /**
   * The event loop's turns between chunks once a slice is used up (default: a slicer of its own).
   * Answers that came together resolve their checkpoints in one run of microtasks, and the loop
   * below publishes chunk after chunk inside it: 1,024 publishes, 90-150 ms while the garbage
   * collector marks a 400 MB heap (its steps run inside our allocations).
   */
  slicer?: Slicer;
}

export interface SequenceResult {
  /** How many messages, from the first, are proven stored: message i at base + 1 + i. */
  proven: number;
  /** Why the sequence stopped short (guard, error, mismatch, timeout); unset when all proven. */
  stopped?: string;
  /** Messages that were published but are not proven (they may or may not be stored). */
  unproven: number;
}

/** Messages per acknowledged checkpoint. */
export const CHECKPOINT = 128;
/** Checkpoints awaited at once: CHECKPOINT × CHUNKS_IN_FLIGHT messages in flight. */
export const CHUNKS_IN_FLIGHT = 8;

const delHeaders = (): MsgHdrs => {
  const h = headers();
  h.set("KV-Operation", "DEL");
  return h;
};

export class AckPublisher {
  // Under the connection's inboxPrefix: with auth a user may subscribe to its own replies only.
  private inbox = "";
  private sub?: Subscription;
  private sweep?: NodeJS.Timeout;
  private next = 0;
  private readonly pending = new Map<number, Pending>();

  constructor(
    private readonly nc: NatsConnection,
    private readonly timeoutMs = 5000,
  ) {}

  private open(): void {
    if (this.sub) return;
    this.inbox ||= createInbox((this.nc as { options?: { inboxPrefix?: string } }).options?.inboxPrefix);
    const dec = new TextDecoder();
    this.sub = this.nc.subscribe(`${this.inbox}.*`, {
      callback: (err, msg) => {
        if (err) return;
        const id = Number(msg.subject.slice(this.inbox.length + 1));
        const p = this.pending.get(id);
        if (!p) return;
        this.pending.delete(id);
        let ack: { seq?: number; error?: { description?: string; err_code?: number } } = {};
        try {
          ack = JSON.parse(dec.decode(msg.data));
        } catch {
          /* a status message (no responders) has no body */
        }
        // A refusal carries an error (and seq 0): it is never an acknowledgement.
        if (ack.error) p.reject(new Error(`JetStream refused the write: ${ack.error.description ?? "no reason given"} (error ${ack.error.err_code ?? "?"})`));
        else if (typeof ack.seq === "number" && ack.seq > 0) p.resolve(ack.seq);
        else p.reject(new Error(`no JetStream acknowledgement (${msg.headers?.code ?? "?"})`));
      },
    });
    this.sweep = setInterval(() => {
      const old = Date.now() - this.timeoutMs;
      for (const [id, p] of this.pending) {
        if (p.at < old) {
          this.pending.delete(id);
          p.reject(new Error(`no JetStream acknowledgement within ${this.timeoutMs} ms`));
        }
      }
    }, Math.min(1000, this.timeoutMs));
    this.sweep.unref();
  }

  /** A KV delete: an empty message marked KV-Operation: DEL (what kv.delete() publishes). */
  publishDelete(subject: string): Promise<number> {
    return this.publish(subject, Empty, delHeaders());
  }

  /** One acknowledged publish; resolves with its stream sequence. */
  publish(subject: string, data: Uint8Array, hdrs?: MsgHdrs): Promise<number> {
    this.open();
    const id = ++this.next;
    return new Promise<number>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, at: Date.now() });
      try {
        this.nc.publish(subject, data, hdrs ? { reply: `${this.inbox}.${id}`, headers: hdrs } : { reply: `${this.inbox}.${id}` });
      } catch (e) {
        this.pending.delete(id);
        reject(e instanceof Error ? e : new Error(String(e)));
      }
    });
  }

  /**
   * Publishes msgs in order, acknowledging every `every`-th and the last, with up to `inFlight`
   * checkpoints outstanding; see the top of this file for what a checkpoint proves.
   */
  async publishSequence(msgs: readonly SeqMessage[], o: SequenceOptions): Promise<SequenceResult> {
    const every = Math.max(1, o.every ?? CHECKPOINT);
    const inFlight = Math.max(1, o.inFlight ?? CHUNKS_IN_FLIGHT);
    const slicer = o.slicer ?? new Slicer();
    let proven = 0;
    let published = 0;
    let stopped: string | undefined;
    // Checkpoints are answered in order (one connection, one stream), so awaiting the oldest
    // outstanding one first is enough.
    const outstanding: { end: number; ack: Promise<number> }[] = [];
    const settle = async (): Promise<void> => {
      const c = outstanding.shift()!;
      try {
        const seq = await c.ack;
        if (stopped) return;
        if (seq === o.base + c.end) proven = c.end;
        else stopped = `stream sequence ${seq} acknowledged where ${o.base + c.end} was expected: another write came between ours, or one of ours was refused`;
      } catch (e) {
        stopped ??= e instanceof Error ? e.message : String(e);
      }
    };
    let del: MsgHdrs | undefined;
    while (published < msgs.length && !stopped) {
      if (outstanding.length >= inFlight) {
        await settle();
        continue;
      }
      if (slicer.spent()) await slicer.pause();
      const why = o.guard?.();
      if (why) {
        stopped = why;
        break;
      }
      const end = Math.min(published + every, msgs.length);
      try {
        while (published < end - 1) {
          const m = msgs[published++]!;
          if (m.del) this.nc.publish(m.subject, Empty, { headers: (del ??= delHeaders()) });
          else this.nc.publish(m.subject, m.data);
          // A slice used up within the chunk (each publish allocates, and while the garbage
          // collector marks a large heap its steps run inside those allocations: 128 publishes
          // took up to 70 ms): a turn of the loop, and the guard again before the rest. (Ending
          // the chunk there instead cut the messages in flight, and the write rate with them.)
          if (((end - published) & 15) === 0 && slicer.spent()) {
            await slicer.pause();
            stopped = o.guard?.();
            if (stopped) break;
          }
        }
      } catch (e) {
        // Nothing of this chunk is proven; what came before may still be.
        stopped = e instanceof Error ? e.message : String(e);
        break;
      }
      // The guard stopped the chunk after a turn: what it published is left unproven.
      if (stopped) break;
      const last = msgs[end - 1]!;
      const ack = last.del ? this.publishDelete(last.subject) : this.publish(last.subject, last.data);
      ack.catch(() => undefined);
      outstanding.push({ end, ack });
      published = end;
    }
    while (outstanding.length) await settle();
    return { proven, stopped: proven === msgs.length ? undefined : (stopped ?? "not all published"), unproven: published - proven };
  }

  close(): void {
    this.sub?.unsubscribe();
    this.sub = undefined;
    if (this.sweep) clearInterval(this.sweep);
    for (const p of this.pending.values()) p.reject(new Error("publisher closed"));
    this.pending.clear();
  }
}
