// The unit file module's public face: parse + validate a fleet-style unit file, name rules,
// templates, the content hash, and the placement helpers the engine and agent share.
import { createHash } from "node:crypto";
import { parseUnit, type ParseOptions } from "./parse.js";
import type { FleetOptions, ParsedUnit } from "./types.js";
import { normalizeUnitName } from "./names.js";
import { emptyFleetOptions, fleetOption, type FleetLines } from "./fleet-options.js";
import { dict, MAX_UNIT_FILE_BYTES, readIni, type IniEntry } from "./ini.js";
import { validateFleetOptions } from "./validate.js";
import { Oldest } from "../util/oldest.js";

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
const cacheOldest = new Oldest(cache);

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
  cacheOldest.trim(CACHE_MAX);
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

// Enough for the files a burst shares between its units. A bigger map makes every lookup slower
// (at 100,000 entries, 0.75 µs more a unit than at 16,384: more CPU cache misses), and a unit
// whose file fell out reads its own [X-Fleet] lines once, as a unit of a distinct file does.
const FLEET_MAX = 16_384;
const fleetCache = new Map<string, { contents: string; fleet: Readonly<FleetOptions> }>();
const fleetOldest = new Oldest(fleetCache);

/** How fleetOptionsCached read the files it had not seen (tests and benchmarks). */
export const fleetReads = { whole: 0, fleetOnly: 0 };

/**
 * parseUnitFileCached(name, contents, hash).fleet (frozen, shared), parsed once per contents
 * where the name cannot matter. sharedContents gives the copy of the contents kept with them.
 */
export function fleetOptionsCached(name: string, contents: string, hash?: string): Readonly<FleetOptions> {
  if (contents.includes("%")) return parseUnitFileCached(name, contents, hash).fleet;
  const h = hash ?? unitHash(contents);
  const hit = fleetCache.get(h);
  if (hit !== undefined && hit.contents === contents && nameChecksPass(name, hit.fleet)) return hit.fleet;
  let fleet = fleetOfKnownRest(name, contents);
  if (fleet !== undefined) fleetReads.fleetOnly++;
  else {
    fleetReads.whole++;
    try {
      fleet = parseUnit(name, contents).fleet;
    } catch {
      // The error of this name, as parseUnitFileCached gives (and keeps) it.
      return parseUnitFileCached(name, contents, h).fleet;
    }
    rememberRest(contents);
  }
  // Only the options are kept (frozen, compact): not the whole parse in the per-name cache.
  const kept = compactFleet(fleet);
  fleetOldest.trim(FLEET_MAX - 1);
  fleetCache.set(h, { contents, fleet: kept });
  return kept;
}

// ---- the rest of a file, checked once ----
// Distinct files often differ only in [X-Fleet] (Conflicts=<group>-*, MachineOf=<peer>, a region
// each: 100,000 files, one [Unit] and [Service] between them), and the whole parse is most of a
// constrained round's work. Without a specifier, a file's [Unit], [Service] and other lines are
// read the same whatever its [X-Fleet] lines and name are, and they raise no error once they
// passed in one whole file. So when a file's other lines are ones a whole file passed with, only
// its [X-Fleet] lines are read and checked (as parse.ts does, with the normalized name); whatever
// fails there goes to the whole parse, for its exact error. "Other lines" are known two ways:
// - as text: the file is <rest>"[X-Fleet]\n"<lines> with no other section after the header, and
//   <rest> is the text before the header of a file that passed, read on its own with no line
//   left continued (so the INI layer reads the whole file as <rest>'s entries, then the tail's);
//   only the tail is read;
// - as entries: the INI layer reads the whole file, and its entries outside [X-Fleet], in order,
//   are those of a file that passed.

const REST_MAX = 10_000;
const FLEET_HEADER = "\n[X-Fleet]\n";
/** Entries outside [X-Fleet] of files that passed (restKey). */
const restPassed = new Set<string>();
const restPassedOldest = new Oldest(restPassed);
/** Text before the [X-Fleet] header of files that passed -> its size in bytes. */
const restTexts = new Map<string, number>();
const restTextsOldest = new Oldest(restTexts);

/** The lines of a file outside [X-Fleet], as the INI layer read them (values, in order). */
function restKey(entries: readonly IniEntry[]): string {
  let k = "";
  for (const e of entries) if (e.section !== "X-Fleet") k += `${e.section}\u0000${e.key}\u0000${e.value}\n`;
  return k;
}

/** A whole file passed: what its other lines are, both ways. */
function rememberRest(contents: string): void {
  const key = restKey(readIni(contents).entries);
  restPassedOldest.trim(REST_MAX - 1);
  restPassed.add(key);
  const at = contents.lastIndexOf(FLEET_HEADER);
  if (at < 0) return;
  const rest = contents.slice(0, at + 1);
  if (restTexts.has(rest)) return;
  // The text before the header, read alone, gives the file's other lines exactly (none came
  // after the header, and no line of it was left continued into the header: such a line would
  // read otherwise), and no [X-Fleet] line.
  const r = readIni(rest);
  if (r.entries.some((e) => e.section === "X-Fleet") || restKey(r.entries) !== key) return;
  restTextsOldest.trim(REST_MAX - 1);
  restTexts.set(rest, Buffer.byteLength(rest, "utf8"));
}

