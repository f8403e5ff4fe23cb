// Local process and port helpers shared by `flotilla up`, the benches and the test harness.
import { spawnSync } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { createServer, connect as tcpConnect } from "node:net";
import { delimiter, join } from "node:path";
import { FlotillaError } from "../protocol/errors.js";

/** The nats-server binary: $NATS_SERVER_BIN, else PATH plus the sbin dirs where Debian puts it. */
export function findNatsServer(env: NodeJS.ProcessEnv = process.env): string {
  if (env.NATS_SERVER_BIN) {
    if (spawnSync(env.NATS_SERVER_BIN, ["--version"]).status === 0) return env.NATS_SERVER_BIN;
    throw new FlotillaError("bad_config", `NATS_SERVER_BIN=${env.NATS_SERVER_BIN} does not run`, {
      field: "NATS_SERVER_BIN",
      value: env.NATS_SERVER_BIN,
    });
  }
  const dirs = (env.PATH ?? "").split(delimiter).concat(["/usr/sbin", "/usr/local/bin", "/usr/local/sbin", "/sbin"]);
  for (const d of dirs) {
    if (!d) continue;
    const p = join(d, "nats-server");
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  throw new FlotillaError(
    "bad_config",
    "nats-server not found. Install it: `sudo apt-get install nats-server` (Debian/Ubuntu), `brew install nats-server` " +
      "(macOS), or set NATS_SERVER_BIN=/path/to/nats-server. `npm run up` installs it when it can.",
    { field: "nats-server" },
  );
}

export function portFree(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolvePort) => {
    const s = createServer();
    s.once("error", () => resolvePort(false));
    s.listen(port, host, () => s.close(() => resolvePort(true)));
  });
}

export function tcpProbe(port: number): Promise<boolean> {
  return new Promise((r) => {
    const s = tcpConnect({ host: "127.0.0.1", port }, () => {
      s.end();
      r(true);
    });
    s.on("error", () => r(false));
  });
}
