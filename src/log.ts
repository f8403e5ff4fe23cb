// The one root logger. Components take logger.child({ component, machineId }); tasks add
// { unit }. Tests are silent unless LOG_LEVEL is set.
import pino, { type Logger } from "pino";

export type { Logger };

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

/**
 * The level to log at: an explicit one, else $LOG_LEVEL, else silent under tests and info
 * otherwise. An empty or unknown $LOG_LEVEL falls back with a warning on stderr instead of
 * stopping the daemon (pino throws on levels it does not know).
 */
export function resolveLogLevel(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  const fallback = env.VITEST || env.NODE_ENV === "test" ? "silent" : "info";
  const wanted = (explicit ?? env.LOG_LEVEL ?? "").trim().toLowerCase();
  if (wanted === "") return fallback;
  if ((LOG_LEVELS as readonly string[]).includes(wanted)) return wanted;
  process.stderr.write(
    `flotilla: LOG_LEVEL="${wanted}" is not a log level (use one of ${LOG_LEVELS.join(", ")}); logging at ${fallback}\n`,
  );
  return fallback;
}

export function createLogger(opts: { level?: string; name?: string; format?: "text" | "json" } = {}): Logger {
  const options = { name: opts.name ?? "flotilla", level: resolveLogLevel(opts.level), base: { pid: process.pid } };
  if ((opts.format ?? resolveLogFormat()) === "json") return pino(options, pino.destination(2));
  return pino(options, { write: (line: string) => void process.stderr.write(formatLogLine(line)) });
}

/** For unit tests and library callers that pass nothing. */
export const silentLogger: Logger = pino({ level: "silent" });

/**
 * A child logger with the given bindings, minus those the parent already carries (pino repeats a
 * key bound twice in every line, which makes logs harder to read and to grep).
 */
export function childLogger(log: Logger, bindings: Record<string, unknown>): Logger {
  const have = log.bindings();
  const missing = Object.fromEntries(Object.entries(bindings).filter(([k]) => !(k in have)));
  return Object.keys(missing).length ? log.child(missing) : log;
}

const LEVEL_NAMES: Record<number, string> = { 10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL" };
const HIDDEN = new Set(["level", "time", "pid", "hostname", "name", "msg", "component", "machineId"]);

function pretty(v: unknown): string {
  if (typeof v === "string") return /\s/.test(v) ? JSON.stringify(v) : v;
  if (v && typeof v === "object" && "message" in v) return JSON.stringify((v as { message: unknown }).message);
  return JSON.stringify(v);
}

/**
 * One pino JSON line as a person reads it:
 * `03:12:01.123 WARN  daemon 78d7c16c  heartbeat failed (1 in a row): ... failures=1`
 */
export function formatLogLine(line: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line.endsWith("\n") ? line : `${line}\n`;
  }
  const time = typeof o.time === "number" ? new Date(o.time).toISOString().slice(11, 23) : "";
  const level = (LEVEL_NAMES[o.level as number] ?? String(o.level)).padEnd(5);
  const who = [o.component, typeof o.machineId === "string" ? o.machineId.slice(0, 8) : undefined].filter(Boolean).join(" ");
  const extra = Object.entries(o)
    .filter(([k]) => !HIDDEN.has(k))
    .map(([k, v]) => `${k}=${pretty(v)}`)
    .join(" ");
  return `${time} ${level} ${who ? `${who}  ` : ""}${String(o.msg ?? "")}${extra ? `  ${extra}` : ""}\n`;
}

/**
 * text when stderr is a terminal (people), json otherwise (files, journald, log shippers);
 * FLOTILLA_LOG_FORMAT=text|json decides explicitly.
 */
export function resolveLogFormat(env: NodeJS.ProcessEnv = process.env, isTTY = Boolean(process.stderr.isTTY)): "text" | "json" {
  const wanted = (env.FLOTILLA_LOG_FORMAT ?? "").trim().toLowerCase();
  if (wanted === "text" || wanted === "json") return wanted;
  return isTTY ? "text" : "json";
}
