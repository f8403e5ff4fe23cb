// The daemon's configuration, fleet.conf style: an INI file (`key=value`, `#`/`;` comments, an
// optional [daemon] section), FLOTILLA_* environment variables and flags. Precedence:
// flags > environment > file > defaults. Unknown file keys are warned about, never fatal; a file
// that cannot be read and a value that does not parse are clear errors naming the key.
import { parseEnvText } from "../util/env-file.js";
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { FlotillaError, describeError } from "../protocol/errors.js";
import { DEFAULT_PREFIX, assertMachineId, validatePrefix } from "../protocol/names.js";
import { DEFAULT_NATS_URL } from "../nats/connection.js";
import { parseDuration, parseSize } from "../util/measure.js";
import { defaultStateDir } from "../machine/machine-id.js";
import type { DaemonConfig } from "./context.js";

/** Every config key, its environment variable(s) and its flag (for messages). */
export const CONFIG_KEYS = {
  nats_url: { env: ["FLOTILLA_NATS_URL", "NATS_URL"], flag: "--nats" },
  prefix: { env: ["FLOTILLA_PREFIX"], flag: "--prefix" },
  machine_id: { env: ["FLOTILLA_MACHINE_ID"], flag: "--machine-id" },
  public_ip: { env: ["FLOTILLA_PUBLIC_IP"], flag: "--public-ip" },
  metadata: { env: ["FLOTILLA_METADATA"], flag: "--metadata" },
  capacity: { env: ["FLOTILLA_CAPACITY"], flag: "--capacity" },
  state_dir: { env: ["FLOTILLA_STATE_DIR"], flag: "--state-dir" },
  agent_ttl: { env: ["FLOTILLA_AGENT_TTL"], flag: "--agent-ttl" },
  lease_ttl: { env: ["FLOTILLA_LEASE_TTL"], flag: "--lease-ttl" },
  disable_engine: { env: ["FLOTILLA_DISABLE_ENGINE"], flag: "--no-engine" },
  reconcile_interval: { env: ["FLOTILLA_RECONCILE_INTERVAL"], flag: "--reconcile-interval" },
  replicas: { env: ["FLOTILLA_REPLICAS"], flag: "--replicas" },
  stop_tasks_on_exit: { env: ["FLOTILLA_STOP_TASKS_ON_EXIT"], flag: "--stop-tasks-on-exit" },
  task_log_max_size: { env: ["FLOTILLA_TASK_LOG_MAX_SIZE"], flag: "--task-log-max-size" },
  creds: { env: ["FLOTILLA_CREDS", "NATS_CREDS"], flag: "--creds" },
  user: { env: ["FLOTILLA_USER", "NATS_USER"], flag: "--user" },
  password: { env: ["FLOTILLA_PASSWORD", "NATS_PASSWORD"], flag: "--password" },
  token: { env: ["FLOTILLA_TOKEN", "NATS_TOKEN"], flag: "--token" },
  auth_env: { env: ["FLOTILLA_AUTH_ENV"], flag: "--auth-env" },
  tls_ca: { env: ["FLOTILLA_TLS_CA", "NATS_CA"], flag: "--tls-ca" },
  tls_cert: { env: ["FLOTILLA_TLS_CERT", "NATS_CERT"], flag: "--tls-cert" },
  tls_key: { env: ["FLOTILLA_TLS_KEY", "NATS_KEY"], flag: "--tls-key" },
  disable_api: { env: ["FLOTILLA_DISABLE_API"], flag: "--no-api" },
  inspect_max_age: { env: ["FLOTILLA_INSPECT_MAX_AGE"], flag: "--inspect-max-age" },
  inspect_max_size: { env: ["FLOTILLA_INSPECT_MAX_SIZE"], flag: "--inspect-max-size" },
} as const;

export type ConfigKey = keyof typeof CONFIG_KEYS;
export type RawConfig = Partial<Record<ConfigKey, string>>;

function isKey(k: string): k is ConfigKey {
  return Object.prototype.hasOwnProperty.call(CONFIG_KEYS, k);
}

/** Parses fleet.conf-style text. Returns known values and warnings for the rest. */
export function parseIni(text: string, source: string): { values: RawConfig; warnings: string[] } {
  const values: RawConfig = {};
  const warnings: string[] = [];
  let section = "";
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    const where = `${source}:${i + 1}`;
    if (line === "" || line.startsWith("#") || line.startsWith(";")) return;
    const sec = /^\[([^\]]*)\]$/.exec(line);
    if (sec) {
      section = sec[1]!.trim().toLowerCase();
      if (section !== "daemon") warnings.push(`${where}: unknown section [${sec[1]}] ignored (use [daemon] or none)`);
      return;
    }
    const eq = line.indexOf("=");
    if (eq <= 0) {
      throw new FlotillaError("bad_config", `${where}: expected key=value, got "${line}"`, { field: "config", value: line, line: i + 1 });
    }
    if (section !== "" && section !== "daemon") return;
    const key = line.slice(0, eq).trim().toLowerCase().replace(/-/g, "_");
    let value = line.slice(eq + 1).trim();
    if (/^".*"$/.test(value) || /^'.*'$/.test(value)) value = value.slice(1, -1);
    if (!isKey(key)) {
      warnings.push(`${where}: unknown config key "${line.slice(0, eq).trim()}" ignored (known: ${Object.keys(CONFIG_KEYS).join(", ")})`);
      return;
    }
    values[key] = value;
  });
  return { values, warnings };
}

