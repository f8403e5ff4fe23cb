// Several hosts on one machine, each in its own network namespace, for partition and heal tests
// in every run (root only; about half a second of setup):
//
//   root ns (the test)           hub ns                        host ns (one per host)
//   fl213nN 10.213.N.2 ──veth── fl213nNp ┐
//                                        br0 10.213.N.1        ┌─ eth0 10.213.N.11  (h1)
//                                        nats-server :4222 ────┼─ eth0 10.213.N.12  (h2)
//                                 h1 ... hK (bridge ports) ────┘  ...
//
// Traffic stays between the namespaces made here (no routes, no forwarding to the outside). A
// lab takes the subnet 10.213.N.0/24 whose root-side veth fl213nN it manages to create: the
// kernel refuses a second link of that name, so two test files (or two runs) never share one.
// The link's alias records the owner's pid, and a lab whose owner died is reclaimed.
//
// cut(host) takes that host's bridge port down: its daemon's TCP connection goes silent, as when
// a host's cable is pulled (no reset, no error); heal(host) brings it back. dispose() (call it in
// afterAll) stops the daemons, kills their workloads and deletes every namespace and veth.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as tcpConnect } from "node:net";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { openKv } from "../../src/nats/buckets.js";
import { Names, keys } from "../../src/protocol/names.js";
import { check } from "./check.js";
import { BIN, stopChild } from "./cli.js";
import { daemonArgs, type StartDaemonOptions } from "./daemon.js";
import { natsServerBin } from "./nats-server.js";
import { killStateDirWorkloads } from "./workloads.js";

const ROOT_LINK = (n: number) => `fl213n${n}`;

