// The unit file module's public face: parse + validate a fleet-style unit file, name rules,
// templates, the content hash, and the placement helpers the engine and agent share.
import { createHash } from "node:crypto";
import { parseUnit, type ParseOptions } from "./parse.js";
import type { FleetOptions, ParsedUnit } from "./types.js";
import { normalizeUnitName } from "./names.js";

export type { ParsedUnit, ServiceOptions, FleetOptions, ExecCommand, UnitWarning, RestartPolicy } from "./types.js";
export { DEFAULTS, type ParseOptions } from "./parse.js";
export { MAX_DURATION_MS } from "./service-options.js";
export { MAX_UNIT_FILE_BYTES } from "./ini.js";
export {
  normalizeUnitName,
  isTemplate,
  instanceOf,
  unitNameInfo,
  expandSpecifiers,
  UNIT_TYPES,
  type UnitNameInfo,
  type HostInfo,
} from "./names.js";
export { validateFleetOptions, FLEET_RULES } from "./validate.js";
export {
  matchesMetadata,
  chooseGlobals,
  explainMetadata,
  formatMissing,
  formatMetadata,
  globMatch,
  isValidGlob,
  conflictsWith,
  conflictReason,
  replaces,
  isGlobal,
  type MissingMetadata,
  type UnitRef,
} from "./match.js";
export { splitWords } from "./words.js";
export { parseEnvironmentFile, expandExecArgv, type EnvFileResult } from "./env.js";

/**
 * Parses and validates a unit file. `name` is normalized first ("hello" -> "hello.service");
 * an instance name ("hello@1.service") with its template's contents expands %i to "1".
 * Throws FlotillaError "invalid_unit_name" for the name, "invalid_unit_file" (with `line`) for
 * the contents. Unknown keys come back in `warnings` with their line.
 */
export function parseUnitFile(name: string, contents: string, opts?: ParseOptions): ParsedUnit {
  return parseUnit(name, contents, opts);
}

/** sha1 hex of the contents: identifies a version of a unit (listings show the first 7). */
export function unitHash(contents: string): string {
  return createHash("sha1").update(contents, "utf8").digest("hex");
}

export function shortHash(hash: string): string {
  return hash.slice(0, 7);
}

// ---- cache ----
// The engine re-reads every unit on each reconcile; at 100k units parsing them all again is the
// bulk of the work although they rarely change. Keyed by (name, content hash): the same template
// contents under two instance names parse differently. Results are deep-frozen because they are
// shared; errors are cached too, so a bad unit costs one parse, not one per reconcile.

const CACHE_MAX = 200_000;
const cache = new Map<string, ParsedUnit | Error>();

function deepFreeze<T>(o: T): T {
  if (o && typeof o === "object" && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o as object)) deepFreeze(v);
  }
  return o;
}

/**
 * parseUnitFile through a bounded cache (oldest entries evicted first). Pass the hash when you
 * already have it (the units bucket stores it) to skip hashing. The result is frozen: copy
 * before changing it. Host specifiers are never expanded here (no `opts`): that is per machine.
 */
export function parseUnitFileCached(name: string, contents: string, hash?: string): Readonly<ParsedUnit> {
  const key = `${name}\u0000${hash ?? unitHash(contents)}`;
  const hit = cache.get(key);
  if (hit !== undefined) {
    // Refresh recency: Map iteration order is insertion order.
    cache.delete(key);
    cache.set(key, hit);
    if (hit instanceof Error) throw hit;
    return hit;
  }
  let result: ParsedUnit | Error;
  try {
    result = deepFreeze(parseUnit(name, contents));
  } catch (e) {
    if (!(e instanceof Error)) throw e;
    result = e;
  }
  cache.set(key, result);
  if (cache.size > CACHE_MAX) cache.delete(cache.keys().next().value!);
  if (result instanceof Error) throw result;
  return result;
}

// ---- [X-Fleet] options by contents ----
// The engine reads only the [X-Fleet] options of a unit, and many units share one file (the
// same file submitted under many names, a template's instances): a 100,000-unit intake parsed
// (and froze) 100,000 files where a few distinct ones were sent. Without a specifier ('%') the
// options are the same under every name, apart from what the parse checks of the name itself:
// it is a valid .service name, and MachineOf does not name the unit. So they are kept per
// content hash, and a name that fails those checks, a file with specifiers or a file that does
// not parse goes through parseUnitFileCached as before (same result, same error).

const FLEET_MAX = 100_000;
const fleetCache = new Map<string, { contents: string; fleet: Readonly<FleetOptions> }>();

/**
 * parseUnitFileCached(name, contents, hash).fleet (frozen, shared), parsed once per contents
 * where the name cannot matter. sharedContents gives the copy of the contents kept with them.
 */
export function fleetOptionsCached(name: string, contents: string, hash?: string): Readonly<FleetOptions> {
  if (contents.includes("%")) return parseUnitFileCached(name, contents, hash).fleet;
  const h = hash ?? unitHash(contents);
  const hit = fleetCache.get(h);
  if (hit !== undefined && hit.contents === contents && nameChecksPass(name, hit.fleet)) return hit.fleet;
  let fleet: Readonly<FleetOptions>;
  try {
    // Only the options are kept (and frozen): not the whole parse in the per-name cache.
    fleet = deepFreeze(parseUnit(name, contents).fleet);
  } catch {
    // The error of this name, as parseUnitFileCached gives (and keeps) it.
    return parseUnitFileCached(name, contents, h).fleet;
  }
  if (fleetCache.size >= FLEET_MAX) fleetCache.delete(fleetCache.keys().next().value!);
  fleetCache.set(h, { contents, fleet });
  return fleet;
}

/** The contents kept with the options of `hash`, when they are these contents (one string for all the units of a file). */
export function sharedContents(hash: string, contents: string): string | undefined {
  const hit = fleetCache.get(hash);
  return hit !== undefined && hit.contents === contents ? hit.contents : undefined;
}

/** What parseUnit checks of the name when the contents parse under another name. */
function nameChecksPass(name: string, fleet: Readonly<FleetOptions>): boolean {
  let full: string;
  try {
    full = normalizeUnitName(name);
  } catch {
    return false;
  }
  return full.endsWith(".service") && !fleet.machineOf.includes(full);
}

/** Empties the parse caches (tests, or a process that wants the memory back). */
export function clearUnitCache(): void {
  cache.clear();
  fleetCache.clear();
}

export function unitCacheSize(): number {
  return cache.size;
}
