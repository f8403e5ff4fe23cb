#!/usr/bin/env node
// Makes sure a nats-server binary is available before tests, benchmarks or `flotilla up`.
// Order: $NATS_SERVER_BIN, then PATH (plus /usr/sbin, where Debian puts it), then an
// apt-get install of Debian's `nats-server` package when we are root or have passwordless sudo.
import { execFileSync, spawnSync } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

function findOnPath(name) {
  const dirs = (process.env.PATH ?? "").split(delimiter).concat(["/usr/sbin", "/usr/local/sbin", "/sbin"]);
  for (const dir of dirs) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* keep looking */
    }
  }
  return undefined;
}

function version(bin) {
  try {
    return execFileSync(bin, ["--version"], { encoding: "utf8" }).trim();
  } catch {
    return undefined;
  }
}

const howTo =
  "flotilla needs the nats-server binary (2.9 or newer, with JetStream).\n" +
  "  Debian/Ubuntu:  sudo apt-get install nats-server\n" +
  "  macOS:          brew install nats-server\n" +
  "  Or point to a binary you have:  NATS_SERVER_BIN=/path/to/nats-server";

const fromEnv = process.env.NATS_SERVER_BIN;
if (fromEnv) {
  const v = version(fromEnv);
  if (!v) {
    console.error(`NATS_SERVER_BIN=${fromEnv} does not run (tried \`${fromEnv} --version\`).\n${howTo}`);
    process.exit(1);
  }
  console.error(`using ${v} from NATS_SERVER_BIN=${fromEnv}`);
  process.exit(0);
}

let bin = findOnPath("nats-server");
if (bin && version(bin)) process.exit(0);

const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
const hasApt = Boolean(findOnPath("apt-get"));
const canSudo = !isRoot && findOnPath("sudo") && spawnSync("sudo", ["-n", "true"]).status === 0;
if (hasApt && (isRoot || canSudo)) {
  console.error("nats-server not found: installing Debian's nats-server package with apt-get ...");
  const pre = isRoot ? [] : ["sudo", "-n"];
  const run = (args) => {
    const [cmd, ...rest] = [...pre, ...args];
    return spawnSync(cmd, rest, {
      stdio: ["ignore", "ignore", "inherit"],
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    }).status;
  };
  run(["apt-get", "update", "-qq"]);
  const status = run(["apt-get", "install", "-y", "-qq", "nats-server"]);
  bin = findOnPath("nats-server");
  if (status === 0 && bin && version(bin)) {
    console.error(`installed ${version(bin)} at ${bin}`);
    process.exit(0);
  }
  console.error(`apt-get install nats-server failed (exit ${status}).\n${howTo}`);
  process.exit(1);
}
console.error(`nats-server was not found and cannot be installed automatically here (needs root or passwordless sudo with apt-get).\n${howTo}`);
process.exit(1);
