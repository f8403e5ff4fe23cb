// The engine's view of the cluster, as the pure reconciler and scheduler see it: units with
// their parsed [X-Fleet] options, live machines, and current placements. No NATS here.
import type { Availability, DesiredState } from "../protocol/messages.js";
import type { FleetOptions } from "../unit/types.js";

export interface EngineUnit {
  name: string;
  hash: string;
  desiredState: DesiredState;
  contents: string;
  fleet: FleetOptions;
  /** Set when the unit file could not be parsed: the unit is never placed, this says why. */
  invalid?: string;
  /** When it arrived (unit/match.ts arrivalOf): which of two conflicting globals runs. */
  arrival?: number;
}

export interface EngineMachine {
  id: string;
  metadata: Record<string, string>;
  capacity: { cpu: number; memory: number };
  availability: Availability;
}

/** One schedule entry as the engine knows it (key <machineId>.<unit>). */
export interface Placement {
  unit: string;
  machineId: string;
  hash: string;
  desiredState: DesiredState;
}

export type Action =
  | { type: "unschedule"; unit: string; machineId: string; reason: string }
  | { type: "schedule"; unit: string; machineId: string; reason: string }
  /** Rewrite an entry in place (desired state or unit file changed, still valid there). */
  | { type: "update"; unit: string; machineId: string; reason: string }
  /** refusals: which filter refused which machines (scheduler.ts Refusal), for status and the UI. */
  | { type: "unplaced"; unit: string; reason: string; refusals?: { why: string; count: number; machines: string[] }[] }
  | { type: "clear-unplaced"; unit: string; reason: string };

export const NO_FLEET_OPTIONS: FleetOptions = Object.freeze({
  machineOf: [],
  machineMetadata: {},
  conflicts: [],
  global: false,
  replaces: [],
}) as FleetOptions;
