// A real 3-node nats-server JetStream cluster for one test file: each node with its own
// server_name, client and cluster port (free ports picked at start and kept, so a node comes
// back on the same ports and store after a kill), routes to the other two, and its own
// JetStream store dir. Ready when every node takes TCP and JetStream has a meta leader (an R3
// stream can be created). kill(i) SIGKILLs one node by PID; restart(i) brings it back; dispose()
// stops all by PID and deletes the files.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { check } from "./check.js";
import { natsServerBin } from "./nats-server.js";
import { tcpProbe } from "../../src/util/net.js";

/** A port the OS says is free now (bound to 0 and released). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      const port = typeof a === "object" && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

interface Node {
  name: string;
  port: number;
  clusterPort: number;
  dir: string;
  proc?: ChildProcess;
  stderr: string;
  /** Set while we stop or kill the node on purpose. */
  expectExit: boolean;
}

export class NatsCluster {
  private constructor(
    readonly dir: string,
    private readonly nodes: Node[],
  ) {}

  static async start(size = 3): Promise<NatsCluster> {
    const dir = mkdtempSync(join(tmpdir(), "flotilla-nats-cluster-"));
    const nodes: Node[] = [];
    for (let i = 0; i < size; i++) {
      nodes.push({ name: `n${i + 1}`, port: await freePort(), clusterPort: await freePort(), dir: join(dir, `n${i + 1}`), stderr: "", expectExit: false });
    }
    const c = new NatsCluster(dir, nodes);
    try {
      for (let i = 0; i < size; i++) c.launch(i);
      for (let i = 0; i < size; i++) await c.waitTcp(i);
      await c.waitForJetStream();
    } catch (e) {
      await c.dispose();
      throw e;
    }
    return c;
  }

  get size(): number {
    return this.nodes.length;
  }

  /** Every node's client URL, comma-separated (what --nats takes). */
  get urls(): string {
    return this.nodes.map((n) => `nats://127.0.0.1:${n.port}`).join(",");
  }

  url(i: number): string {
    return `nats://127.0.0.1:${this.node(i).port}`;
  }

  /** The index of the node with this server_name (n1, n2, ...), as JetStream names its peers. */
  indexOf(serverName: string): number {
    const i = this.nodes.findIndex((n) => n.name === serverName);
    if (i < 0) throw new Error(`NatsCluster: no node named ${serverName}`);
    return i;
  }

  pid(i: number): number | undefined {
    return this.node(i).proc?.pid;
  }

  running(i: number): boolean {
    const p = this.node(i).proc;
    return p !== undefined && p.exitCode === null && p.signalCode === null;
  }

  private node(i: number): Node {
    const n = this.nodes[i];
    if (!n) throw new Error(`NatsCluster: no node ${i} (size ${this.nodes.length})`);
    return n;
  }

  private launch(i: number): void {
    const n = this.node(i);
    mkdirSync(join(n.dir, "jetstream"), { recursive: true });
    const routes = this.nodes.filter((o) => o !== n).map((o) => `nats-route://127.0.0.1:${o.clusterPort}`);
    const conf = join(n.dir, "nats.conf");
    writeFileSync(
      conf,
      [
        `server_name: ${n.name}`,
        `listen: 127.0.0.1:${n.port}`,
        `max_payload: 2MB`,
        `jetstream { store_dir: "${join(n.dir, "jetstream")}" }`,
        `cluster {`,
        `  name: flotilla-test`,
        `  listen: 127.0.0.1:${n.clusterPort}`,
        `  routes: [${routes.map((r) => `"${r}"`).join(", ")}]`,
        `}`,
      ].join("\n") + "\n",
    );
    n.expectExit = false;
    n.stderr = "";
    const proc = spawn(natsServerBin(), ["-c", conf], { stdio: ["ignore", "ignore", "pipe"] });
    proc.stderr?.on("data", (d) => {
      n.stderr = (n.stderr + String(d)).slice(-8000);
    });
    proc.once("exit", (code, signal) => {
      if (n.expectExit) return;
      process.stderr.write(
        `\n*** cluster node ${n.name} pid ${proc.pid} (port ${n.port}) exited unexpectedly (code ${code}, signal ${signal}). Its last stderr:\n${n.stderr}\n`,
      );
    });
    n.proc = proc;
  }

  private async waitTcp(i: number): Promise<void> {
    const n = this.node(i);
    await check(
      () => {
        if (n.proc?.exitCode !== null && n.proc?.exitCode !== undefined) throw new Error(`nats-server ${n.name} exited: ${n.stderr}`);
        return tcpProbe(n.port);
      },
      15_000,
      `cluster node ${n.name} to take TCP on ${n.port}`,
    );
  }

  /**
   * Waits until the cluster's JetStream answers stream creates at R`replicas` through every
   * running node (a meta leader exists and enough peers are current).
   */
  async waitForJetStream(timeoutMs = 30_000, replicas = Math.min(3, this.nodes.length)): Promise<void> {
    const up = this.nodes.map((_, i) => i).filter((i) => this.running(i));
    const nc = await connect({ servers: up.map((i) => this.url(i)), timeout: 5000 });
    try {
      const name = `cluster_ready_${Math.random().toString(36).slice(2, 8)}`;
      await check(
        async () => {
          const jsm = await jetstreamManager(nc, { timeout: 2000 });
          await jsm.streams.add({ name, subjects: [`${name}.>`], num_replicas: replicas }).catch(async (e: Error) => {
            if (!/already in use|exists/i.test(e.message)) throw e;
          });
          const info = await jsm.streams.info(name);
          const current = (info.cluster?.replicas ?? []).filter((r) => r.current).length + (info.cluster?.leader ? 1 : 0);
          return current >= replicas;
        },
        timeoutMs,
        `JetStream of the cluster to take an R${replicas} stream`,
        250,
      );
      const jsm = await jetstreamManager(nc);
      await jsm.streams.delete(name).catch(() => undefined);
    } finally {
      await nc.close();
    }
  }

  /** SIGKILL one node by PID and wait until it is gone. */
  async kill(i: number): Promise<void> {
    await this.stopNode(i, "SIGKILL");
  }

  /** Brings a stopped or killed node back on the same ports and store; waits for TCP. */
  async restart(i: number): Promise<void> {
    await this.stopNode(i, "SIGTERM");
    this.launch(i);
    await this.waitTcp(i);
  }

  private async stopNode(i: number, signal: NodeJS.Signals): Promise<void> {
    const n = this.node(i);
    const p = n.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => p.once("exit", () => resolve()));
    n.expectExit = true;
    p.kill(signal);
    const t = setTimeout(() => p.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(t);
  }

  async dispose(): Promise<void> {
    await Promise.all(this.nodes.map((_, i) => this.stopNode(i, "SIGTERM")));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
