// [X-Fleet] options, read one assignment at a time: fleet's placement keys (MachineID,
// MachineOf, MachineMetadata, Conflicts, Global, Replaces, and their deprecated X-Condition
// spellings) plus flotilla's CPU= and Memory= reservations. The list keys take several
// space-separated (optionally quoted) values per line and accumulate over repeated lines.
import { showValue } from "../protocol/errors.js";
import { isValidMachineId } from "../protocol/names.js";
import { parseSize } from "../util/measure.js";
import { dict, lineError, type IniEntry } from "./ini.js";
import { isValidGlob } from "./match.js";
import type { FleetOptions } from "./types.js";
import { splitWords, WordError } from "./words.js";

/** Line of the first value of each fleet option that is set, for cross-option errors. */
export interface FleetLines {
  machineId?: number;
  machineOf?: number;
  conflicts?: number;
  replaces?: number;
  global?: number;
  machineMetadata?: number;
}

const DEPRECATED_FLEET = new Map<string, string>([
  ["X-ConditionMachineID", "MachineID"],
  ["X-ConditionMachineBootID", "MachineID"],
  ["X-ConditionMachineOf", "MachineOf"],
  ["X-Conflicts", "Conflicts"],
  ["X-ConditionMachineMetadata", "MachineMetadata"],
]);

const TRUTHY = new Set(["true", "yes", "1", "on", "t"]);
const FALSY = new Set(["false", "no", "0", "off", "f", ""]);

function fleetWords(e: IniEntry, key: string): string[] {
  try {
    return splitWords(e.value).map((w) => w.text);
  } catch (err) {
    if (err instanceof WordError) throw lineError(e.line, `${key}=: ${err.message}`, key, e.value);
    throw err;
  }
}

/** The options of a unit without [X-Fleet] lines, before the lines are read (parse.ts, index.ts). */
export function emptyFleetOptions(): FleetOptions {
  return { machineOf: [], machineMetadata: dict<string[]>(), conflicts: [], global: false, replaces: [] };
}

export function fleetOption(fleet: FleetOptions, lines: FleetLines, e: IniEntry, warn: (line: number, m: string) => void): void {
  let key = e.key;
  const modern = DEPRECATED_FLEET.get(key);
  if (modern) {
    warn(e.line, `${key}= is deprecated; write ${modern}=`);
    key = modern;
  }
  const { value, line } = e;
  switch (key) {
    case "MachineID": {
      if (value === "") {
        delete fleet.machineId;
        delete lines.machineId;
        return;
      }
      if (!isValidMachineId(value)) {
        throw lineError(line, `MachineID=${showValue(value)} is not a machine ID (letters, digits, '-', '_')`, key, value);
      }
      // fleet uses the first MachineID=; two different ones cannot both hold.
      if (fleet.machineId !== undefined && fleet.machineId !== value) {
        throw lineError(line, `MachineID= given twice with different values (${fleet.machineId}, ${value})`, key, value);
      }
      fleet.machineId = value;
      lines.machineId ??= line;
      return;
    }
    case "MachineOf":
    case "Conflicts":
    case "Replaces": {
      const field = key === "MachineOf" ? "machineOf" : key === "Conflicts" ? "conflicts" : "replaces";
      if (value === "") {
        fleet[field] = [];
        delete lines[field];
        return;
      }
      for (const w of fleetWords(e, key)) {
        if (key === "MachineOf") {
          if (!/^[a-zA-Z0-9:_.@-]+$/.test(w)) throw lineError(line, `MachineOf=${showValue(w)} is not a unit name`, key, value);
          if (!/\.[a-z]+$/.test(w)) warn(line, `MachineOf=${w} has no unit type; did you mean ${w}.service?`);
        } else if (!isValidGlob(w)) {
          throw lineError(line, `${key}=${showValue(w)} is not a valid glob pattern (*, ?, [a-z])`, key, value);
        }
        if (!fleet[field].includes(w)) fleet[field].push(w);
      }
      lines[field] ??= line;
      return;
    }
    case "MachineMetadata": {
      if (value === "") {
        fleet.machineMetadata = dict<string[]>();
        delete lines.machineMetadata;
        return;
      }
      for (const w of fleetWords(e, key)) {
        const eq = w.indexOf("=");
        const k = w.slice(0, eq);
        const v = w.slice(eq + 1);
        if (eq <= 0 || v === "" || v.includes("=")) {
          throw lineError(line, `MachineMetadata=: ${showValue(w)} is not key=value`, key, value);
        }
        const vals = (fleet.machineMetadata[k] ??= []);
        if (!vals.includes(v)) vals.push(v);
      }
      lines.machineMetadata ??= line;
      return;
    }
    case "Global": {
      // fleet: the last Global= wins; anything not truthy is false.
      const v = value.toLowerCase();
      fleet.global = TRUTHY.has(v);
      if (!fleet.global && !FALSY.has(v)) warn(line, `Global=${value} is not a yes/no value; treated as false`);
      if (fleet.global) lines.global = line;
      else delete lines.global;
      return;
    }
    case "CPU": {
      if (value === "") {
        delete fleet.cpu;
        return;
      }
      const n = /^\d+(\.\d+)?$/.test(value) ? Number(value) : NaN;
      if (!(n > 0) || n > 100_000) {
        throw lineError(line, `CPU=${showValue(value)} is not a number of cores above 0 (examples: 0.5, 2)`, key, value);
      }
      fleet.cpu = n;
      return;
    }
    case "Memory": {
      if (value === "") {
        delete fleet.memoryBytes;
        return;
      }
      let bytes: number;
      try {
        bytes = parseSize(value, "Memory");
      } catch {
        throw lineError(line, `Memory=${showValue(value)} is not a size (examples: 512M, 2G)`, key, value);
      }
      if (!(bytes > 0)) throw lineError(line, `Memory= must be more than 0`, key, value);
      fleet.memoryBytes = bytes;
      return;
    }
    default:
      warn(line, `unknown key ${e.key}= in [X-Fleet] is ignored (fleet knows MachineID, MachineOf, MachineMetadata, Conflicts, Global, Replaces; flotilla adds CPU, Memory)`);
  }
}

