// A real nats-server per test file (nats.js's own test style): config with port -1, a
// ports_file_dir and a temporary JetStream store_dir; ready when the ports file appears and a
// TCP probe connects; stopped (by PID) and deleted after. restart() brings it back on the same
// port and store, for tests that kill NATS on purpose.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { check } from "./check.js";
import { findNatsServer, tcpProbe } from "../../src/util/net.js";

/** The nats-server the tests run; a missing one says how to install it. */
export function natsServerBin(): string {
  try {
    return findNatsServer();
  } catch (e) {
    throw new Error(`${(e as Error).message} (the tests need a real nats-server; \`npm test\` installs it when it can)`);
  }
}

export class NatsServer {
  readonly dir: string;
  readonly storeDir: string;
  port = -1;
  /** The WebSocket listener's port (start({ websocket: true }) only; -1 otherwise). */
  wsPort = -1;
  private websocket = false;
  /** start({ defaultMaxPayload: true }): no max_payload line, so the server's 1 MB default holds. */
  private defaultMaxPayload = false;
  private proc?: ChildProcess;
  /** Set while we stop the server on purpose; any other exit is reported (it explains a test's "connection refused"). */
  private stopping = false;

  private constructor(dir: string) {
    this.dir = dir;
    this.storeDir = join(dir, "jetstream");
  }

  static async start(o: { websocket?: boolean; defaultMaxPayload?: boolean } = {}): Promise<NatsServer> {
    const s = new NatsServer(mkdtempSync(join(tmpdir(), "flotilla-nats-")));
    s.websocket = o.websocket === true;
    s.defaultMaxPayload = o.defaultMaxPayload === true;
    await s.launch();
    return s;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** ws://127.0.0.1:<port> of the WebSocket listener (start({ websocket: true }) only). */
  get wsUrl(): string {
    return `ws://127.0.0.1:${this.wsPort}`;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  private async launch(): Promise<void> {
    const portsDir = join(this.dir, "ports");
    rmSync(portsDir, { recursive: true, force: true });
    const conf = join(this.dir, "nats.conf");
    writeFileSync(
      conf,
      [
        `listen: 127.0.0.1:${this.port}`,
        `ports_file_dir: "${portsDir}"`,
        `jetstream { store_dir: "${this.storeDir}" }`,
        ...(this.defaultMaxPayload ? [] : [`max_payload: 2MB`]),
        ...(this.websocket ? [`websocket { listen: "127.0.0.1:${this.wsPort}", no_tls: true }`] : []),
      ].join("\n") + "\n",
    );
    mkdirSync(portsDir, { recursive: true });
    const proc = spawn(natsServerBin(), ["-c", conf], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    proc.stderr?.on("data", (d) => {
      stderr = (stderr + String(d)).slice(-8000);
    });
    proc.once("exit", (code, signal) => {
      if (this.stopping) return;
      process.stderr.write(
        `\n*** nats-server pid ${proc.pid} (port ${this.port}, store ${this.storeDir}) exited unexpectedly ` +
          `(code ${code}, signal ${signal}); the tests of this file that need it will fail. Its last stderr:\n${stderr}\n`,
      );
    });
    this.proc = proc;
    await check(
      () => {
        if (proc.exitCode !== null) throw new Error(`nats-server exited with ${proc.exitCode}: ${stderr}`);
        const f = existsSync(portsDir) ? readdirSync(portsDir).find((n) => n.endsWith(".ports")) : undefined;
        if (!f) return false;
        const ports = JSON.parse(readFileSync(join(portsDir, f), "utf8")) as { nats: string[]; websocket?: string[] };
        const m = /:(\d+)$/.exec(ports.nats[0] ?? "");
        if (!m) return false;
        if (this.websocket) {
          const w = /:(\d+)$/.exec(ports.websocket?.[0] ?? "");
          if (!w) return false;
          this.wsPort = Number(w[1]);
        }
        this.port = Number(m[1]);
        return true;
      },
      10_000,
      "nats-server ports file",
    );
    await check(() => tcpProbe(this.port), 10_000, "nats-server TCP probe");
  }

  /** Stops the server (SIGTERM, then SIGKILL) and waits for it to exit. */
  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => p.once("exit", () => resolve()));
    this.stopping = true;
    p.kill(signal);
    const t = setTimeout(() => p.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(t);
  }

  /** Same port, same store. */
  async restart(): Promise<void> {
    await this.stop();
    this.stopping = false;
    await this.launch();
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

let counter = 0;
/** A prefix no other test uses, so tests never see each other's buckets or subjects. */
export function uniquePrefix(label = "t"): string {
  counter += 1;
  return `${label.replace(/[^A-Za-z0-9_-]/g, "")}-${process.pid}-${counter}-${Math.random().toString(36).slice(2, 7)}`;
}
