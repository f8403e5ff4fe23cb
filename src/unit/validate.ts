// fleet's cross-option rules for [X-Fleet] (fleet api/units.go ValidateOptions, extended with
// Replaces= as fleet 0.13+ does). Each error names the rule and points at the line of the
// option that made the combination impossible (the later of the two).
import { FlotillaError } from "../protocol/errors.js";
import { globMatch, isValidGlob } from "./match.js";
import type { FleetLines } from "./fleet-options.js";
import type { FleetOptions } from "./types.js";

export { isValidGlob };

/** The rules, in the order they are checked; exported for the README and the tests. */
export const FLEET_RULES = [
  "MachineOf peer matches Conflicts",
  "MachineOf peer matches Replaces",
  "MachineOf names the unit itself",
  "MachineID cannot be used with MachineOf",
  "MachineID cannot be used with Conflicts",
  "MachineID cannot be used with Global",
  "MachineID cannot be used with Replaces",
  "Global cannot be used with MachineOf",
  "Global cannot be used with Replaces",
  "Conflicts cannot be used with Replaces",
] as const;

function ruleError(line: number | undefined, message: string, field: string): FlotillaError {
  const where = line === undefined ? "" : `line ${line}: `;
  return new FlotillaError("invalid_unit_file", `${where}[X-Fleet] ${message}`, { field, line });
}

function later(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.max(a, b);
}

/**
 * Throws invalid_unit_file when the [X-Fleet] options cannot be satisfied together. `lines`
 * holds the line of each option (unknown lines are left out of the message).
 */
export function validateFleetOptions(name: string, fleet: FleetOptions, lines: FleetLines = {}): void {
  for (const peer of fleet.machineOf) {
    const c = fleet.conflicts.find((p) => globMatch(p, peer));
    if (c !== undefined) {
      throw ruleError(
        later(lines.machineOf, lines.conflicts),
        `unresolvable requirements: MachineOf=${peer} matches the unit's own Conflicts=${c} (it must run with a unit it may not run with)`,
        "MachineOf",
      );
    }
    const r = fleet.replaces.find((p) => globMatch(p, peer));
    if (r !== undefined) {
      throw ruleError(
        later(lines.machineOf, lines.replaces),
        `unresolvable requirements: MachineOf=${peer} matches the unit's own Replaces=${r} (it must run with a unit it pushes away)`,
        "MachineOf",
      );
    }
    if (peer === name) {
      throw ruleError(lines.machineOf, `MachineOf=${peer} names the unit itself`, "MachineOf");
    }
  }
  const hasId = fleet.machineId !== undefined;
  const hasPeers = fleet.machineOf.length > 0;
  const hasConflicts = fleet.conflicts.length > 0;
  const hasReplaces = fleet.replaces.length > 0;
  const g = fleet.global;
  const pairs: [boolean, string, number | undefined, string][] = [
    [hasId && hasPeers, "MachineID cannot be used with MachineOf: a unit pinned to one machine cannot also follow another unit", later(lines.machineId, lines.machineOf), "MachineOf"],
    [hasId && hasConflicts, "MachineID cannot be used with Conflicts: a unit pinned to one machine cannot move away from a conflict", later(lines.machineId, lines.conflicts), "Conflicts"],
    [hasId && g, "MachineID cannot be used with Global: a global unit runs on every machine", later(lines.machineId, lines.global), "Global"],
    [hasId && hasReplaces, "MachineID cannot be used with Replaces: a unit pinned to one machine cannot take another unit's place", later(lines.machineId, lines.replaces), "Replaces"],
    [g && hasPeers, "Global cannot be used with MachineOf: a global unit runs on every machine", later(lines.global, lines.machineOf), "MachineOf"],
    [g && hasReplaces, "Global cannot be used with Replaces: a global unit runs on every machine", later(lines.global, lines.replaces), "Replaces"],
    [hasConflicts && hasReplaces, "Conflicts cannot be used with Replaces", later(lines.conflicts, lines.replaces), "Replaces"],
  ];
  for (const [bad, message, line, field] of pairs) {
    if (bad) throw ruleError(line, message, field);
  }
}