export function readConfigFile(path: string): { values: RawConfig; warnings: string[] } {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new FlotillaError("bad_config", `cannot read config file ${path}: ${describeError(e)}`, { field: "config", value: path });
  }
  return parseIni(text, path);
}

export function fromEnv(env: NodeJS.ProcessEnv): RawConfig {
  const out: RawConfig = {};
  for (const key of Object.keys(CONFIG_KEYS) as ConfigKey[]) {
    for (const name of CONFIG_KEYS[key].env) {
      const v = env[name];
      if (v !== undefined && v !== "") {
        out[key] = v;
        break;
      }
    }
  }
  return out;
}

/** "region=us-west,az=1" -> {region:"us-west", az:"1"}; a bad pair is an error naming it. */
export function parseMetadata(text: string, field = "metadata"): Record<string, string> {
  const out: Record<string, string> = {};
  if (text.trim() === "") return out;
  for (const pair of text.split(",")) {
    const eq = pair.indexOf("=");
    const k = eq > 0 ? pair.slice(0, eq).trim() : "";
    const v = eq > 0 ? pair.slice(eq + 1).trim() : "";
    if (!k || !/^[A-Za-z0-9_.\/-]+$/.test(k) || eq < 0) {
      throw new FlotillaError(
        "bad_flag",
        `${field}: "${pair}" in "${text}" is not a key=value pair (example: region=us-west,az=1)`,
        { field, value: pair },
      );
    }
    out[k] = v;
  }
  return out;
}

/** "cpu=2,memory=4G" */
export function parseCapacity(text: string, field = "capacity"): { cpu?: number; memory?: number } {
  const kv = parseMetadata(text, field);
  const out: { cpu?: number; memory?: number } = {};
  for (const [k, v] of Object.entries(kv)) {
    if (k === "cpu") {
      const n = Number(v);
      if (!Number.isFinite(n) || n <= 0 || v === "") {
        throw new FlotillaError("bad_flag", `${field}: cpu="${v}" is not a positive number of cores`, { field, value: v });
      }
      out.cpu = n;
    } else if (k === "memory" || k === "mem") {
      out.memory = parseSize(v, `${field}.memory`);
    } else {
      throw new FlotillaError("bad_flag", `${field}: unknown resource "${k}" (use cpu=N,memory=SIZE)`, { field, value: k });
    }
  }
  return out;
}

function parseBool(v: string, field: string): boolean {
  const t = v.trim().toLowerCase();
  if (["1", "true", "yes", "on"].includes(t)) return true;
  if (["0", "false", "no", "off", ""].includes(t)) return false;
  throw new FlotillaError("bad_config", `${field}: "${v}" is not a boolean (true/false)`, { field, value: v });
}

function parsePositiveInt(v: string, field: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new FlotillaError("bad_config", `${field}: "${v}" is not a positive integer`, { field, value: v });
  return n;
}

function ip(v: string, field: string): string {
  if (isIP(v) === 0) throw new FlotillaError("bad_flag", `${field}: "${v}" is not an IPv4 or IPv6 address`, { field, value: v });
  return v;
}

function logSize(v: string, field: string): number {
  const n = parseSize(v, field);
  if (n < 64 * 1024) throw new FlotillaError("bad_config", `${field}: "${v}" is too small (at least 64K, e.g. 64M)`, { field, value: v });
  return n;
}

function ttl(v: string, field: string): number {
  const ms = parseDuration(v, field);
  if (!Number.isFinite(ms) || ms < 100) {
    throw new FlotillaError("bad_flag", `${field}: "${v}" is too short or not finite (at least 100ms, e.g. 10s)`, { field, value: v });
  }
  return ms;
}

/** Client TLS files; a certificate without its key (or the reverse) is an error naming both. */
function tlsOf(m: RawConfig): DaemonConfig["tls"] {
  if (!m.tls_ca && !m.tls_cert && !m.tls_key) return undefined;
  if (Boolean(m.tls_cert) !== Boolean(m.tls_key)) {
    const missing = m.tls_cert ? "tls_key" : "tls_cert";
    throw new FlotillaError(
      "bad_config",
      `${missing} is missing: a client certificate (--tls-cert) and its key (--tls-key) go together`,
      { field: missing, value: m.tls_cert ?? m.tls_key },
    );
  }
  return { ca: m.tls_ca || undefined, cert: m.tls_cert || undefined, key: m.tls_key || undefined };
}

