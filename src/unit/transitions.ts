// What one unit verb does to one unit record: a pure decision (fleet's setTargetStateOfUnits
// and --replace rules), table-tested, then executed by UnitStore under compare-and-set. The
// store calls decide() again on every retry, against the record it just read, so a verb that
// became illegal because another writer won the race fails instead of overwriting.
import { FlotillaError } from "../protocol/errors.js";
import type { DesiredState, UnitRecord } from "../protocol/messages.js";

export const UNIT_VERBS = ["submit", "load", "start", "stop", "unload", "destroy", "restart"] as const;
export type UnitVerb = (typeof UNIT_VERBS)[number];

/** Verbs that may create a unit (from contents or a template) and that take --replace. */
export const CREATING_VERBS = ["submit", "load", "start"] as const;
export type CreatingVerb = (typeof CREATING_VERBS)[number];

export function isCreatingVerb(v: UnitVerb): v is CreatingVerb {
  return (CREATING_VERBS as readonly string[]).includes(v);
}

/** fleetctl's checkReplaceUnitState: from which desired states each verb may replace a unit file. */
export const REPLACE_ALLOWED: Record<CreatingVerb, readonly DesiredState[]> = {
  submit: ["inactive"],
  load: ["inactive", "loaded"],
  start: ["inactive", "loaded", "launched"],
};

/** The desired state a verb asks for; undefined: the verb keeps it (submit of an existing unit). */
const TARGET: Record<Exclude<UnitVerb, "destroy" | "restart">, DesiredState> = {
  submit: "inactive",
  load: "loaded",
  start: "launched",
  stop: "loaded",
  unload: "inactive",
};

export interface UnitInput {
  name: string;
  /** The unit file to use when creating or replacing (undefined: act on the stored unit). */
  contents?: string;
  hash?: string;
  replace: boolean;
}

export type Decision =
  | { action: "put"; desiredState: DesiredState; contents: string; hash: string; warning?: string }
  | { action: "delete" }
  | { action: "none"; warning?: string };

function illegal(name: string, message: string): FlotillaError {
  return new FlotillaError("illegal_state_change", message, { field: "units", value: name });
}

/**
 * The next state of one unit under one verb, or a FlotillaError (unknown_unit,
 * illegal_state_change). `restart` is decided as its two halves by the store: stop, then start.
 */
export function decide(verb: Exclude<UnitVerb, "restart">, current: UnitRecord | undefined, input: UnitInput): Decision {
  const { name } = input;
  if (!current) {
    if (!isCreatingVerb(verb)) {
      throw new FlotillaError("unknown_unit", `unit ${name} does not exist in the cluster`, { field: "units", value: name });
    }
    if (input.contents === undefined || input.hash === undefined) {
      throw new FlotillaError(
        "unknown_unit",
        `unit ${name} does not exist in the cluster and no unit file was given for it`,
        { field: "units", value: name },
      );
    }
    return { action: "put", desiredState: TARGET[verb], contents: input.contents, hash: input.hash };
  }

  if (verb === "destroy") return { action: "delete" };

  if (verb === "stop" && current.desiredState === "inactive") {
    throw illegal(name, `cannot stop ${name}: it is inactive (not loaded); load or start it first`);
  }

  let contents = current.contents;
  let hash = current.hash;
  let warning: string | undefined;
  if (isCreatingVerb(verb) && input.contents !== undefined && input.hash !== undefined && input.hash !== current.hash) {
    if (input.replace) {
      if (!REPLACE_ALLOWED[verb].includes(current.desiredState)) {
        throw illegal(
          name,
          `cannot replace ${name}: it is ${current.desiredState}, and ${verb} --replace replaces only a unit that is ` +
            `${REPLACE_ALLOWED[verb].join(" or ")} (use ${verb === "submit" ? "load --replace or start --replace" : "start --replace"}, or stop/unload it first)`,
        );
      }
      contents = input.contents;
      hash = input.hash;
    } else {
      warning = `unit ${name} in the cluster differs from the given unit file (hash ${current.hash.slice(0, 7)} vs ${input.hash.slice(0, 7)}); the cluster's is kept, use --replace to replace it`;
    }
  }

  const desiredState = verb === "submit" ? current.desiredState : TARGET[verb];
  if (desiredState === current.desiredState && hash === current.hash) return { action: "none", warning };
  return { action: "put", desiredState, contents, hash, warning };
}
