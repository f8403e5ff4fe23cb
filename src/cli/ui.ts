// `flotilla ui`: serves the statechart visualizer and cluster dashboard, a static page built
// into dist/ui/ (scripts/build-ui.mjs, from ui/), plus /config.json telling the page where
// NATS's WebSocket listener is. The page speaks NATS itself (API verbs by request/reply,
// inspection from the inspect stream and live subjects): this server keeps no state. Loopback
// by default; every response carries a Content-Security-Policy that lets the page reach only
// its own origin and that one WebSocket, so nothing is fetched from anywhere else.
//
// /probe.json answers the page's "why can I not connect?": whether anything listens on the
// WebSocket address and on the NATS client address, which tells "nats-server is down" from
// "nats-server runs without a websocket block".
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { readFile, stat } from "node:fs/promises";
import { connect as tcpConnect } from "node:net";
import { dirname, extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";
import type { CommandRegistrar } from "./main.js";
import { FlotillaError } from "../protocol/errors.js";

export const DEFAULT_UI_LISTEN = "127.0.0.1:8223";
export const DEFAULT_NATS_WS = "ws://127.0.0.1:9222";

/** dist/ui/, next to dist/cli/ where this file is compiled to. */
export const UI_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "ui");

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".map": "application/json; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
};

export interface UiServerOptions {
  /** host:port; port 0 picks a free one. */
  listen: string;
  wsUrl: string;
  prefix: string;
  /** The NATS client URL the CLI would use (only probed, never given to the page). */
  natsUrl?: string;
  root?: string;
}

export interface UiServer {
  url: string;
  server: Server;
  close(): Promise<void>;
}

export function parseListen(v: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(v.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || !Number.isInteger(port) || port > 65535) {
    throw new FlotillaError("bad_flag", `--listen: "${v}" is not host:port (for example ${DEFAULT_UI_LISTEN})`, { field: "listen", value: v });
  }
  return { host: m[1] ?? m[2]!, port };
}

export function parseWsUrl(v: string): URL {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new FlotillaError("bad_flag", `--nats-ws: "${v}" is not a URL (for example ${DEFAULT_NATS_WS})`, { field: "nats-ws", value: v });
  }
  if (u.protocol !== "ws:" && u.protocol !== "wss:") {
    throw new FlotillaError("bad_flag", `--nats-ws: "${v}" must be a ws:// or wss:// URL of nats-server's websocket listener`, {
      field: "nats-ws",
      value: v,
    });
  }
  return u;
}

/** The CSP of every response: own origin, plus the one NATS WebSocket for connect-src. */
export function contentSecurityPolicy(wsUrl: URL): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    `connect-src 'self' ${wsUrl.protocol}//${wsUrl.host}`,
    "worker-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
}

function probe(host: string, port: number, ms = 1500): Promise<boolean> {
  return new Promise((r) => {
    const s = tcpConnect({ host, port });
    const t = setTimeout(() => {
      s.destroy();
      r(false);
    }, ms);
    s.once("connect", () => {
      clearTimeout(t);
      s.end();
      r(true);
    });
    s.once("error", () => {
      clearTimeout(t);
      r(false);
    });
  });
}

function hostPortOf(u: URL, defPort: number): { host: string; port: number } {
  return { host: u.hostname.replace(/^\[|\]$/g, ""), port: u.port ? Number(u.port) : defPort };
}