function ip(args: string[], allowFail = false): string {
  const r = spawnSync("ip", args, { encoding: "utf8" });
  if (r.status !== 0 && !allowFail) throw new Error(`ip ${args.join(" ")}: ${(r.stderr || r.stdout || "").trim() || `exit ${r.status}`}`);
  return r.stdout ?? "";
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Whether this process may build labs: root, iproute2 and network namespaces. */
export function netnsAvailable(): { ok: boolean; why: string } {
  if (process.getuid?.() !== 0) return { ok: false, why: "network namespaces need root" };
  const r = spawnSync("ip", ["netns", "list"], { encoding: "utf8" });
  if (r.error || r.status !== 0) return { ok: false, why: `ip netns is not usable: ${r.error?.message ?? r.stderr}` };
  return { ok: true, why: "" };
}

function tcpReachable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tcpConnect({ host, port });
    s.setTimeout(500, () => {
      s.destroy();
      resolve(false);
    });
    s.once("connect", () => {
      s.end();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

export interface NetnsHost {
  name: string; // h1, h2, ...
  netns: string;
  ip: string;
  /** The host's port on the hub's bridge (cut() takes it down). */
  port: string;
}

export interface NetnsDaemon {
  host: NetnsHost;
  child: ChildProcess & { output: () => string };
  machineId: string;
  stateDir: string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface LabOptions {
  hosts: number;
  /** nats-server's ping_interval and ping_max (default the shipped nats.conf's: "2s", 2). */
  pingInterval?: string;
  pingMax?: number;
  /**
   * net.ipv4.tcp_retries2 in nats-server's namespace (kernel default 15, about 15 minutes): how
   * long the server's TCP keeps retransmitting to a silent client before the socket fails.
   */
  tcpRetries2?: number;
}

export class NetnsLab {
  readonly hosts: NetnsHost[] = [];
  readonly daemons: NetnsDaemon[] = [];
  private nats?: ChildProcess;
  private natsLog = "";
  private readonly dir: string;
  private readonly observers: NatsConnection[] = [];
  private disposed = false;

  private constructor(readonly n: number) {
    this.dir = mkdtempSync(join(tmpdir(), `flotilla-netns-${n}-`));
  }

  get hubNetns(): string {
    return `fl213-${this.n}-hub`;
  }
  get natsHost(): string {
    return `10.213.${this.n}.1`;
  }
  /** The NATS URL for daemons and for the test itself (the root ns reaches the hub too). */
  get natsUrl(): string {
    return `nats://${this.natsHost}:4222`;
  }

  static async create(o: LabOptions): Promise<NetnsLab> {
    const can = netnsAvailable();
    if (!can.ok) throw new Error(`the netns partition tests cannot run here: ${can.why} (they run as root, as CI does)`);
    const n = allocateSubnet();
    const lab = new NetnsLab(n);
    try {
      lab.build(o.hosts);
      await lab.startNats(o);
      return lab;
    } catch (e) {
      await lab.dispose();
      throw e;
    }
  }

  private build(count: number): void {
    const n = this.n;
    const hub = this.hubNetns;
    ip(["netns", "add", hub]);
    ip(["link", "set", `${ROOT_LINK(n)}p`, "netns", hub]);
    ip(["-n", hub, "link", "set", "lo", "up"]);
    ip(["-n", hub, "link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0"]);
    ip(["-n", hub, "addr", "add", `${this.natsHost}/24`, "dev", "br0"]);
    ip(["-n", hub, "link", "set", "br0", "up"]);
    ip(["-n", hub, "link", "set", `${ROOT_LINK(n)}p`, "master", "br0", "up"]);
    ip(["addr", "add", `10.213.${n}.2/24`, "dev", ROOT_LINK(n)]);
    ip(["link", "set", ROOT_LINK(n), "up"]);
    for (let k = 1; k <= count; k++) {
      const host: NetnsHost = { name: `h${k}`, netns: `fl213-${n}-h${k}`, ip: `10.213.${n}.${10 + k}`, port: `h${k}` };
      ip(["netns", "add", host.netns]);
      this.hosts.push(host);
      ip(["-n", hub, "link", "add", host.port, "type", "veth", "peer", "name", "eth0", "netns", host.netns]);
      ip(["-n", hub, "link", "set", host.port, "master", "br0", "up"]);
      ip(["-n", host.netns, "link", "set", "lo", "up"]);
      ip(["-n", host.netns, "addr", "add", `${host.ip}/24`, "dev", "eth0"]);
      ip(["-n", host.netns, "link", "set", "eth0", "up"]);
    }
  }

  private async startNats(o: LabOptions): Promise<void> {
    if (o.tcpRetries2 !== undefined) {
      ip(["netns", "exec", this.hubNetns, "sysctl", "-q", "-w", `net.ipv4.tcp_retries2=${o.tcpRetries2}`]);
    }
    const conf = join(this.dir, "nats.conf");
    writeFileSync(
      conf,
      [
        `listen: ${this.natsHost}:4222`,
        `http: ${this.natsHost}:8222`,
        `max_payload: 2MB`,
        `ping_interval: "${o.pingInterval ?? "2s"}"`,
        `ping_max: ${o.pingMax ?? 2}`,
        `jetstream { store_dir: "${join(this.dir, "jetstream")}" }`,
      ].join("\n") + "\n",
    );
    const proc = spawn("ip", ["netns", "exec", this.hubNetns, natsServerBin(), "-c", conf], { stdio: ["ignore", "ignore", "pipe"] });
    proc.stderr?.on("data", (d) => (this.natsLog = (this.natsLog + String(d)).slice(-8000)));
    this.nats = proc;
    await check(
      async () => {
        if (proc.exitCode !== null) throw new Error(`nats-server in ${this.hubNetns} exited ${proc.exitCode}: ${this.natsLog}`);
        return tcpReachable(this.natsHost, 4222);
      },
      10_000,
      `nats-server on ${this.natsUrl}`,
    );
  }

  /** The client connections nats-server holds (its monitoring endpoint; asking it touches no client). */
  async connections(): Promise<{ ip: string; name?: string }[]> {
    const r = await fetch(`http://${this.natsHost}:8222/connz?limit=1024`);
    const body = (await r.json()) as { connections?: { ip: string; name?: string }[] };
    return body.connections ?? [];
  }

  host(name: string): NetnsHost {
    const h = this.hosts.find((x) => x.name === name);
    if (!h) throw new Error(`no host ${name} in lab ${this.n}`);
    return h;
  }

  /** A connection of the test's own (root ns, never cut); closed by dispose(). */
  async observer(): Promise<NatsConnection> {
    const nc = await connect({ servers: this.natsUrl, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    this.observers.push(nc);
    return nc;
  }

  /** Pulls host's cable: its bridge port goes down, its packets are dropped silently. */
  cut(host: NetnsHost | string): void {
    const h = typeof host === "string" ? this.host(host) : host;
    ip(["-n", this.hubNetns, "link", "set", h.port, "down"]);
  }

  heal(host: NetnsHost | string): void {
    const h = typeof host === "string" ? this.host(host) : host;
    ip(["-n", this.hubNetns, "link", "set", h.port, "up"]);
  }

  /** `flotilla daemon` in the host's namespace (the compiled CLI), ready once its record is in. */
  async startDaemon(host: NetnsHost | string, o: Omit<StartDaemonOptions, "server">): Promise<NetnsDaemon> {
    const h = typeof host === "string" ? this.host(host) : host;
    const stateDir = o.stateDir ?? mkdtempSync(join(tmpdir(), `flotilla-netns-state-${h.name}-`));
    const machineId = o.machineId ?? `${h.name}-${this.n}`;
    const args = daemonArgs({ ...o, server: this.natsUrl, machineId, extraArgs: ["--public-ip", h.ip, ...(o.extraArgs ?? [])] }, stateDir);
    // `ip netns exec` enters the namespace and execs node: the child's pid is the daemon's.
    const child = spawn("ip", ["netns", "exec", h.netns, process.execPath, BIN, ...args], {
      env: { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? "info", ...o.env },
      stdio: ["ignore", "pipe", "pipe"],
    }) as ChildProcess & { output: () => string };
    let out = "";
    child.stdout?.on("data", (d) => (out = (out + String(d)).slice(-200_000)));
    child.stderr?.on("data", (d) => (out = (out + String(d)).slice(-200_000)));
    child.output = () => out;
    const d: NetnsDaemon = { host: h, child, machineId, stateDir, stop: (sig = "SIGTERM") => stopChild(child, sig) };
    this.daemons.push(d);
    const nc = await this.observer();
    const names = new Names(o.prefix);
    await check(
      async () => {
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`daemon on ${h.name} exited:\n${out}`);
        const kv = await openKv(nc, names.bucket("machines"));
        const e = await kv.get(keys.machine(machineId));
        return e !== null && e.operation === "PUT" && e.value.length > 0;
      },
      o.timeoutMs ?? 20_000,
      `machine ${machineId} (${h.name}) in ${names.bucket("machines")}`,
      50,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\ndaemon output:\n${out}`);
    });
    return d;
  }

  /** Which hosts run a copy of each unit right now, from /proc (the supervisors' command lines). */
  runningCopies(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    const byRunRoot = this.daemons.map((d) => ({ root: join(d.stateDir, "run") + "/", host: d.host.name }));
    for (const p of readdirSync("/proc")) {
      if (!/^\d+$/.test(p)) continue;
      let argv: string[];
      try {
        argv = readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0");
      } catch {
        continue;
      }
      const i = argv.indexOf("flotilla-supervise");
      if (i < 0) continue;
      const runDir = argv[i + 1] ?? "";
      const owner = byRunRoot.find((r) => runDir.startsWith(r.root));
      if (!owner) continue;
      // Run dirs are named by the escaped unit name (web@1.service -> web=401.service).
      const unit = runDir.slice(owner.root.length).replace(/=([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
      out.set(unit, [...(out.get(unit) ?? []), owner.host].sort());
    }
    return out;
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    for (const h of this.hosts) ip(["-n", this.hubNetns, "link", "set", h.port, "up"], true);
    await Promise.all(this.daemons.map((d) => d.stop("SIGTERM").catch(() => undefined)));
    for (const d of this.daemons) killStateDirWorkloads(d.stateDir);
    await Promise.all(this.observers.map((nc) => nc.close().catch(() => undefined)));
    if (this.nats) await stopChild(this.nats, "SIGTERM", 5000);
    destroyLab(this.n);
    rmSync(this.dir, { recursive: true, force: true });
    for (const d of this.daemons) rmSync(d.stateDir, { recursive: true, force: true });
  }
}

/** Deletes every namespace and veth of lab n (the host-side ends die with their namespaces). */
function destroyLab(n: number): void {
  const prefix = `fl213-${n}-`;
  for (const line of ip(["netns", "list"], true).split("\n")) {
    const name = line.split(" ")[0];
    if (name && name.startsWith(prefix)) ip(["netns", "del", name], true);
  }
  ip(["link", "del", ROOT_LINK(n)], true);
}

/** Takes a free 10.213.N.0/24 by creating its root-side veth pair; reclaims labs of dead owners. */
function allocateSubnet(): number {
  const reclaimed = new Set<number>();
  const start = (process.pid * 7 + Math.floor(Math.random() * 256)) % 250;
  for (let i = 0; i < 250; i++) {
    const n = ((start + i) % 250) + 1;
    const r = spawnSync("ip", ["link", "add", ROOT_LINK(n), "type", "veth", "peer", "name", `${ROOT_LINK(n)}p`], { encoding: "utf8" });
    if (r.status === 0) {
      ip(["link", "set", ROOT_LINK(n), "alias", `flotilla-netns pid:${process.pid}`]);
      return n;
    }
    const alias = /alias flotilla-netns pid:(\d+)/.exec(ip(["link", "show", ROOT_LINK(n)], true));
    if (alias && !pidAlive(Number(alias[1])) && !reclaimed.has(n)) {
      reclaimed.add(n);
      destroyLab(n);
      i -= 1; // try this n again
    }
  }
  throw new Error("no free 10.213.N.0/24 test subnet: 250 netns labs exist (ip link show | grep fl213n)");
}