/**
 * What an auth_env file (one of flotilla auth's .env files: NATS_USER=, NATS_PASSWORD=,
 * FLOTILLA_MACHINE_ID=) gives: user and password, and the machine ID, each only where the
 * config does not name one itself. A missing file is an error naming it (field auth_env; the
 * daemon waits for it a while first, as in a compose file whose auth service has not run yet).
 */
function authEnvOf(m: RawConfig): RawConfig {
  if (!m.auth_env) return {};
  let text: string;
  try {
    text = readFileSync(m.auth_env, "utf8");
  } catch (e) {
    throw new FlotillaError(
      "bad_config",
      `auth_env: cannot read ${m.auth_env} (${describeError(e)}): it is one of the .env files of flotilla auth init (NATS_USER= and NATS_PASSWORD= lines)`,
      { field: "auth_env", value: m.auth_env },
    );
  }
  const vals = parseEnvText(text);
  if (!vals.NATS_USER || !vals.NATS_PASSWORD) {
    throw new FlotillaError("bad_config", `auth_env: ${m.auth_env} has no NATS_USER= and NATS_PASSWORD= lines (a .env file of flotilla auth init has both)`, {
      field: "auth_env",
      value: m.auth_env,
    });
  }
  const out: RawConfig = {};
  if (!m.user && !m.password) {
    out.user = vals.NATS_USER;
    out.password = vals.NATS_PASSWORD;
  }
  if (!m.machine_id && vals.FLOTILLA_MACHINE_ID) out.machine_id = vals.FLOTILLA_MACHINE_ID;
  return out;
}

export interface LoadedConfig {
  config: DaemonConfig;
  warnings: string[];
  sources: Partial<Record<ConfigKey, "flag" | "env" | "file">>;
}

/**
 * Merges flags > env > file > defaults and validates every value. `flags` holds only what the
 * user gave on the command line, as strings keyed like the config file.
 */
export function loadConfig(o: { flags: RawConfig; env?: NodeJS.ProcessEnv; file?: string }): LoadedConfig {
  const env = o.env ?? process.env;
  const file = o.file ? readConfigFile(o.file) : { values: {}, warnings: [] };
  const envValues = fromEnv(env);
  const merged: RawConfig = {};
  const sources: LoadedConfig["sources"] = {};
  for (const [src, vals] of [["file", file.values], ["env", envValues], ["flag", o.flags]] as const) {
    for (const [k, v] of Object.entries(vals) as [ConfigKey, string | undefined][]) {
      if (v === undefined) continue;
      merged[k] = v;
      sources[k] = src;
    }
  }
  const m = { ...merged, ...authEnvOf(merged) };
  const config: DaemonConfig = {
    natsUrl: m.nats_url || DEFAULT_NATS_URL,
    prefix: validatePrefix(m.prefix || DEFAULT_PREFIX),
    machineId: m.machine_id ? assertMachineId(m.machine_id, "machine_id") : undefined,
    publicIp: m.public_ip ? ip(m.public_ip, "public_ip") : undefined,
    metadata: parseMetadata(m.metadata ?? "", "metadata"),
    capacity: m.capacity ? parseCapacity(m.capacity, "capacity") : undefined,
    stateDir: m.state_dir || defaultStateDir(env),
    agentTtlMs: ttl(m.agent_ttl ?? "10s", "agent_ttl"),
    leaseTtlMs: ttl(m.lease_ttl ?? "5s", "lease_ttl"),
    engineEnabled: !parseBool(m.disable_engine ?? "false", "disable_engine"),
    reconcileIntervalMs: ttl(m.reconcile_interval ?? "2s", "reconcile_interval"),
    replicas: parsePositiveInt(m.replicas ?? "1", "replicas"),
    stopTasksOnExit: parseBool(m.stop_tasks_on_exit ?? "false", "stop_tasks_on_exit"),
    taskLogMaxBytes: logSize(m.task_log_max_size ?? "64M", "task_log_max_size"),
    creds: m.creds || undefined,
    user: m.user || undefined,
    password: m.password || undefined,
    token: m.token || undefined,
    tls: tlsOf(m),
    apiEnabled: !parseBool(m.disable_api ?? "false", "disable_api"),
    inspectMaxAgeMs: ttl(m.inspect_max_age ?? "1h", "inspect_max_age"),
    inspectMaxBytes: logSize(m.inspect_max_size ?? "64M", "inspect_max_size"),
  };
  return { config, warnings: file.warnings, sources };
}
