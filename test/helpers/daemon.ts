// Starts a real `flotilla daemon` (the compiled CLI, as a user runs it) against a test's
// nats-server and resolves once its machine record is in the machines bucket. Stop it by PID.
//
// Workloads outlive their daemon by design, so a file that ran units would leave them behind.
// Importing this module registers an afterAll in the importing test file that stops every
// daemon it started (those still running) and then kills the workloads of every state dir
// they used: no file can forget. stopAllDaemons() does the same earlier, when a file wants to.
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ChildProcess } from "node:child_process";
import { afterAll } from "vitest";
import { connect } from "@nats-io/transport-node";
import { openKv } from "../../src/nats/buckets.js";
import { Names, keys } from "../../src/protocol/names.js";
import type { NatsServer } from "./nats-server.js";
import { check } from "./check.js";
import { spawnCli, stopChild } from "./cli.js";
import { killStateDirWorkloads } from "./workloads.js";

export interface StartDaemonOptions {
  server: NatsServer | string;
  prefix: string;
  machineId?: string;
  /** "k=v,k2=v2" or an object. */
  metadata?: string | Record<string, string>;
  stateDir?: string;
  agentTtl?: string; // default "2s"
  leaseTtl?: string; // default "2s"
  extraArgs?: string[];
  env?: Record<string, string>;
  /** How long to wait for the machine record (default 20 s). */
  timeoutMs?: number;
}

export interface RunningDaemon {
  child: ChildProcess & { output: () => string };
  machineId: string;
  stateDir: string;
  url: string;
  /** SIGTERM (or the given signal) by PID; resolves with the exit code once it exited. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  output(): string;
}

const started: { child: ChildProcess; stateDir: string }[] = [];

/** SIGTERM to every daemon this file started that still runs, then SIGKILL to their workloads. */
export async function stopAllDaemons(): Promise<void> {
  const all = started.splice(0);
  await Promise.all(all.map((d) => stopChild(d.child, "SIGTERM")));
  for (const dir of new Set(all.map((d) => d.stateDir))) killStateDirWorkloads(dir);
}

afterAll(stopAllDaemons);

export function daemonArgs(o: StartDaemonOptions, stateDir: string): string[] {
  const url = typeof o.server === "string" ? o.server : o.server.url;
  const args = ["--nats", url, "--prefix", o.prefix, "daemon", "--state-dir", stateDir];
  args.push("--agent-ttl", o.agentTtl ?? "2s", "--lease-ttl", o.leaseTtl ?? "2s");
  if (o.machineId) args.push("--machine-id", o.machineId);
  if (o.metadata !== undefined) {
    const m = typeof o.metadata === "string" ? o.metadata : Object.entries(o.metadata).map(([k, v]) => `${k}=${v}`).join(",");
    args.push("--metadata", m);
  }
  args.push(...(o.extraArgs ?? []));
  return args;
}

export async function startDaemon(o: StartDaemonOptions): Promise<RunningDaemon> {
  const url = typeof o.server === "string" ? o.server : o.server.url;
  const stateDir = o.stateDir ?? mkdtempSync(join(tmpdir(), "flotilla-state-"));
  const child = spawnCli(daemonArgs(o, stateDir), o.env ?? {});
  started.push({ child, stateDir });
  const stop = (signal: NodeJS.Signals = "SIGTERM") => stopChild(child, signal);
  const nc = await connect({ servers: url }).catch(async (e) => {
    await stop("SIGKILL");
    throw e;
  });
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  const died = () => new Error(`daemon exited (${child.exitCode ?? child.signalCode}) before registering:\n${child.output()}`);
  try {
    const names = new Names(o.prefix);
    // check() retries on throw, so an exited child ends the wait by returning a marker instead.
    const machineId = await check(
      () => {
        if (exited()) return { dead: true as const };
        if (o.machineId) return o.machineId;
        try {
          return readFileSync(join(stateDir, "machine-id"), "utf8").trim();
        } catch {
          return "";
        }
      },
      o.timeoutMs ?? 20_000,
      "the daemon's machine ID",
    );
    if (typeof machineId !== "string") throw died();
    const registered = await check(
      async () => {
        if (exited()) return "dead";
        const kv = await openKv(nc, names.bucket("machines"));
        const e = await kv.get(keys.machine(machineId));
        return e !== null && e.operation === "PUT" && e.value.length > 0 ? "ok" : "";
      },
      o.timeoutMs ?? 20_000,
      `machine ${machineId} in ${names.bucket("machines")}`,
      50,
    ).catch(async (e) => {
      await stop("SIGKILL");
      throw new Error(`${(e as Error).message}\ndaemon output:\n${child.output()}`);
    });
    if (registered === "dead") throw died();
    // The API starts after the machine is registered: a test that sends a request at once would
    // otherwise meet "no responders". Wait until the API answers (any daemon's: they share one queue group).
    if (!(o.extraArgs ?? []).includes("--no-api")) {
      const answered = await check(
        async () => {
          if (exited()) return "dead";
          const r = await nc.request(names.apiSubject("list-machines"), "", { timeout: 1000 });
          return r.headers?.get("Nats-Service-Error-Code") ? "" : "ok";
        },
        o.timeoutMs ?? 20_000,
        `the API of ${machineId}`,
        50,
      );
      if (answered === "dead") throw died();
    }
    return { child, machineId, stateDir, url, stop, output: () => child.output() };
  } catch (e) {
    await stop("SIGKILL");
    throw e;
  } finally {
    await nc.close();
  }
}
