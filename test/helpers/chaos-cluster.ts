// The chaos test's hands: three (or more) real `flotilla daemon`s on fixed state dirs, and the
// executor of a fault plan (chaos-plan.ts). A killed daemon is started again on the SAME state
// dir and machine ID, so its agent adopts the tasks it had. Every daemon exit that the plan did
// not cause is a violation, with the daemon's last output as evidence.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsServer } from "./nats-server.js";
import { startDaemon, type RunningDaemon } from "./daemon.js";
import { runCli } from "./cli.js";
import type { ChaosEvent } from "./chaos-plan.js";
import { check } from "./check.js";
import { connectOnce } from "../../src/nats/connection.js";
import { openKv } from "../../src/nats/buckets.js";
import { decodeAs } from "../../src/protocol/codec.js";
import { MachineRecord } from "../../src/protocol/messages.js";
import { keys, Names } from "../../src/protocol/names.js";

export interface Slot {
  id: string;
  stateDir: string;
  daemon?: RunningDaemon;
  /** up: registered; starting: spawned, not yet registered; dead: killed (or exited). */
  status: "up" | "dead" | "starting";
  pending?: Promise<void>;
  /** Every incarnation (the evidence a failure prints): when it started, its pid, its output. */
  lives: { from: number; pid: number; output: () => string }[];
}

export interface ChaosClusterOptions {
  server: NatsServer;
  prefix: string;
  machines: string[];
  agentTtl: string;
  leaseTtl: string;
  env?: Record<string, string>;
}

export class ChaosCluster {
  readonly slots = new Map<string, Slot>();
  /** Things that must not happen: a daemon exiting by itself, a restart or an API call failing. */
  readonly violations: string[] = [];
  /** What was done, with the actual time (ms from t0) next to the planned one. */
  readonly done: string[] = [];
  readonly counts: Record<string, number> = {};
  private readonly intended = new Set<number>();
  t0 = Date.now();

  constructor(private readonly o: ChaosClusterOptions) {
    for (const id of o.machines) this.slots.set(id, { id, stateDir: mkdtempSync(join(tmpdir(), `flotilla-chaos-${id}-`)), status: "dead", lives: [] });
  }

  /** Machine ID → state dir, for attributing workload processes. */
  stateDirs(): Map<string, string> {
    return new Map([...this.slots.values()].map((s) => [s.id, s.stateDir]));
  }

  isUp(id: string): boolean {
    return this.slots.get(id)?.status === "up";
  }

  cli(...args: string[]) {
    return runCli(["--nats", this.o.server.url, "--prefix", this.o.prefix, ...args], { timeoutMs: 30_000 });
  }

  private now(): number {
    return Date.now() - this.t0;
  }

  private async boot(slot: Slot): Promise<void> {
    slot.status = "starting";
    const bootAt = Date.now();
    const d = await startDaemon({
      server: this.o.server,
      prefix: this.o.prefix,
      machineId: slot.id,
      stateDir: slot.stateDir,
      agentTtl: this.o.agentTtl,
      leaseTtl: this.o.leaseTtl,
      env: this.o.env,
    });
    slot.daemon = d;
    slot.lives.push({ from: bootAt - this.t0, pid: d.child.pid!, output: () => d.output() });
    d.child.once("exit", (code, signal) => {
      if (slot.daemon === d) slot.status = "dead";
      if (this.intended.has(d.child.pid!)) return;
      this.violations.push(
        `daemon ${slot.id} (pid ${d.child.pid}) exited by itself at ${this.now()} ms (code ${code}, signal ${signal}); ` +
          `its last output:\n${d.output().slice(-6000)}`,
      );
    });
    // startDaemon is satisfied by the record the killed incarnation left (it lives one TTL): wait
    // for a beat of this one, so that "up" means this daemon is there.
    await this.freshBeat(slot.id, bootAt);
    if (slot.daemon === d && d.child.exitCode === null && d.child.signalCode === null) slot.status = "up";
  }

