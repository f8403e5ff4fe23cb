// The parsed form of a unit file: the contract between the parser (unit/), the engine (reads
// FleetOptions) and the agent/executor (reads ServiceOptions). Durations are milliseconds,
// sizes bytes.

export type RestartPolicy = "no" | "on-failure" | "always";

export interface ExecCommand {
  /** The line as written after the key (prefixes such as '-' and '@' already stripped). */
  raw: string;
  /** argv after systemd-style word splitting and quote removal. */
  argv: string[];
  /** '-' prefix: a non-zero exit is not a failure. */
  ignoreFailure: boolean;
  /** '@' prefix: argv[0] given to the process (argv[0] above stays the file to execute). */
  argv0?: string;
  /** ':' prefix: do not expand $VAR / ${VAR} in the arguments. */
  noEnvExpansion?: boolean;
}

export interface ServiceOptions {
  execStart: ExecCommand[]; // usually one
  execStartPre: ExecCommand[];
  execStop: ExecCommand[];
  environment: Record<string, string>;
  environmentFile: { path: string; optional: boolean }[];
  workingDirectory?: string;
  /** '-' prefix on WorkingDirectory=: a missing directory is not an error. */
  workingDirectoryOptional?: boolean;
  restart: RestartPolicy;
  restartSecMs: number; // default 100 ms (systemd)
  timeoutStopSecMs: number; // default 90 s (systemd); flotilla default 10 s; "infinity" or 0 -> 2147483647 (the longest Node timer, ~24.8 days; every duration is capped there)
  startLimitBurst: number; // default 5
  startLimitIntervalMs: number; // default 10 s
}

export interface FleetOptions {
  machineId?: string; // full or 8-char short ID
  machineOf: string[];
  /** key -> allowed values (values OR'ed, keys AND'ed, fleet's semantics). */
  machineMetadata: Record<string, string[]>;
  conflicts: string[]; // globs
  global: boolean;
  replaces: string[];
  cpu?: number; // cores, e.g. 0.5
  memoryBytes?: number;
}

export interface UnitWarning {
  line: number;
  message: string;
}

export interface ParsedUnit {
  name: string;
  description?: string;
  service: ServiceOptions;
  fleet: FleetOptions;
  /** Unknown keys and other things worth telling the user, never fatal. */
  warnings: UnitWarning[];
  /** For a template ("foo@.service") or an instance ("foo@1.service"): "foo@.service". */
  template?: string;
  /** For an instance "foo@1.service": "1". */
  instance?: string;
  /** Every section -> key -> values, as written (after specifier expansion). */
  sections: Record<string, Record<string, string[]>>;
}
