// Durations and sizes as people write them in unit files, fleet.conf and flags:
// systemd time spans ("90", "5s", "1min 30s", "100ms", "2h") and sizes ("256M", "1.5G", "4096").
import { FlotillaError } from "../protocol/errors.js";

const TIME_UNITS: Record<string, number> = {
  us: 0.001, usec: 0.001, µs: 0.001,
  ms: 1, msec: 1,
  s: 1000, sec: 1000, second: 1000, seconds: 1000,
  m: 60_000, min: 60_000, minute: 60_000, minutes: 60_000,
  h: 3_600_000, hr: 3_600_000, hour: 3_600_000, hours: 3_600_000,
  d: 86_400_000, day: 86_400_000, days: 86_400_000,
};

/**
 * Parses a systemd time span to milliseconds. A bare number means `bareUnit` (seconds, as
 * systemd's RestartSec=5). Throws FlotillaError("bad_flag") naming the field and the value.
 */
export function parseDuration(value: string, field = "duration", bareUnit: "s" | "ms" = "s"): number {
  const text = value.trim();
  if (text === "") throw new FlotillaError("bad_flag", `${field}: empty duration`, { field, value });
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * (bareUnit === "s" ? 1000 : 1));
  if (text === "infinity") return Number.POSITIVE_INFINITY;
  let total = 0;
  let rest = text;
  const re = /^\s*(\d+(?:\.\d+)?)\s*([a-zµ]+)\s*/i;
  while (rest.length) {
    const m = re.exec(rest);
    const unit = m ? TIME_UNITS[m[2]!.toLowerCase()] : undefined;
    if (!m || unit === undefined) {
      throw new FlotillaError(
        "bad_flag",
        `${field}: "${value}" is not a duration (examples: 10s, 500ms, 1min 30s, 2h)`,
        { field, value },
      );
    }
    total += Number(m[1]) * unit;
    rest = rest.slice(m[0].length);
  }
  return Math.round(total);
}

const SIZE_UNITS: Record<string, number> = {
  "": 1, b: 1,
  k: 1024, kb: 1024, kib: 1024,
  m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2,
  g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3,
  t: 1024 ** 4, tb: 1024 ** 4, tib: 1024 ** 4,
};

/** Parses a size ("256M", "1.5G", "4096") to bytes, base 1024 as systemd's MemoryLimit. */
export function parseSize(value: string, field = "size"): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value);
  const mult = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || mult === undefined) {
    throw new FlotillaError("bad_flag", `${field}: "${value}" is not a size (examples: 512M, 2G, 1048576)`, {
      field,
      value,
    });
  }
  return Math.round(Number(m[1]) * mult);
}

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return "infinity";
  if (ms < 1000) return `${ms}ms`;
  if (ms < 60_000) return `${+(ms / 1000).toFixed(1)}s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)}min ${Math.round((ms % 60_000) / 1000)}s`;
  return `${Math.floor(ms / 3_600_000)}h ${Math.round((ms % 3_600_000) / 60_000)}min`;
}

export function formatSize(bytes: number): string {
  const units = ["B", "K", "M", "G", "T"];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${+v.toFixed(1)}${units[i]}`;
}
