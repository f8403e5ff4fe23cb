// The `machine` actor (fleet's CoreOSMachine): this host's identity, public IP, metadata,
// capacity and availability. It refreshes what it detects periodically (fleet's
// PeriodicRefresh) and emits `machine.changed` whenever the record changes, so the heart can
// publish at once instead of waiting for the next beat.
import { assign, emit, fromPromise, setup, spawnChild } from "xstate";
import type { Availability } from "../protocol/messages.js";
import type { HostFacts } from "./detect.js";
import { buildRecord, sameRecord, type MachineBody, type MachineIdentity } from "./record.js";

export interface MachineInput {
  identity: MachineIdentity;
  facts: HostFacts;
  availability: Availability;
  refreshMs: number;
}

export interface MachineContext extends MachineInput {
  record: MachineBody;
}

export type MachineEvent = { type: "SET_AVAILABILITY"; availability: Availability } | { type: "REFRESH" };
export type MachineEmitted = { type: "machine.changed"; record: MachineBody };

export const machineMachine = setup({
  types: {
    input: {} as MachineInput,
    context: {} as MachineContext,
    events: {} as MachineEvent,
    emitted: {} as MachineEmitted,
  },
  actors: {
    detect: fromPromise<HostFacts, void>(async () => {
      throw new Error("detect not provided");
    }),
    persistAvailability: fromPromise<void, { availability: Availability }>(async () => undefined),
  },
  actions: {
    setAvailability: assign(({ context }, p: { availability: Availability }) => ({
      availability: p.availability,
      record: buildRecord(context.identity, context.facts, p.availability),
    })),
    persist: spawnChild("persistAvailability", {
      input: ({ event }) => ({ availability: (event as { availability: Availability }).availability }),
    }),
    applyFacts: assign(({ context }, p: { facts: HostFacts }) => ({
      facts: p.facts,
      record: buildRecord(context.identity, p.facts, context.availability),
    })),
    announce: emit(({ context }) => ({ type: "machine.changed" as const, record: context.record })),
  },
  guards: {
    availabilityChanges: ({ context }, p: { availability: Availability }) => p.availability !== context.availability,
    factsChange: ({ context }, p: { facts: HostFacts }) =>
      !sameRecord(context.record, buildRecord(context.identity, p.facts, context.availability)),
  },
  delays: {
    refresh: ({ context }) => context.refreshMs,
  },
}).createMachine({
  id: "machine",
  context: ({ input }) => ({ ...input, record: buildRecord(input.identity, input.facts, input.availability) }),
  initial: "idle",
  on: {
    SET_AVAILABILITY: {
      guard: { type: "availabilityChanges", params: ({ event }) => ({ availability: event.availability }) },
      actions: [
        { type: "setAvailability", params: ({ event }) => ({ availability: event.availability }) },
        "persist",
        "announce",
      ],
    },
  },
  states: {
    idle: {
      after: { refresh: "refreshing" },
      on: { REFRESH: "refreshing" },
    },
    refreshing: {
      invoke: {
        id: "detect",
        src: "detect",
        onDone: [
          {
            guard: { type: "factsChange", params: ({ event }) => ({ facts: event.output }) },
            target: "idle",
            actions: [{ type: "applyFacts", params: ({ event }) => ({ facts: event.output }) }, "announce"],
          },
          { target: "idle" },
        ],
        onError: "idle",
      },
    },
  },
});
