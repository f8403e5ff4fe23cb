// [Service] (and [Unit] rate-limit) values, read one assignment at a time: exec lines with
// their prefixes, Environment= words, paths, Restart= and the time spans. Each reader throws
// invalid_unit_file naming the line and the key.
import { FlotillaError, isFlotillaError, showValue } from "../protocol/errors.js";
import { parseDuration } from "../util/measure.js";
import { dict, lineError, type IniEntry } from "./ini.js";
import type { ExecCommand, RestartPolicy, ServiceOptions } from "./types.js";
import { splitWords, WordError } from "./words.js";

export function execLines(e: IniEntry): ExecCommand[] {
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

export function environment(e: IniEntry): Record<string, string> {
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
        `Environment=: ${showValue(w.text)} is not an assignment NAME=value (quote a value with spaces: "NAME=a b")`,
        "Environment",
        e.value,
      );
    }
    out[k] = w.text.slice(eq + 1);
  }
  return out;
}

export function environmentFile(e: IniEntry): { path: string; optional: boolean } {
  const optional = e.value.startsWith("-");
  const path = optional ? e.value.slice(1).trim() : e.value;
  if (!path.startsWith("/")) {
    throw lineError(e.line, `EnvironmentFile=: ${showValue(path)} is not an absolute path`, "EnvironmentFile", e.value);
  }
  return { path, optional };
}

export function setWorkingDirectory(service: ServiceOptions, e: IniEntry): void {
  if (e.value === "") {
    delete service.workingDirectory;
    delete service.workingDirectoryOptional;
    return;
  }
  const optional = e.value.startsWith("-");
  const dir = optional ? e.value.slice(1) : e.value;
  if (!dir.startsWith("/") && dir !== "~") {
    throw lineError(e.line, `WorkingDirectory=: ${showValue(dir)} is not an absolute path (or "~")`, "WorkingDirectory", e.value);
  }
  service.workingDirectory = dir;
  if (optional) service.workingDirectoryOptional = true;
  else delete service.workingDirectoryOptional;
}

// Restart policies systemd has that flotilla maps: each restarts on a subset of failures, so
// on-failure (restart on any failure) is the closest superset. on-success means the opposite
// and is refused rather than silently changed.
const RESTART_MAPPED = new Set(["on-abnormal", "on-abort", "on-watchdog"]);

export function restart(e: IniEntry, warn: (line: number, m: string) => void): RestartPolicy {
  const v = e.value;
  if (v === "" || v === "no") return "no";
  if (v === "on-failure" || v === "always") return v;
  if (RESTART_MAPPED.has(v)) {
    warn(e.line, `Restart=${v} is treated as Restart=on-failure (flotilla restarts on any failure)`);
    return "on-failure";
  }
  throw lineError(e.line, `Restart=${showValue(v)} is not supported: use no, on-failure or always`, "Restart", v);
}

/**
 * The longest delay a Node timer holds (2^31-1 ms, about 24.8 days); a longer one fires at once.
 * Durations are capped here so that "infinity" reaches the executor as a usable number.
 */
export const MAX_DURATION_MS = 2_147_483_647;

export function duration(e: IniEntry, o: { allowZero?: boolean; zeroIsInfinity?: boolean; allowInfinity?: boolean } = {}): number {
  let ms: number;
  try {
    ms = parseDuration(e.value, e.key, "s");
    // parseDuration looks units up in a plain object: "5constructor" comes back as NaN.
    if (Number.isNaN(ms)) throw new FlotillaError("bad_flag", "not a duration");
  } catch (err) {
    if (isFlotillaError(err)) {
      throw lineError(e.line, `${e.key}=: ${showValue(e.value)} is not a time span (examples: 10s, 500ms, 1min 30s, 2h)`, e.key, e.value);
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

export function count(e: IniEntry): number {
  if (!/^\d+$/.test(e.value) || Number(e.value) > 1_000_000) {
    throw lineError(e.line, `${e.key}=: ${showValue(e.value)} is not a whole number`, e.key, e.value);
  }
  return Number(e.value);
}

