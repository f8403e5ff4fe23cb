// Pure placement helpers shared by the engine (where may a unit go?) and the agent (may this
// unit run next to what I already run?). fleet's semantics: MachineMetadata values of one key
// are OR'ed and keys are AND'ed; Conflicts= and Replaces= are globs with Go's path.Match rules
// ('*' and '?' never cross '/', '[...]' classes with '^' negation and ranges, '\' escapes).
import type { FleetOptions } from "./types.js";

function own(rec: Record<string, string>, key: string): string | undefined {
  return Object.hasOwn(rec, key) ? rec[key] : undefined;
}

// fleet's comparison forms arrive as keys ending in an operator, because "ram>=1024" splits at
// its '=' into key "ram>" and value "1024" (fleet's own representation, kept as is):
// "key>=n", "key<=n" compare numbers; "key!=v" requires the machine's value to be none of the
// listed ones (a machine without the key passes). Plain keys: the machine's value is one of them.
function keySatisfied(key: string, wanted: string[], have: Record<string, string>): boolean {
  const op = key.length > 1 ? key[key.length - 1] : undefined;
  if (op === ">" || op === "<" || op === "!") {
    const base = key.slice(0, -1);
    const v = own(have, base);
    if (op === "!") return v === undefined || !wanted.includes(v);
    if (v === undefined || v.trim() === "") return false;
    const n = Number(v);
    if (!Number.isFinite(n)) return false;
    return wanted.every((w) => {
      const limit = Number(w);
      return Number.isFinite(limit) && (op === ">" ? n >= limit : n <= limit);
    });
  }
  const v = own(have, key);
  return v !== undefined && wanted.includes(v);
}

/** True when a machine with metadata `have` satisfies every required key (any listed value). */
export function matchesMetadata(required: Record<string, string[]>, have: Record<string, string>): boolean {
  for (const key of Object.keys(required)) {
    const wanted = required[key]!;
    if (wanted.length === 0) continue;
    if (!keySatisfied(key, wanted, have)) return false;
  }
  return true;
}

export interface MissingMetadata {
  key: string;
  /** Any one of these would do. */
  wanted: string[];
  /** What the machine has for this key, if anything. */
  have?: string;
}

/** The required pairs a machine lacks (empty when it matches), in the order they were required. */
export function explainMetadata(required: Record<string, string[]>, have: Record<string, string>): MissingMetadata[] {
  const out: MissingMetadata[] = [];
  for (const key of Object.keys(required)) {
    const wanted = required[key]!;
    if (wanted.length === 0 || keySatisfied(key, wanted, have)) continue;
    const m: MissingMetadata = { key, wanted: [...wanted] };
    const base = /[<>!]$/.test(key) && key.length > 1 ? key.slice(0, -1) : key;
    const v = own(have, base);
    if (v !== undefined) m.have = v;
    out.push(m);
  }
  return out;
}

/** "region=eu", "region=eu|us" (any of), "ram>=1024": how a missing requirement reads in a message. */
export function formatMissing(m: MissingMetadata): string {
  return `${m.key}=${m.wanted.join("|")}`;
}

/** All required pairs as "region=eu|us,disk=ssd", for listings and unplaced reasons. */
export function formatMetadata(required: Record<string, string[]>): string {
  return Object.keys(required)
    .filter((k) => required[k]!.length > 0)
    .map((k) => `${k}=${required[k]!.join("|")}`)
    .join(",");
}

// ---- globs (Go's path.Match) ----

type Token =
  | { t: "lit"; c: string }
  | { t: "any" } // ?
  | { t: "star" }
  | { t: "class"; neg: boolean; ranges: [string, string][] };

const compiled = new Map<string, Token[] | null>();

function compile(pattern: string): Token[] | null {
  const hit = compiled.get(pattern);
  if (hit !== undefined) return hit;
  const toks: Token[] | null = tokenize(pattern);
  if (compiled.size > 10_000) compiled.clear();
  compiled.set(pattern, toks);
  return toks;
}

function tokenize(p: string): Token[] | null {
  const chars = Array.from(p);
  const toks: Token[] = [];
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    if (c === "*") toks.push({ t: "star" });
    else if (c === "?") toks.push({ t: "any" });
    else if (c === "\\") {
      if (i + 1 >= chars.length) return null; // Go: ErrBadPattern
      toks.push({ t: "lit", c: chars[++i]! });
    } else if (c === "[") {
      let j = i + 1;
      let neg = false;
      if (chars[j] === "^") {
        neg = true;
        j++;
      }
      const ranges: [string, string][] = [];
      let first = true;
      for (;;) {
        if (j >= chars.length) return null;
        if (chars[j] === "]" && !first) break;
        first = false;
        const lo = readClassChar(chars, j);
        if (!lo) return null;
        j = lo[1];
        let hi: [string, number] | null = [lo[0], j];
        if (chars[j] === "-") {
          hi = readClassChar(chars, j + 1);
          if (!hi) return null;
          j = hi[1];
        }
        ranges.push([lo[0], hi[0]]);
      }
      toks.push({ t: "class", neg, ranges });
      i = j; // at the closing ']'
    } else toks.push({ t: "lit", c });
  }
  return toks;
}

