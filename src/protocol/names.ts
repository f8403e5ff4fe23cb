// Every subject, bucket name and key in flotilla is built here and nowhere else (fleet builds
// its registry keys in one function; so do we). Keys allow only [-/=.\w]; unit names may hold
// '@' and ':', which are escaped as '=40' and '=3A' by escapeUnit().
import { FlotillaError } from "./errors.js";

export const DEFAULT_PREFIX = "flotilla";

const PREFIX_RE = /^[A-Za-z0-9_-]+$/;
export function validatePrefix(prefix: string): string {
  if (!PREFIX_RE.test(prefix)) {
    throw new FlotillaError(
      "bad_config",
      `prefix "${prefix}" is not valid: use letters, digits, '-' and '_' only (it becomes part of subjects and bucket names)`,
      { field: "prefix", value: prefix },
    );
  }
  return prefix;
}

export const BUCKETS = ["units", "schedule", "states", "machines", "leases"] as const;
export type BucketRole = (typeof BUCKETS)[number];

export const API_VERBS = [
  "submit",
  "load",
  "start",
  "stop",
  "unload",
  "destroy",
  "restart",
  "list-units",
  "list-unit-files",
  "list-machines",
  "status",
  "cat",
  "journal",
  "machine-availability",
] as const;
export type ApiVerb = (typeof API_VERBS)[number];

export const SERVICE_NAME = "flotilla";

/**
 * Verbs that only read: safe to ask again, and answered also on <prefix>.api.any.<verb> by every
 * daemon at once (no queue group), where a retry goes when a request to the queue group timed
 * out (a cut-off daemon stays in the group until nats-server drops it).
 */
export const READ_VERBS = ["list-units", "list-unit-files", "list-machines", "status", "cat", "journal", "statecharts"] as const;
export const LEASE_KEY_ENGINE = "engine-leader";

// Unit names: [a-zA-Z0-9:_.@-]+ (fleet's rule). Machine IDs: [A-Za-z0-9_-]+ (no dots, so a key's
// machine part is always exactly one token).
const UNIT_NAME_RE = /^[a-zA-Z0-9:_.@-]+$/;
const MACHINE_ID_RE = /^[A-Za-z0-9_-]{1,128}$/;

export function isValidUnitName(name: string): boolean {
  return name.length > 0 && name.length <= 255 && UNIT_NAME_RE.test(name) && !name.startsWith(".") && !name.endsWith(".");
}

export function isValidMachineId(id: string): boolean {
  return MACHINE_ID_RE.test(id);
}

export function assertMachineId(id: string, field = "machineId"): string {
  if (!isValidMachineId(id)) {
    throw new FlotillaError(
      "bad_flag",
      `machine ID "${id}" is not valid: use 1-128 letters, digits, '-' or '_'`,
      { field, value: id },
    );
  }
  return id;
}

/** Whether a subject (or a bucket key) matches a NATS filter: `*` one token, `>` the rest (one or more). */
export function subjectMatches(filter: string, subject: string): boolean {
  const f = filter.split(".");
  const s = subject.split(".");
  for (let i = 0; i < f.length; i++) {
    if (f[i] === ">") return s.length > i;
    if (i >= s.length || (f[i] !== "*" && f[i] !== s[i])) return false;
  }
  return f.length === s.length;
}

export function escapeUnit(unit: string): string {
  return unit.replace(/@/g, "=40").replace(/:/g, "=3A");
}

export function unescapeUnit(escaped: string): string {
  return escaped.replace(/=40/g, "@").replace(/=3A/gi, ":");
}

/** Names of the buckets and streams of one cluster (one prefix). */
export class Names {
  readonly prefix: string;

  constructor(prefix: string = DEFAULT_PREFIX) {
    this.prefix = validatePrefix(prefix);
  }

  bucket(role: BucketRole): string {
    return `${this.prefix}-${role}`;
  }