/** The [X-Fleet] entries of a file whose other lines are known to pass; undefined: parse it whole. Throws what the INI layer throws. */
function fleetEntriesOfKnownRest(contents: string): IniEntry[] | undefined {
  const at = contents.lastIndexOf(FLEET_HEADER);
  const restBytes = at < 0 ? undefined : restTexts.get(contents.slice(0, at + 1));
  if (restBytes !== undefined) {
    const tail = contents.slice(at + 1);
    const plain = plainTail(tail);
    // The whole file's size limit, which reading the tail alone does not see.
    if (restBytes + (plain ? tail.length : Buffer.byteLength(tail, "utf8")) > MAX_UNIT_FILE_BYTES) return undefined;
    if (plain) return plain;
    const ini = readIni(tail);
    return ini.sections.size === 1 ? ini.entries : undefined;
  }
  const { entries } = readIni(contents);
  return restPassed.has(restKey(entries)) ? entries.filter((e) => e.section === "X-Fleet") : undefined;
}

const KEY = /^[A-Za-z0-9_-]+$/;

/**
 * The entries of a tail (the "[X-Fleet]" header line and the lines after it, as
 * fleetEntriesOfKnownRest cuts it) as readIni gives them, for the tails most files have:
 * printable ASCII, no backslash (no continued line, no escape), only blank lines and Key=Value
 * lines (so no comment and no other header). Undefined for any other tail: readIni reads it,
 * with its errors. In printable ASCII a character is a byte and only ' ' is whitespace, so
 * trim() does what readIni's does.
 */
function plainTail(tail: string): IniEntry[] | undefined {
  for (let i = 0; i < tail.length; i++) {
    const c = tail.charCodeAt(i);
    if ((c < 0x20 && c !== 10) || c > 0x7e || c === 0x5c) return undefined;
  }
  const lines = tail.split("\n");
  const entries: IniEntry[] = [];
  for (let i = 1; i < lines.length; i++) {
    const l = lines[i]!.trim();
    if (l === "") continue;
    const eq = l.indexOf("=");
    if (eq < 0) return undefined;
    // A key of letters, digits, '-' and '_': a comment ('#', ';') or a header ('[') never is one.
    const key = l.slice(0, eq).trim();
    if (!KEY.test(key)) return undefined;
    entries.push({ section: "X-Fleet", key, value: l.slice(eq + 1).trim(), line: i + 1 });
  }
  return entries;
}

/** The file's [X-Fleet] options when the rest of it is known to pass; undefined: parse it whole. */
function fleetOfKnownRest(name: string, contents: string): FleetOptions | undefined {
  if (restPassed.size === 0) return undefined;
  try {
    const full = normalizeUnitName(name);
    if (!full.endsWith(".service")) return undefined;
    const entries = fleetEntriesOfKnownRest(contents);
    if (entries === undefined) return undefined;
    const fleet = emptyFleetOptions();
    const lines: FleetLines = {};
    for (const e of entries) fleetOption(fleet, lines, e, ignoreWarning);
    validateFleetOptions(full, fleet, lines);
    return fleet;
  } catch {
    return undefined;
  }
}

const ignoreWarning = (): void => undefined;

// ---- the options as kept ----
// The engine keeps one FleetOptions per distinct file, 100,000 of them for 100,000 fleet-style
// units: as the parse leaves them (arrays grown by push, a dictionary-mode metadata record, a
// hidden class of its own once frozen) they cost ~875 bytes each, and the garbage collector
// copied them all. Kept instead: exact-size frozen lists, one frozen empty list and one empty
// record for every unit without them, and one record for every file with equal metadata (a few
// requirements among many files: region=r1, disk=ssd).

const EMPTY_LIST: readonly string[] = Object.freeze([]);
const EMPTY_METADATA: Readonly<Record<string, string[]>> = Object.freeze(dict<string[]>());
const METADATA_MAX = 20_000;
const sharedMetadata = new Map<string, Record<string, string[]>>();
const metadataOldest = new Oldest(sharedMetadata);

function list(a: readonly string[]): string[] {
  if (a.length === 0) return EMPTY_LIST as string[];
  return Object.freeze(a.slice()) as string[];
}

function metadata(m: Readonly<Record<string, string[]>>): Record<string, string[]> {
  const ks = Object.keys(m);
  if (ks.length === 0) return EMPTY_METADATA as Record<string, string[]>;
  // Control characters never reach a parsed key or value (ini.ts refuses them): they separate
  // the parts of the record's key here.
  let key = "";
  for (const k of ks) key += `\u0001${k}\u0002${m[k]!.join("\u0000")}`;
  const hit = sharedMetadata.get(key);
  if (hit !== undefined) return hit;
  const out = dict<string[]>();
  for (const k of ks) out[k] = list(m[k]!);
  Object.freeze(out);
  metadataOldest.trim(METADATA_MAX - 1);
  sharedMetadata.set(key, out);
  return out;
}

/** The options of one file as kept (frozen, shared parts): equal to what the parse gave. */
function compactFleet(f: FleetOptions): Readonly<FleetOptions> {
  const out: FleetOptions = {
    machineOf: list(f.machineOf),
    machineMetadata: metadata(f.machineMetadata),
    conflicts: list(f.conflicts),
    global: f.global,
    replaces: list(f.replaces),
  };
  if (f.machineId !== undefined) out.machineId = f.machineId;
  if (f.cpu !== undefined) out.cpu = f.cpu;
  if (f.memoryBytes !== undefined) out.memoryBytes = f.memoryBytes;
  return Object.freeze(out);
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
  restPassed.clear();
  restTexts.clear();
  sharedMetadata.clear();
}

export function unitCacheSize(): number {
  return cache.size;
}
