// The one root logger. Components take logger.child({ component, machineId }); tasks add
// { unit }. Tests are silent unless LOG_LEVEL is set.
import pino, { type Logger } from "pino";

export type { Logger };

export function createLogger(opts: { level?: string; name?: string } = {}): Logger {
  const level =
    opts.level ?? process.env.LOG_LEVEL ?? (process.env.VITEST || process.env.NODE_ENV === "test" ? "silent" : "info");
  return pino({ name: opts.name ?? "flotilla", level, base: { pid: process.pid } }, pino.destination(2));
}

/** For unit tests and library callers that pass nothing. */
export const silentLogger: Logger = pino({ level: "silent" });