  // ---- subjects ----
  apiSubject(verb: ApiVerb | string): string {
    return `${this.prefix}.api.${verb}`;
  }
  apiSubjectRoot(): string {
    return `${this.prefix}.api`;
  }
  /** A read verb as every daemon answers it (no queue group): for retries. */
  apiAnySubject(verb: string): string {
    return `${this.prefix}.api.any.${verb}`;
  }
  journalStream(): string {
    return `${this.prefix}-journal`;
  }
  journalSubject(unit: string, machineId: string): string {
    return `${this.prefix}.journal.${escapeUnit(unit)}.${machineId}`;
  }
  /** Every machine's journal of one unit. */
  journalUnitFilter(unit: string): string {
    return `${this.prefix}.journal.${escapeUnit(unit)}.*`;
  }
  journalAll(): string {
    return `${this.prefix}.journal.>`;
  }
  /** One actor's transitions; per-unit actors (task, task-manager) add the unit. */
  inspectSubject(machineId: string, actor: string, unit?: string): string {
    return `${this.prefix}.inspect.${machineId}.${actor}${unit === undefined ? "" : "." + escapeUnit(unit)}`;
  }
  /** The stream over every inspect subject: a late viewer reads each actor's last state and its history. */
  inspectStream(): string {
    return `${this.prefix}-inspect`;
  }
  inspectAll(): string {
    return `${this.prefix}.inspect.>`;
  }
  /** Requests to one machine's daemon (availability changes and the like). */
  machineControlSubject(machineId: string, verb: string): string {
    return `${this.prefix}.machine.${machineId}.${verb}`;
  }
}

// ---- JetStream's own names for a KV bucket (nats.js builds the same; nobody writes them inline) ----

export const kvNames = {
  /** The stream behind a bucket. */
  stream(bucket: string): string {
    return `KV_${bucket}`;
  },
  /** The subject root of a bucket's keys ("$KV.<bucket>"). */
  root(bucket: string): string {
    return `$KV.${bucket}`;
  },
  /** The subject prefix of a bucket's keys ("$KV.<bucket>."). */
  subjectPrefix(bucket: string): string {
    return `$KV.${bucket}.`;
  },
  /** The subject of one key (or a filter such as "m1.>"). */
  subject(bucket: string, key: string): string {
    return `$KV.${bucket}.${key}`;
  },
  /** DIRECT.GET of a bucket; with a key, the last value of that key. */
  directGet(bucket: string, key?: string): string {
    return `$JS.API.DIRECT.GET.KV_${bucket}${key === undefined ? "" : `.$KV.${bucket}.${key}`}`;
  },
};

// ---- keys (bucket-relative) ----

export const keys = {
  unit(unit: string): string {
    return escapeUnit(unit);
  },
  unitFromKey(key: string): string {
    return unescapeUnit(key);
  },

  schedule(machineId: string, unit: string): string {
    return `${machineId}.${escapeUnit(unit)}`;
  },
  /** Watch filter for one machine's slice of the schedule (one wildcard filter: 2.9-safe). */
  scheduleOfMachine(machineId: string): string {
    return `${machineId}.>`;
  },
  parseSchedule(key: string): { machineId: string; unit: string } | undefined {
    const dot = key.indexOf(".");
    if (dot <= 0 || dot === key.length - 1) return undefined;
    return { machineId: key.slice(0, dot), unit: unescapeUnit(key.slice(dot + 1)) };
  },

  state(unit: string, machineId: string): string {
    return `${escapeUnit(unit)}.${machineId}`;
  },
  /** Watch/keys filter for every machine's state of one unit. */
  statesOfUnit(unit: string): string {
    return `${escapeUnit(unit)}.*`;
  },
  parseState(key: string): { unit: string; machineId: string } | undefined {
    const dot = key.lastIndexOf(".");
    if (dot <= 0 || dot === key.length - 1) return undefined;
    return { unit: unescapeUnit(key.slice(0, dot)), machineId: key.slice(dot + 1) };
  },

  /**
   * Why a unit is not placed, written by the leader engine into the schedule bucket. '=' never
   * occurs in a machine ID, so no agent's `<machineId>.>` watch ever sees these keys.
   */
  unplaced(unit: string): string {
    return `=unplaced.${escapeUnit(unit)}`;
  },
  unplacedAll(): string {
    return "=unplaced.>";
  },
  parseUnplaced(key: string): string | undefined {
    return key.startsWith("=unplaced.") ? unescapeUnit(key.slice("=unplaced.".length)) : undefined;
  },

  machine(machineId: string): string {
    return machineId;
  },

  lease(name: string): string {
    return name;
  },
};
