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

export function createLogger(opts: { level?: string; name?: string } = {}): Logger {
  return pino(
    { name: opts.name ?? "flotilla", level: resolveLogLevel(opts.level), base: { pid: process.pid } },
    pino.destination(2),
  );
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
