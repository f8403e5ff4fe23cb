// Long synchronous work of the leader cut into slices that give the event loop back (issue 10:
// no round blocks the loop for more than ~50 ms; lease renewals, heartbeats, the intake and API
// requests run between two slices). One helper for every long loop of a round: the reconcile
// pass (reconciler.ts), the writer's encoding and its bookkeeping of proven writes
// (schedule-writer.ts). A slice ends once it has used its budget; the clock is read every
// `every` steps only.
import { setImmediate as nextTurn } from "node:timers/promises";

/** Default budget of one slice, in ms. */
export const SLICE_MS = 10;

/** Runs a generator that yields between steps to its end at once (the unsliced entry points). */
export function runToEnd<T>(g: Generator<void, T, void>): T {
  for (;;) {
    const r = g.next();
    if (r.done) return r.value;
  }
}

export class Slicer {
  private start = performance.now();
  private n = 0;

  /** sliceMs: work at most this long before a turn of the event loop (setImmediate: timers and I/O run). */
  constructor(
    readonly sliceMs = SLICE_MS,
    private readonly every = 16,
  ) {}

  /** Call once per step: true when the slice is used up (then await pause()). */
  due(): boolean {
    if (++this.n < this.every) return false;
    this.n = 0;
    return performance.now() - this.start >= this.sliceMs;
  }

  /** A turn of the event loop now; the next slice starts after it. */
  async pause(): Promise<void> {
    await nextTurn();
    this.start = performance.now();
    this.n = 0;
  }

  /** A turn of the event loop if this slice is used up. */
  async step(): Promise<void> {
    if (this.due()) await this.pause();
  }

  /** Runs a generator (that yields between steps) to its end, a turn of the event loop once each slice is used up. */
  async run<T>(g: Generator<void, T, void>): Promise<T> {
    for (;;) {
      const r = g.next();
      if (r.done) return r.value;
      // A generator yields every few steps already: the clock at each yield.
      if (performance.now() - this.start >= this.sliceMs) await this.pause();
    }
  }

  /** Whether this slice is used up (the clock read now). */
  spent(): boolean {
    return performance.now() - this.start >= this.sliceMs;
  }

  /** items.map(f), sliced. */
  async map<T, U>(items: readonly T[], f: (t: T, i: number) => U): Promise<U[]> {
    const out = new Array<U>(items.length);
    for (let i = 0; i < items.length; i++) {
      out[i] = f(items[i]!, i);
      if (this.due()) await this.pause();
    }
    return out;
  }

  /** f for each item, sliced. */
  async each<T>(items: Iterable<T>, f: (t: T) => void): Promise<void> {
    for (const t of items) {
      f(t);
      if (this.due()) await this.pause();
    }
  }
}