  private async freshBeat(id: string, since: number): Promise<void> {
    const nc = await connectOnce({ url: this.o.server.url });
    try {
      const kv = await openKv(nc, new Names(this.o.prefix).bucket("machines"));
      await check(
        async () => {
          const e = await kv.get(keys.machine(id));
          return e !== null && e.operation === "PUT" && decodeAs(MachineRecord, e.value, id).heartbeatAt >= since;
        },
        20_000,
        `a fresh heartbeat of ${id}`,
        50,
      );
    } finally {
      await nc.close();
    }
  }

  async startAll(): Promise<void> {
    await Promise.all([...this.slots.values()].map((s) => this.boot(s)));
  }

  private async kill(slot: Slot): Promise<void> {
    await slot.pending;
    const d = slot.daemon;
    if (!d || slot.status !== "up") {
      this.violations.push(`kill ${slot.id} at ${this.now()} ms: the daemon was not running (${slot.status})`);
      return;
    }
    this.intended.add(d.child.pid!);
    slot.status = "dead";
    await d.stop("SIGKILL");
  }

  private restart(slot: Slot): void {
    const t = this.now();
    slot.pending = this.boot(slot).then(
      () => {
        this.done.push(`  ${(this.now() / 1000).toFixed(3).padStart(7)} s  ${slot.id} registered again (restart began at ${(t / 1000).toFixed(3)} s)`);
      },
      (e: Error) => {
        slot.status = "dead";
        this.violations.push(`restart of ${slot.id} at ${t} ms failed: ${e.message}`);
      },
    );
  }

  /** In the background (like a restart): a kill of that machine waits for it, the rest of the plan does not. */
  private availability(slot: Slot, verb: "drain" | "activate"): void {
    const t = this.now();
    const prev = slot.pending;
    slot.pending = (async () => {
      await prev;
      const errors: string[] = [];
      // The API asks the daemon itself: retried while it is still re-registering or NATS settles.
      for (const deadline = Date.now() + 15_000; Date.now() < deadline; ) {
        const r = await this.cli("machine", verb, slot.id);
        if (r.code === 0) {
          const retried = errors.length > 0 ? `, after ${errors.length} failed attempts, the last: ${errors.at(-1)}` : "";
          this.done.push(`  ${(this.now() / 1000).toFixed(3).padStart(7)} s  ${slot.id} ${verb} answered (asked at ${(t / 1000).toFixed(3)} s${retried})`);
          return;
        }
        errors.push(`${r.code}: ${r.stderr.trim()}`);
        await new Promise((res) => setTimeout(res, 300));
      }
      this.violations.push(`flotilla machine ${verb} ${slot.id} at ${t} ms kept failing (${errors.length} attempts): ${errors.at(-1)}`);
    })();
  }

  private async runOne(e: ChaosEvent): Promise<void> {
    switch (e.kind) {
      case "kill":
        return this.kill(this.slots.get(e.machine)!);
      case "restart":
        return this.restart(this.slots.get(e.machine)!);
      case "drain":
      case "activate":
        return this.availability(this.slots.get(e.machine)!, e.kind);
      case "nats-stop":
        // Not waiting for a daemon still registering: it is connected already (the plan starts
        // none while NATS is away) and rides the outage out like the others.
        return this.o.server.stop();
      case "nats-start":
        return this.o.server.restart();
    }
  }

  /**
   * Runs the plan in order. Waiting for an event's time is the schedule itself (faults come at
   * chosen times), not a synchronisation; an event that has to wait for the previous one (a
   * kill of a daemon still registering) runs late, and the output shows by how much.
   */
  async run(plan: ChaosEvent[], t0: number): Promise<void> {
    this.t0 = t0;
    for (const e of plan) {
      const wait = t0 + e.at - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const began = this.now();
      await this.runOne(e);
      this.counts[e.kind] = (this.counts[e.kind] ?? 0) + 1;
      const m = "machine" in e ? ` ${e.machine}` : "";
      this.done.push(`  ${(began / 1000).toFixed(3).padStart(7)} s  ${e.kind}${m} (planned ${(e.at / 1000).toFixed(3)} s, took ${this.now() - began} ms)`);
    }
    await Promise.all([...this.slots.values()].map((s) => s.pending));
  }
}
