// `flotilla`: fleetctl's verbs, plus `daemon` (fleetd) and `up` (a whole local cluster).
// Each group of commands lives in its own file and registers itself here.
// Exit codes: 0 success, 1 failure, 2 usage error.
import { Command, CommanderError } from "commander";
import { FlotillaError, describeError } from "../protocol/errors.js";
import { DEFAULT_PREFIX } from "../protocol/names.js";
import { DEFAULT_NATS_URL } from "../nats/default-url.js";
import type { GlobalOptions } from "./client.js";
import { VERSION } from "../version.js";

export type CommandRegistrar = (program: Command, globals: () => GlobalOptions) => void;

/** Registrars of every command group; each file appends itself in registry.ts. */
import { registrars } from "./registry.js";
import { registerAuth } from "./auth.js";

export function buildProgram(): Command {
  const program = new Command("flotilla");
  program
    .description("flotilla: a cluster runtime in the line of CoreOS fleet and Docker SwarmKit, over NATS JetStream")
    .version(VERSION)
    .option("--nats <url>", "NATS server URL(s), comma-separated (env NATS_URL)", process.env.NATS_URL ?? DEFAULT_NATS_URL)
    .option("--prefix <prefix>", "cluster prefix for subjects and buckets (env FLOTILLA_PREFIX)", process.env.FLOTILLA_PREFIX ?? DEFAULT_PREFIX)
    .option("--creds <file>", "NATS credentials file (env NATS_CREDS)", process.env.NATS_CREDS)
    .option("--user <user>", "NATS user (env NATS_USER)", process.env.NATS_USER)
    .option("--password <password>", "NATS password (env NATS_PASSWORD)", process.env.NATS_PASSWORD)
    .option("--token <token>", "NATS token (env NATS_TOKEN)", process.env.NATS_TOKEN)
    .option("--tls-ca <file>", "CA certificate(s) to trust for the NATS server's TLS (env NATS_CA)", process.env.NATS_CA)
    .option("--tls-cert <file>", "client certificate for NATS TLS (env NATS_CERT)", process.env.NATS_CERT)
    .option("--tls-key <file>", "key of the client certificate (env NATS_KEY)", process.env.NATS_KEY)
    .option("--request-timeout <ms>", "timeout of one API request in ms", "10000")
    .showHelpAfterError()
    .exitOverride();
  const globals = (): GlobalOptions => {
    const o = program.opts<{
      nats: string;
      prefix: string;
      creds?: string;
      user?: string;
      password?: string;
      token?: string;
      tlsCa?: string;
      tlsCert?: string;
      tlsKey?: string;
      requestTimeout: string;
    }>();
    return {
      url: o.nats,
      prefix: o.prefix,
      creds: o.creds,
      user: o.user,
      password: o.password,
      token: o.token,
      tls: o.tlsCa || o.tlsCert || o.tlsKey ? { ca: o.tlsCa, cert: o.tlsCert, key: o.tlsKey } : undefined,
      timeout: Number(o.requestTimeout) || 10_000,
    };
  };
  for (const register of [...registrars, registerAuth]) register(program, globals);
  return program;
}

/** Prints an error the way a person wants it at 3 a.m.: one line, no stack. */
export function printError(e: unknown): void {
  if (e instanceof FlotillaError) {
    const where = e.line !== undefined ? ` (line ${e.line})` : "";
    process.stderr.write(`Error: ${e.message}${where} [${e.code}]\n`);
  } else {
    process.stderr.write(`Error: ${describeError(e)}\n`);
  }
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version" || e.code === "commander.help") return 0;
      return 2;
    }
    printError(e);
    if (e instanceof FlotillaError && (e.code === "bad_flag" || e.code === "bad_config")) return 2;
    return 1;
  }
}

