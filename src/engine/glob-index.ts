// Conflicts= and Replaces= globs compiled once per reconcile pass (and grown by the incremental
// rounds after it), so that a filter asks "which units does this glob name?" or "whose globs
// name this unit?" without matching every glob against every unit. Globs fall in three kinds:
//   exact   "db.service"        a map lookup;
//   prefix  "web-*", "web@*"    names sharing the prefix, with no '/' after it (Go's '*' never
//                               crosses '/'): a map lookup per distinct prefix length one way, a
//                               binary search in the sorted names the other way;
//   rest    "web@[0-9].service" Go's path.Match on each name, once per glob (cached).
// Same answers as globMatches (scheduler.ts): a malformed glob names only the unit spelled like it.
import { globMatch } from "../unit/match.js";
import { byString, lowerBound, mergeSortedSteps } from "../util/sorted.js";

type Kind = { kind: "exact" } | { kind: "prefix"; prefix: string } | { kind: "rest" };

/** The index of the first of Go's pattern characters (* ? [ \) in s, or -1. */
function firstMeta(s: string): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 42 || c === 63 || c === 91 || c === 92) return i;
  }
  return -1;
}

const EXACT: Kind = { kind: "exact" };
const REST: Kind = { kind: "rest" };

export function globKind(glob: string): Kind {
  const i = firstMeta(glob);
  if (i === -1) return EXACT;
  if (i === glob.length - 1 && glob.charCodeAt(i) === 42) return { kind: "prefix", prefix: glob.slice(0, -1) };
  return REST;
}

function prefixMatches(prefix: string, name: string): boolean {
  return name.startsWith(prefix) && name.indexOf("/", prefix.length) === -1;
}

/** owner appended to m's list at key. (A function, not a closure per call: add() runs once per unit of a burst.) */
function ownedBy<T>(m: Map<string, T[]>, key: string, owner: T): void {
  const l = m.get(key);
  if (l) l.push(owner);
  else m.set(key, [owner]);
}

/** Whose globs name a unit: owners registered per glob, looked up by the unit's name. */
export class GlobOwners<T> {
  private readonly exact = new Map<string, T[]>();
  private readonly prefixes = new Map<string, T[]>();
  /** The distinct prefix lengths: one lookup each per name. */
  private readonly lengths = new Set<number>();
  private readonly rest = new Map<string, T[]>();
  private readonly cache = new Map<string, T[][]>();

  add(glob: string, owner: T): void {
    const k = globKind(glob);
    if (k.kind === "exact") ownedBy(this.exact, glob, owner);
    else if (k.kind === "prefix") {
      this.lengths.add(k.prefix.length);
      ownedBy(this.prefixes, k.prefix, owner);
    } else ownedBy(this.rest, glob, owner);
    this.cache.clear();
  }

  get empty(): boolean {
    return this.exact.size === 0 && this.prefixes.size === 0 && this.rest.size === 0;
  }

  /** The owners of every glob that names `name`, as lists (an owner may appear more than once). */
  ownersOf(name: string): T[][] {
    // Cached only when some glob needs path.Match: the other lookups cost less than keeping them.
    let hit = this.rest.size ? this.cache.get(name) : undefined;
    if (hit) return hit;
    hit = [];
    const e = this.exact.get(name);
    if (e) hit.push(e);
    for (const len of this.lengths) {
      if (len > name.length) continue;
      const p = this.prefixes.get(name.slice(0, len));
      if (p && prefixMatches(name.slice(0, len), name)) hit.push(p);
    }
    if (this.rest.size) {
      for (const [glob, owners] of this.rest) if (glob === name || globMatch(glob, name)) hit.push(owners);
      this.cache.set(name, hit);
    }
    return hit;
  }
}

/**
 * Which names a glob names, among a set of names sorted once; names added later (add(), the
 * engine's incremental rounds) go to a second sorted list, merged into the first (linear, no
 * sort) once it has grown to an eighth of it.
 */
export class NameIndex {
  private sorted: string[];
  private extra: string[] = [];
  private readonly has: ReadonlyMap<string, unknown>;
  private readonly cache = new Map<string, readonly string[]>();

  /** `sorted`: the names already in ascending order, if the caller has them. */
  constructor(names: ReadonlyMap<string, unknown>, sorted?: string[]) {
    this.has = names;
    this.sorted = sorted ?? [...names.keys()].sort(byString);
  }

  /**
   * Names new to the set (already in `names`, the map given to the constructor), in ascending
   * order; yields during its merges (into 100,000 names: 20 ms or more at once).
   */
  *addSteps(names: readonly string[]): Generator<void, void, void> {
    if (names.length === 0) return;
    this.cache.clear();
    this.extra = yield* mergeSortedSteps(this.extra, names);
    if (this.extra.length * 8 >= this.sorted.length) {
      this.sorted = yield* mergeSortedSteps(this.sorted, this.extra);
      this.extra = [];
    }
  }

  named(glob: string): readonly string[] {
    let hit = this.cache.get(glob);
    if (hit) return hit;
    const k = globKind(glob);
    if (k.kind === "exact") hit = this.has.has(glob) ? [glob] : [];
    else if (k.kind === "prefix") {
      const out: string[] = [];
      withPrefix(this.sorted, k.prefix, out);
      if (this.extra.length) withPrefix(this.extra, k.prefix, out);
      hit = out;
    } else {
      hit = this.sorted.filter((n) => n === glob || globMatch(glob, n));
      if (this.extra.length) hit = hit.concat(this.extra.filter((n) => n === glob || globMatch(glob, n)));
    }
    this.cache.set(glob, hit);
    return hit;
  }
}

/** The names of sorted list `s` that `prefix*` names, appended to `out`. */
function withPrefix(s: readonly string[], prefix: string, out: string[]): void {
  for (let i = lowerBound(s, prefix); i < s.length && s[i]!.startsWith(prefix); i++) if (prefixMatches(prefix, s[i]!)) out.push(s[i]!);
}
