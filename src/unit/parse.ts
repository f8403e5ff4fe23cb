// Interprets a unit file's [Unit], [Service] and [X-Fleet] options into a ParsedUnit. The
// INI layer (ini.ts) gives (section, key, value, line); specifiers are expanded from the unit
// name first; then each known key is read by its own rule. Single-valued keys: the last one
// wins (systemd). List keys accumulate, and an empty assignment ("Key=") clears the list so
// far (systemd). Unknown keys and sections are kept in `sections` and reported as warnings.
import { FlotillaError, isFlotillaError } from "../protocol/errors.js";
import { parseDuration } from "../util/measure.js";
import { fleetOption, type FleetLines } from "./fleet-options.js";
import { dict, lineError, readIni, type IniEntry } from "./ini.js";
import { expandSpecifiers, isTemplate, normalizeUnitName, SpecifierError, unitNameInfo, type HostInfo } from "./names.js";
import type { ExecCommand, FleetOptions, ParsedUnit, RestartPolicy, ServiceOptions, UnitWarning } from "./types.js";
import { validateFleetOptions } from "./validate.js";
import { splitWords, WordError } from "./words.js";

// Defaults. systemd's are kept except TimeoutStopSec: systemd waits 90 s before SIGKILL, and a
// blocking `flotilla stop` waits for the unit to stop, so a unit that ignores SIGTERM would hold
// the user's terminal for a minute and a half. 10 s is what docker stop uses.
export const DEFAULTS = {
  restart: "no" as RestartPolicy,
  restartSecMs: 100,
  timeoutStopSecMs: 10_000,
  startLimitBurst: 5,
  startLimitIntervalMs: 10_000,
};

export interface ParseOptions {
  /** The agent passes its host facts so that %H %l %m %b are expanded too. */
  host?: HostInfo;
}

/** What to say about keys flotilla reads but does not act on (instead of "unknown key"). */
const IGNORED_UNIT_KEYS: Record<string, string> = {
  After: "flotilla has no ordering between units; use [X-Fleet] MachineOf= to keep units together",
  Before: "flotilla has no ordering between units",
  Requires: "flotilla has no unit dependencies; use [X-Fleet] MachineOf= to keep units together",
  Wants: "flotilla has no unit dependencies",
  BindsTo: "flotilla has no unit dependencies; use [X-Fleet] MachineOf= to keep units together",
  PartOf: "flotilla has no unit dependencies",
  Requisite: "flotilla has no unit dependencies",
  Conflicts: "systemd's [Unit] Conflicts= is not fleet's; for placement use [X-Fleet] Conflicts=",
  Documentation: "kept for people, not used",
  DefaultDependencies: "flotilla has no unit dependencies",
};
const IGNORED_SERVICE_KEYS: Record<string, string> = {
  User: "processes run as the agent's user",
  Group: "processes run as the agent's group",
  ExecStartPost: "not supported by flotilla",
  ExecStopPost: "not supported by flotilla",
  ExecReload: "flotilla has no reload verb",
  KillMode: "flotilla stops the whole process group",
  KillSignal: "flotilla sends SIGTERM, then SIGKILL after TimeoutStopSec",
  TimeoutStartSec: "not supported by flotilla",
  RemainAfterExit: "not supported by flotilla",
  SyslogIdentifier: "output goes to the flotilla journal",
  StandardOutput: "output goes to the flotilla journal",
  StandardError: "output goes to the flotilla journal",
  LimitNOFILE: "resource limits are not supported by flotilla",
  Nice: "not supported by flotilla",
};