export async function startUiServer(o: UiServerOptions): Promise<UiServer> {
  const { host, port } = parseListen(o.listen);
  const ws = parseWsUrl(o.wsUrl);
  const root = o.root ?? UI_ROOT;
  const csp = contentSecurityPolicy(ws);
  const config = JSON.stringify({ wsUrl: o.wsUrl, prefix: o.prefix });
  const natsUrl = (o.natsUrl ?? "").split(",")[0]?.trim();

  const send = (res: ServerResponse, status: number, type: string, body: string | Buffer, cache = "no-cache") => {
    res.writeHead(status, {
      "Content-Type": type,
      "Content-Security-Policy": csp,
      "X-Content-Type-Options": "nosniff",
      "Referrer-Policy": "no-referrer",
      "Cache-Control": cache,
    });
    res.end(body);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    if (req.method !== "GET" && req.method !== "HEAD") return send(res, 405, TYPES[".txt"]!, "only GET\n");
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    if (path === "/config.json") return send(res, 200, TYPES[".json"]!, config, "no-store");
    if (path === "/probe.json") {
      const w = hostPortOf(ws, ws.protocol === "wss:" ? 443 : 80);
      let nats: boolean | null = null;
      if (natsUrl) {
        try {
          const n = hostPortOf(new URL(natsUrl.includes("://") ? natsUrl : `nats://${natsUrl}`), 4222);
          nats = await probe(n.host, n.port);
        } catch {
          nats = null;
        }
      }
      const body = { wsUrl: o.wsUrl, ws: await probe(w.host, w.port), natsUrl: natsUrl || null, nats };
      return send(res, 200, TYPES[".json"]!, JSON.stringify(body), "no-store");
    }
    const rel = path === "/" ? "index.html" : path.replace(/^\/+/, "");
    const file = normalize(join(root, rel));
    if (!file.startsWith(normalize(root) + sep)) return send(res, 404, TYPES[".txt"]!, "not found\n");
    try {
      const st = await stat(file);
      if (!st.isFile()) throw new Error("not a file");
      const body = await readFile(file);
      return send(res, 200, TYPES[extname(file)] ?? "application/octet-stream", body);
    } catch {
      if (rel === "index.html") {
        return send(
          res,
          503,
          TYPES[".txt"]!,
          `The UI is not built: ${join(root, "index.html")} is missing. Run \`npm run build\` in the flotilla checkout.\n`,
        );
      }
      return send(res, 404, TYPES[".txt"]!, "not found\n");
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) send(res, 500, TYPES[".txt"]!, "internal error\n");
      else res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) => {
      reject(
        e.code === "EADDRINUSE"
          ? new FlotillaError("bad_flag", `--listen ${o.listen}: the address is in use (another flotilla ui?); choose another with --listen`, {
              field: "listen",
              value: o.listen,
            })
          : new FlotillaError("bad_flag", `--listen ${o.listen}: ${e.message}`, { field: "listen", value: o.listen }),
      );
    });
    server.listen(port, host, () => resolve());
  });
  const addr = server.address();
  const actualPort = typeof addr === "object" && addr ? addr.port : port;
  const shownHost = host.includes(":") ? `[${host}]` : host;
  return {
    url: `http://${shownHost}:${actualPort}/`,
    server,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\./.test(host);
}

export const registerUi: CommandRegistrar = (program, globals) => {
  program
    .command("ui")
    .description("serve the statechart visualizer and cluster dashboard (a static page that speaks NATS over WebSocket)")
    .option("--listen <host:port>", "where the page is served (loopback by default)", DEFAULT_UI_LISTEN)
    .option("--nats-ws <url>", "nats-server's WebSocket listener, as the browser reaches it", DEFAULT_NATS_WS)
    .action(async (o: { listen: string; natsWs: string }) => {
      const g = globals();
      const ui = await startUiServer({ listen: o.listen, wsUrl: o.natsWs, prefix: g.prefix, natsUrl: g.url });
      if (!isLoopback(parseListen(o.listen).host)) {
        process.stderr.write(
          `warning: the UI listens on ${o.listen}, beyond this host; anyone who reaches it can act on the cluster through the page\n`,
        );
      }
      process.stdout.write(`flotilla ui: ${ui.url}  (NATS WebSocket ${o.natsWs}, prefix ${g.prefix}); Ctrl-C to stop\n`);
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off("SIGINT", stop);
          process.off("SIGTERM", stop);
          void ui.close().then(resolve);
        };
        process.on("SIGINT", stop);
        process.on("SIGTERM", stop);
      });
    });
};

/**
 * The dashboard of `flotilla up`, served from the same process: the cluster's own WebSocket
 * port, loopback. An address already taken (another `up`, a `flotilla ui`) is said, not fatal.
 */
export async function startUpUi(o: { listen: string; wsPort: number; prefix: string; natsUrl: string }): Promise<{ line: string; close(): Promise<void> }> {
  try {
    const ui = await startUiServer({ listen: o.listen, wsUrl: `ws://127.0.0.1:${o.wsPort}`, prefix: o.prefix, natsUrl: o.natsUrl });
    return { line: `  dashboard: ${ui.url}  (statecharts, units, machines; flotilla ui)`, close: () => ui.close() };
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    return {
      line: `  dashboard: not started (${why}); run \`flotilla ui --nats-ws ws://127.0.0.1:${o.wsPort} --listen 127.0.0.1:<port>\` yourself`,
      close: async () => undefined,
    };
  }
}
