// `flotilla auth init` and `flotilla auth add-machine`: the users of a cluster, their roles and
// credentials (src/auth/users.ts writes the files; docs/auth.md says what each role may do).
import { resolve, join } from "node:path";
import type { Command } from "commander";
import type { CommandRegistrar } from "./main.js";
import { FlotillaError } from "../protocol/errors.js";
// The users' files (bcrypt) and machine IDs are imported when a command runs, not at the CLI's start.
import type { Credentials } from "../auth/users.js";

export const DEFAULT_AUTH_DIR = "./.flotilla/auth";

function role(v: string): "machine" | "engine" {
  if (v !== "machine" && v !== "engine") {
    throw new FlotillaError("bad_flag", `--role: "${v}" is not a daemon role (engine: may lead and serve the API; machine: agent only)`, {
      field: "role",
      value: v,
    });
  }
  return v;
}

function collect(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

async function report(dir: string, creds: Credentials[]): Promise<void> {
  const { AUTH_CONF } = await import("../auth/users.js");
  const lines = [
    `wrote ${join(dir, "users.json")} and ${join(dir, AUTH_CONF)}`,
    `  add to the nats-server config: include "<path of ${AUTH_CONF} relative to that config file>" (nats-server resolves includes relative to the including file)`,
  ];
  for (const c of creds) {
    const how =
      c.role === "operator"
        ? "the CLI / nats req"
        : c.role === "viewer"
          ? "read-only"
          : c.role === "machine"
            ? `daemon ${c.machineId}: run with --machine-id ${c.machineId} --no-engine --no-api`
            : `daemon ${c.machineId}: run with --machine-id ${c.machineId}`;
    lines.push(`  ${c.envFile}  ${c.role} (${how})`);
  }
  lines.push("Each .env file holds NATS_USER= and NATS_PASSWORD= lines (mode 0600): set -a; . FILE; set +a");
  process.stdout.write(lines.join("\n") + "\n");
}

export const registerAuth: CommandRegistrar = (program, globals) => {
  const auth = program.command("auth").description("users, roles and credentials of the cluster's NATS server (docs/auth.md)");
  auth
    .command("init")
    .description("create the operator, viewer and machine users: a nats-server include with bcrypt hashes and one .env file per party")
    .option("--dir <dir>", "where the users and credentials go", DEFAULT_AUTH_DIR)
    .option("--machines <n>", "this many machines with new random IDs")
    .option("--machine <id>", "a machine with this ID (repeatable)", collect, [])
    .option("--role <role>", "role of these machines: engine (may lead, serves the API) or machine (agent only)", "engine")
    .option("--if-missing", "a directory that holds users already keeps them and their passwords and gains only the --machine IDs it lacks (what the compose file's auth service runs on every up)")
    .action(async (o: { dir: string; machines?: string; machine: string[]; role: string; ifMissing?: boolean }) => {
      const [{ newMachineId }, { ensureAuth, initAuth }] = await Promise.all([import("../machine/machine-id.js"), import("../auth/users.js")]);
      const r = role(o.role);
      if (o.machines !== undefined && o.machine.length > 0) {
        throw new FlotillaError("bad_flag", "give either --machines N or --machine ID..., not both", { field: "machines", value: o.machines });
      }
      let ids = o.machine;
      if (o.machines !== undefined) {
        const n = Number(o.machines);
        if (!Number.isInteger(n) || n < 0 || n > 1000) {
          throw new FlotillaError("bad_flag", `--machines: "${o.machines}" is not a number of machines (0-1000)`, { field: "machines", value: o.machines });
        }
        ids = Array.from({ length: n }, () => newMachineId());
      }
      const dir = resolve(o.dir);
      const opts = { dir, prefix: globals().prefix, machines: ids.map((id) => ({ id, role: r })) };
      if (!o.ifMissing) return report(dir, initAuth(opts));
      if (o.machines !== undefined) {
        throw new FlotillaError("bad_flag", "--if-missing takes --machine ID... (IDs that stay the same from one run to the next), not --machines N", {
          field: "machines",
          value: o.machines,
        });
      }
      const made = ensureAuth(opts);
      if (made.length > 0) await report(dir, made);
      else process.stdout.write(`${join(dir, "users.json")} holds every user asked for already: nothing changed\n`);
    });
  auth
    .command("add-machine <id>")
    .description("add one machine's user (or give it a new password); restart or reload nats-server afterwards (nats-server --signal reload)")
    .option("--dir <dir>", "the directory of flotilla auth init", DEFAULT_AUTH_DIR)
    .option("--role <role>", "engine (may lead, serves the API) or machine (agent only)", "engine")
    .action(async (id: string, o: { dir: string; role: string }) => {
      const { addMachine } = await import("../auth/users.js");
      const dir = resolve(o.dir);
      await report(dir, [addMachine(dir, id, role(o.role))]);
    });
  return auth as unknown as Command;
};