/** The parse proper; `name` must already be normalized. */
export function parseNormalized(name: string, contents: string, opts: ParseOptions = {}): ParsedUnit {
  const ini = readIni(contents);
  const warnings: UnitWarning[] = [];
  const warn = (line: number, message: string): void => {
    warnings.push({ line, message });
  };

  // Specifiers first, on every value, so that the sections map shows what takes effect.
  const entries: IniEntry[] = ini.entries.map((e) => {
    try {
      return { ...e, value: expandSpecifiers(e.value, name, opts.host) };
    } catch (err) {
      if (err instanceof SpecifierError) throw lineError(e.line, `${e.key}=: ${err.message}`, e.key, e.value);
      throw err;
    }
  });

  const sections = dict<Record<string, string[]>>();
  for (const s of ini.sections.keys()) sections[s] = dict<string[]>();
  for (const e of entries) (sections[e.section]![e.key] ??= []).push(e.value);

  const service: ServiceOptions = {
    execStart: [],
    execStartPre: [],
    execStop: [],
    environment: dict<string>(),
    environmentFile: [],
    restart: DEFAULTS.restart,
    restartSecMs: DEFAULTS.restartSecMs,
    timeoutStopSecMs: DEFAULTS.timeoutStopSecMs,
    startLimitBurst: DEFAULTS.startLimitBurst,
    startLimitIntervalMs: DEFAULTS.startLimitIntervalMs,
  };
  const fleet: FleetOptions = { machineOf: [], machineMetadata: dict<string[]>(), conflicts: [], global: false, replaces: [] };
  const lines: FleetLines = {};
  let description: string | undefined;
  let sawTimeoutStop = false;
  let execStartLine = 0;

  for (const [section, line] of ini.sections) {
    if (section === "Install") warn(line, "[Install] is ignored: flotilla decides where and when units run");
    else if (section !== "Unit" && section !== "Service" && section !== "X-Fleet") {
      warn(line, `unknown section [${section}] is ignored`);
    }
  }

  const apply = (e: IniEntry): void => {
    const { section, key, value, line } = e;
    if (section === "Unit") {
      if (key === "Description") description = value === "" ? undefined : value;
      else if (key === "StartLimitIntervalSec" || key === "StartLimitInterval") {
        service.startLimitIntervalMs = duration(e, { allowZero: true });
      } else if (key === "StartLimitBurst") service.startLimitBurst = count(e);
      else if (Object.hasOwn(IGNORED_UNIT_KEYS, key)) warn(line, `[Unit] ${key}= is ignored: ${IGNORED_UNIT_KEYS[key]}`);
      else warn(line, `unknown key ${key}= in [Unit] is ignored`);
    } else if (section === "Service") {
      switch (key) {
        case "ExecStart":
          if (value === "") {
            service.execStart = [];
          } else {
            service.execStart.push(...execLines(e));
            execStartLine = line;
          }
          break;
        case "ExecStartPre":
          if (value === "") service.execStartPre = [];
          else service.execStartPre.push(...execLines(e));
          break;
        case "ExecStop":
          if (value === "") service.execStop = [];
          else service.execStop.push(...execLines(e));
          break;
        case "Environment":
          if (value === "") service.environment = dict<string>();
          else Object.assign(service.environment, environment(e));
          break;
        case "EnvironmentFile":
          if (value === "") service.environmentFile = [];
          else service.environmentFile.push(environmentFile(e));
          break;
        case "WorkingDirectory":
          setWorkingDirectory(service, e);
          break;
        case "Restart":
          service.restart = restart(e, warn);
          break;
        case "RestartSec":
          service.restartSecMs = duration(e, { allowZero: true });
          break;
        case "TimeoutStopSec":
          service.timeoutStopSecMs = duration(e, { allowZero: true, zeroIsInfinity: true, allowInfinity: true });
          sawTimeoutStop = true;
          break;
        case "TimeoutSec":
          // systemd: sets both start and stop timeouts; TimeoutStopSec= wins wherever it is.
          if (!sawTimeoutStop) {
            service.timeoutStopSecMs = duration(e, { allowZero: true, zeroIsInfinity: true, allowInfinity: true });
          }
          break;
        case "StartLimitBurst":
          service.startLimitBurst = count(e);
          break;
        case "StartLimitInterval":
        case "StartLimitIntervalSec":
          service.startLimitIntervalMs = duration(e, { allowZero: true });
          break;
        case "Type":
          if (value !== "" && value !== "simple" && value !== "exec") {
            warn(line, `Type=${value} is treated as Type=simple: flotilla supervises the ExecStart= process itself`);
          }
          break;
        default:
          if (Object.hasOwn(IGNORED_SERVICE_KEYS, key)) warn(line, `[Service] ${key}= is ignored: ${IGNORED_SERVICE_KEYS[key]}`);
          else warn(line, `unknown key ${key}= in [Service] is ignored`);
      }
    } else if (section === "X-Fleet") {
      fleetOption(fleet, lines, e, warn);
    }
  };

  // A template is submitted with an empty %i, so "MachineMetadata=host=%i" or "RestartSec=%i"
  // cannot be valid there; each instance is parsed (and checked) with its own %i. In a
  // template, a value that a specifier made invalid is reported as a warning and skipped.
  const template = isTemplate(name);
  entries.forEach((e, i) => {
    try {
      apply(e);
    } catch (err) {
      const raw = ini.entries[i]!.value;
      if (!template || raw === e.value || !isFlotillaError(err) || err.code !== "invalid_unit_file") throw err;
      warn(e.line, `${err.message.replace(/^line \d+: /, "")} (ignored in the template, where %i is empty; checked again in each instance)`);
    }
  });

  const info = unitNameInfo(name);
  if (service.execStart.length > 1) {
    throw lineError(
      execStartLine,
      `more than one ExecStart= command (${service.execStart.length}); a service runs exactly one (use ExecStartPre= for the others)`,
      "ExecStart",
    );
  }
  if (service.execStart.length === 0) {
    throw new FlotillaError(
      "invalid_unit_file",
      `[Service] ExecStart= is missing: ${name} has no command to run`,
      { field: "ExecStart", line: ini.sections.get("Service") ?? 1 },
    );
  }
  validateFleetOptions(name, fleet, lines);

  const parsed: ParsedUnit = { name, service, fleet, warnings, sections };
  if (description !== undefined) parsed.description = description;
  if (info.template !== undefined) {
    parsed.template = info.template;
    if (info.instance !== "") parsed.instance = info.instance;
  }
  return parsed;
}

