// A real nats-server whose config includes the users of `flotilla auth init` (and optionally a
// TLS block), logging to a file so a test can assert that no "Permissions Violation" (or that
// exactly the expected ones) happened. Same readiness rule as nats-server.ts: ports file + TCP.
import { spawn, type ChildProcess } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { check } from "./check.js";
import { natsServerBin } from "./nats-server.js";
import { tcpProbe } from "../../src/util/net.js";

export class AuthNatsServer {
  port = -1;
  private proc?: ChildProcess;
  readonly logFile: string;

  private constructor(
    readonly dir: string,
    private readonly extra: string[],
  ) {
    this.logFile = join(dir, "nats-server.log");
  }

  /** `authConf`: path of the generated auth.conf; `extra`: more config lines (a tls block). */
  static async start(authConf: string, extra: string[] = []): Promise<AuthNatsServer> {
    const dir = mkdtempSync(join(tmpdir(), "flotilla-auth-nats-"));
    // nats-server resolves an include relative to the including file, even an absolute path.
    const s = new AuthNatsServer(dir, [`include "${relative(dir, authConf)}"`, ...extra]);
    await s.launch();
    return s;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** Every line of the server log that reports a refused publish or subscribe. */
  violations(): string[] {
    if (!existsSync(this.logFile)) return [];
    return readFileSync(this.logFile, "utf8")
      .split("\n")
      .filter((l) => /violation/i.test(l) && !/authorization violation/i.test(l));
  }

  private async launch(): Promise<void> {
    const portsDir = join(this.dir, "ports");
    rmSync(portsDir, { recursive: true, force: true });
    mkdirSync(portsDir, { recursive: true });
    const conf = join(this.dir, "nats.conf");
    writeFileSync(
      conf,
      [
        `listen: 127.0.0.1:${this.port}`,
        `ports_file_dir: "${portsDir}"`,
        `jetstream { store_dir: "${join(this.dir, "jetstream")}" }`,
        `max_payload: 2MB`,
        `log_file: "${this.logFile}"`,
        // FLOTILLA_AUTH_TRACE=<file>: every PUB/SUB into the log, copied to <file> at dispose
        // (how the lists of src/auth/roles.ts were checked against what the code really does).
        ...(process.env.FLOTILLA_AUTH_TRACE ? ["trace: true"] : []),
        ...this.extra,
      ].join("\n") + "\n",
    );
    const proc = spawn(natsServerBin(), ["-c", conf], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    proc.stderr?.on("data", (d) => (stderr = (stderr + String(d)).slice(-8000)));
    this.proc = proc;
    await check(
      () => {
        if (proc.exitCode !== null) throw new Error(`nats-server exited with ${proc.exitCode}: ${stderr} ${existsSync(this.logFile) ? readFileSync(this.logFile, "utf8").slice(-2000) : ""}`);
        const f = readdirSync(portsDir).find((n) => n.endsWith(".ports"));
        if (!f) return false;
        const m = /:(\d+)$/.exec((JSON.parse(readFileSync(join(portsDir, f), "utf8")) as { nats: string[] }).nats[0] ?? "");
        if (!m) return false;
        this.port = Number(m[1]);
        return true;
      },
      10_000,
      "nats-server ports file",
    );
    await check(() => tcpProbe(this.port), 10_000, "nats-server TCP probe");
  }

  /** Re-reads the config (users added with add-machine): nats-server --signal reload=<pid>. */
  reload(): void {
    this.proc?.kill("SIGHUP");
  }

  async dispose(): Promise<void> {
    const p = this.proc;
    if (p && p.exitCode === null && p.signalCode === null) {
      const exited = new Promise<void>((r) => p.once("exit", () => r()));
      p.kill("SIGTERM");
      const t = setTimeout(() => p.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(t);
    }
    if (process.env.FLOTILLA_AUTH_TRACE && existsSync(this.logFile)) copyFileSync(this.logFile, process.env.FLOTILLA_AUTH_TRACE);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
