// The `heart` actor (fleet's heart): puts the machine record every TTL/2 through the injected
// `beat` actor; a failed beat is retried with backoff capped at TTL/3, forever, so the record
// comes back by itself when NATS does. It emits `heart.ok` / `heart.failed` for the monitor.
import { assign, emit, fromPromise, setup } from "xstate";
import { beatInterval, retryDelay } from "./record.js";

export interface HeartInput {
  ttlMs: number;
}

export interface HeartContext {
  ttlMs: number;
  failures: number;
  beats: number;
  lastOkAt: number;
  lastError: string;
}

export type HeartEvent = { type: "BEAT_NOW" };
export type HeartEmitted =
  | { type: "heart.ok"; beats: number }
  | { type: "heart.failed"; failures: number; error: string };

export const heartMachine = setup({
  types: {
    input: {} as HeartInput,
    context: {} as HeartContext,
    events: {} as HeartEvent,
    emitted: {} as HeartEmitted,
  },
  actors: {
    beat: fromPromise<void, void>(async () => {
      throw new Error("beat not provided");
    }),
  },
  actions: {
    recordSuccess: assign(({ context }) => ({ failures: 0, beats: context.beats + 1, lastOkAt: Date.now(), lastError: "" })),
    recordFailure: assign(({ context }, p: { error: string }) => ({ failures: context.failures + 1, lastError: p.error })),
    emitOk: emit(({ context }) => ({ type: "heart.ok" as const, beats: context.beats })),
    emitFailed: emit(({ context }) => ({ type: "heart.failed" as const, failures: context.failures, error: context.lastError })),
  },
  delays: {
    interval: ({ context }) => beatInterval(context.ttlMs),
    retry: ({ context }) => retryDelay(context.ttlMs, context.failures),
  },
}).createMachine({
  id: "heart",
  context: ({ input }) => ({ ttlMs: input.ttlMs, failures: 0, beats: 0, lastOkAt: 0, lastError: "" }),
  initial: "beating",
  states: {
    beating: {
      invoke: {
        id: "beat",
        src: "beat",
        onDone: { target: "waiting", actions: ["recordSuccess", "emitOk"] },
        onError: {
          target: "retrying",
          actions: [
            { type: "recordFailure", params: ({ event }) => ({ error: errorText(event.error) }) },
            "emitFailed",
          ],
        },
      },
    },
    waiting: {
      after: { interval: "beating" },
      on: { BEAT_NOW: "beating" },
    },
    retrying: {
      after: { retry: "beating" },
      on: { BEAT_NOW: "beating" },
    },
  },
});

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