// ---- [Service] values ----

function execLines(e: IniEntry): ExecCommand[] {
  let words;
  try {
    words = splitWords(e.value);
  } catch (err) {
    if (err instanceof WordError) throw lineError(e.line, `${e.key}=: ${err.message}`, e.key, e.value);
    throw err;
  }
  // A lone ";" separates commands (systemd); "\;" is a literal semicolon.
  const groups: { text: string; raw: string }[][] = [[]];
  for (const w of words) {
    if (w.raw === ";") groups.push([]);
    else groups[groups.length - 1]!.push(w);
  }
  const out: ExecCommand[] = [];
  for (const g of groups) {
    if (g.length === 0) {
      if (groups.length > 1) throw lineError(e.line, `${e.key}=: empty command around ";"`, e.key, e.value);
      continue;
    }
    out.push(execCommand(e, g));
  }
  return out;
}

function execCommand(e: IniEntry, words: { text: string; raw: string }[]): ExecCommand {
  const first = words[0]!;
  // Prefixes sit before the path, unquoted: '-' ignore failure, '@' argv[0] from the next word;
  // systemd's privilege prefixes ('+', '!', '!!') and ':' (no $VAR expansion) are accepted.
  const m = /^[-@+!:]*/.exec(first.raw)!;
  const prefix = m[0];
  if (prefix.length > 1) for (const ch of new Set(prefix)) {
    if (prefix.split(ch).length > (ch === "!" ? 3 : 2)) {
      throw lineError(e.line, `${e.key}=: prefix "${ch}" given twice in "${prefix}"`, e.key, e.value);
    }
  }
  const path = first.text.slice(prefix.length);
  const rest = words.slice(1).map((w) => w.text);
  if (path === "") {
    throw lineError(e.line, `${e.key}=: no executable after the prefix "${prefix}"`, e.key, e.value);
  }
  const cmd: ExecCommand = {
    // One command's own words (a line may hold several, split on ";"), as written.
    raw: words.map((w) => w.raw).join(" ").slice(prefix.length),
    argv: [path, ...rest],
    ignoreFailure: prefix.includes("-"),
  };
  if (prefix.includes("@")) {
    if (rest.length === 0) {
      throw lineError(e.line, `${e.key}=: the "@" prefix needs argv[0] after the executable`, e.key, e.value);
    }
    cmd.argv = [path, ...rest.slice(1)];
    cmd.argv0 = rest[0]!;
  }
  if (prefix.includes(":")) cmd.noEnvExpansion = true;
  return cmd;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function environment(e: IniEntry): Record<string, string> {
  let words;
  try {
    words = splitWords(e.value);
  } catch (err) {
    if (err instanceof WordError) throw lineError(e.line, `Environment=: ${err.message}`, "Environment", e.value);
    throw err;
  }
  const out = dict<string>();
  for (const w of words) {
    const eq = w.text.indexOf("=");
    const k = eq < 0 ? w.text : w.text.slice(0, eq);
    if (eq < 0 || !ENV_NAME.test(k)) {
      throw lineError(
        e.line,
        `Environment=: ${JSON.stringify(w.text)} is not an assignment NAME=value (quote a value with spaces: "NAME=a b")`,
        "Environment",
        e.value,
      );
    }
    out[k] = w.text.slice(eq + 1);
  }
  return out;
}

function environmentFile(e: IniEntry): { path: string; optional: boolean } {
  const optional = e.value.startsWith("-");
  const path = optional ? e.value.slice(1).trim() : e.value;
  if (!path.startsWith("/")) {
    throw lineError(e.line, `EnvironmentFile=: ${JSON.stringify(path)} is not an absolute path`, "EnvironmentFile", e.value);
  }
  return { path, optional };
}

function setWorkingDirectory(service: ServiceOptions, e: IniEntry): void {
  if (e.value === "") {
    delete service.workingDirectory;
    delete service.workingDirectoryOptional;
    return;
  }
  const optional = e.value.startsWith("-");
  const dir = optional ? e.value.slice(1) : e.value;
  if (!dir.startsWith("/") && dir !== "~") {
    throw lineError(e.line, `WorkingDirectory=: ${JSON.stringify(dir)} is not an absolute path (or "~")`, "WorkingDirectory", e.value);
  }
  service.workingDirectory = dir;
  if (optional) service.workingDirectoryOptional = true;
  else delete service.workingDirectoryOptional;
}

// Restart policies systemd has that flotilla maps: each restarts on a subset of failures, so
// on-failure (restart on any failure) is the closest superset. on-success means the opposite
// and is refused rather than silently changed.
const RESTART_MAPPED = new Set(["on-abnormal", "on-abort", "on-watchdog"]);

function restart(e: IniEntry, warn: (line: number, m: string) => void): RestartPolicy {
  const v = e.value;
  if (v === "" || v === "no") return "no";
  if (v === "on-failure" || v === "always") return v;
  if (RESTART_MAPPED.has(v)) {
    warn(e.line, `Restart=${v} is treated as Restart=on-failure (flotilla restarts on any failure)`);
    return "on-failure";
  }
  throw lineError(e.line, `Restart=${JSON.stringify(v)} is not supported: use no, on-failure or always`, "Restart", v);
}

/**
 * The longest delay a Node timer holds (2^31-1 ms, about 24.8 days); a longer one fires at once.
 * Durations are capped here so that "infinity" reaches the executor as a usable number.
 */
export const MAX_DURATION_MS = 2_147_483_647;

function duration(e: IniEntry, o: { allowZero?: boolean; zeroIsInfinity?: boolean; allowInfinity?: boolean } = {}): number {
  let ms: number;
  try {
    ms = parseDuration(e.value, e.key, "s");
    // parseDuration looks units up in a plain object: "5constructor" comes back as NaN.
    if (Number.isNaN(ms)) throw new FlotillaError("bad_flag", "not a duration");
  } catch (err) {
    if (isFlotillaError(err)) {
      throw lineError(e.line, `${e.key}=: ${JSON.stringify(e.value)} is not a time span (examples: 10s, 500ms, 1min 30s, 2h)`, e.key, e.value);
    }
    throw err;
  }
  if (ms === Number.POSITIVE_INFINITY && !o.allowInfinity) {
    throw lineError(e.line, `${e.key}=infinity is not allowed here`, e.key, e.value);
  }
  if (ms === 0) {
    if (!o.allowZero) throw lineError(e.line, `${e.key}= must be more than 0`, e.key, e.value);
    if (o.zeroIsInfinity) return MAX_DURATION_MS; // systemd: 0 disables the timeout
  }
  return Math.min(ms, MAX_DURATION_MS);
}

function count(e: IniEntry): number {
  if (!/^\d+$/.test(e.value) || Number(e.value) > 1_000_000) {
    throw lineError(e.line, `${e.key}=: ${JSON.stringify(e.value)} is not a whole number`, e.key, e.value);
  }
  return Number(e.value);
}

/** Public entry: normalizes the name, then parses. */
export function parseUnit(name: string, contents: string, opts: ParseOptions = {}): ParsedUnit {
  const full = normalizeUnitName(name);
  if (!full.endsWith(".service")) {
    throw new FlotillaError(
      "invalid_unit_name",
      `invalid unit name ${JSON.stringify(name)}: flotilla runs .service units only`,
      { field: "name", value: name },
    );
  }
  if (typeof contents !== "string") {
    throw new FlotillaError("invalid_unit_file", "unit file contents must be text", { field: "contents" });
  }
  return parseNormalized(full, contents, opts);
}