function readClassChar(chars: string[], j: number): [string, number] | null {
  const c = chars[j];
  if (c === undefined || c === "-" || c === "]") return null;
  if (c === "\\") {
    const d = chars[j + 1];
    if (d === undefined) return null;
    return [d, j + 2];
  }
  return [c, j + 1];
}

function matchAt(toks: Token[], ti: number, s: string[], si: number): boolean {
  for (; ti < toks.length; ti++) {
    const tok = toks[ti]!;
    if (tok.t === "star") {
      // '*' matches any run of non-'/' characters.
      for (let k = si; ; k++) {
        if (matchAt(toks, ti + 1, s, k)) return true;
        if (k >= s.length || s[k] === "/") return false;
      }
    }
    const c = s[si];
    if (c === undefined) return false;
    if (tok.t === "lit") {
      if (c !== tok.c) return false;
    } else if (tok.t === "any") {
      if (c === "/") return false;
    } else {
      if (c === "/") return false;
      const inside = tok.ranges.some(([lo, hi]) => lo <= c && c <= hi);
      if (inside === tok.neg) return false;
    }
    si++;
  }
  return si === s.length;
}

/** Go's path.Match(pattern, name); a malformed pattern matches nothing (fleet ignores the error). */
export function globMatch(pattern: string, name: string): boolean {
  const toks = compile(pattern);
  if (!toks) return false;
  return matchAt(toks, 0, Array.from(name), 0);
}

/** False for a pattern Go's path.Match would reject with ErrBadPattern. */
export function isValidGlob(pattern: string): boolean {
  // Only an escape or a class can be malformed (tokenize): no need to compile (and cache) the rest.
  return pattern.length > 0 && (!/[\\[]/.test(pattern) || compile(pattern) !== null);
}

// ---- unit relations ----

export interface UnitRef {
  name: string;
  fleet: Pick<FleetOptions, "conflicts"> & Partial<FleetOptions>;
}

/** Two different units that may not share a machine: either one's Conflicts= matches the other. */
export function conflictsWith(a: UnitRef, b: UnitRef): boolean {
  if (a.name === b.name) return false;
  return a.fleet.conflicts.some((p) => globMatch(p, b.name)) || b.fleet.conflicts.some((p) => globMatch(p, a.name));
}

/** The first Conflicts= pattern (of either side) that keeps a and b apart, for explanations. */
export function conflictReason(a: UnitRef, b: UnitRef): string | undefined {
  if (a.name === b.name) return undefined;
  const pa = a.fleet.conflicts.find((p) => globMatch(p, b.name));
  if (pa !== undefined) return `${a.name} conflicts with ${b.name} (Conflicts=${pa})`;
  const pb = b.fleet.conflicts.find((p) => globMatch(p, a.name));
  if (pb !== undefined) return `${b.name} conflicts with ${a.name} (Conflicts=${pb})`;
  return undefined;
}

/** `unit` declares Replaces= matching `other`: other must move off the machine unit goes to. */
export function replaces(unit: { name: string; fleet: Pick<FleetOptions, "replaces"> }, other: string): boolean {
  return unit.name !== other && unit.fleet.replaces.some((p) => globMatch(p, other));
}

export function isGlobal(u: { fleet: Pick<FleetOptions, "global"> }): boolean {
  return u.fleet.global;
}

/**
 * When a unit arrived, for first come, first served between globals: the pinned
 * activatedRevision of its record, else the revision of the units-bucket entry that carries
 * the record (see UnitRecord.activatedRevision). The same on every agent and in the engine,
 * because both read it from the same entries.
 */
export function arrivalOf(rec: { activatedRevision?: number }, revision: number): number {
  return rec.activatedRevision ?? revision;
}

/** First come, first served: earlier arrival first; equal (or unknown) arrivals by name. */
export function byArrival(a: { name: string; arrival?: number }, b: { name: string; arrival?: number }): number {
  const x = a.arrival ?? Number.POSITIVE_INFINITY;
  const y = b.arrival ?? Number.POSITIVE_INFINITY;
  if (x !== y) return x < y ? -1 : 1;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/**
 * The Global units that run on a machine, decided the same way by its agent (which runs them)
 * and by the engine (which keeps non-global units off a machine where a conflicting global
 * runs): first come, first served. In arrival order (arrivalOf; ties and unknown arrivals by
 * name), each global whose MachineMetadata the machine has and that conflicts with none of
 * the units already there (the machine's scheduled units, then the globals chosen before it).
 * So of two conflicting globals the one that came first runs, on every machine, and a global
 * started later waits instead of pushing a running one off; it runs once the first is
 * unloaded or destroyed. A global already among `here` (by name) is not chosen again.
 */
export function chooseGlobals<G extends UnitRef & { fleet: Pick<FleetOptions, "machineMetadata">; arrival?: number }>(
  globals: Iterable<G>,
  metadata: Record<string, string>,
  here: Iterable<UnitRef>,
): G[] {
  const sorted = [...globals].sort(byArrival);
  const present: UnitRef[] = [...here];
  const names = new Set(present.map((u) => u.name));
  const chosen: G[] = [];
  for (const g of sorted) {
    if (names.has(g.name)) continue;
    if (!matchesMetadata(g.fleet.machineMetadata, metadata)) continue;
    if (present.some((u) => conflictsWith(u, g))) continue;
    chosen.push(g);
    present.push(g);
    names.add(g.name);
  }
  return chosen;
}
