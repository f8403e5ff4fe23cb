// Interprets a unit file's [Unit], [Service] and [X-Fleet] options into a ParsedUnit. The
// INI layer (ini.ts) gives (section, key, value, line); specifiers are expanded from the unit
// name first; then each known key is read by its own rule. Single-valued keys: the last one
// wins (systemd). List keys accumulate, and an empty assignment ("Key=") clears the list so
// far (systemd). Unknown keys and sections are kept in `sections` and reported as warnings.
import { FlotillaError, isFlotillaError, showValue } from "../protocol/errors.js";
import { emptyFleetOptions, fleetOption, type FleetLines } from "./fleet-options.js";
import { dict, lineError, readIni, type IniEntry } from "./ini.js";
import { count, duration, environment, environmentFile, execLines, restart, setWorkingDirectory } from "./service-options.js";
import { expandSpecifiers, isTemplate, normalizeUnitName, SpecifierError, unitNameInfo, type HostInfo } from "./names.js";
import type { FleetOptions, ParsedUnit, RestartPolicy, ServiceOptions, UnitWarning } from "./types.js";
import { validateFleetOptions } from "./validate.js";

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
  const fleet: FleetOptions = emptyFleetOptions();
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

/** Public entry: normalizes the name, then parses. */
export function parseUnit(name: string, contents: string, opts: ParseOptions = {}): ParsedUnit {
  const full = normalizeUnitName(name);
  if (!full.endsWith(".service")) {
    throw new FlotillaError(
      "invalid_unit_name",
      `invalid unit name ${showValue(name)}: flotilla runs .service units only`,
      { field: "name", value: name },
    );
  }
  if (typeof contents !== "string") {
    throw new FlotillaError("invalid_unit_file", "unit file contents must be text", { field: "contents" });
  }
  return parseNormalized(full, contents, opts);
}
