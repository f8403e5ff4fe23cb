// Errors a person understands: what went wrong, in words, and what to do about it.
export interface Problem {
  title: string;
  detail: string;
  /** What to change, when we know (a config line, a flag). */
  fix?: string;
}

export interface Probe {
  wsUrl: string;
  /** Something accepts TCP connections at the WebSocket address. */
  ws: boolean;
  natsUrl: string | null;
  /** Something accepts TCP connections at the NATS client address (null: not probed). */
  nats: boolean | null;
}

function wsListen(wsUrl: string): string {
  try {
    const u = new URL(wsUrl);
    return `${u.hostname}:${u.port || (u.protocol === "wss:" ? 443 : 80)}`;
  } catch {
    return "127.0.0.1:9222";
  }
}

/** Why the page could not connect to NATS over WebSocket, from what /probe.json found. */
export function connectProblem(wsUrl: string, err: string, probe: Probe | null): Problem {
  const block = `websocket { listen: "${wsListen(wsUrl)}", no_tls: true }`;
  if (probe && !probe.ws && probe.nats) {
    return {
      title: "nats-server has no WebSocket listener",
      detail: `nats-server answers at ${probe.natsUrl}, but nothing listens on ${wsUrl}. The page speaks NATS over WebSocket, which nats-server only offers when its config has a websocket block.`,
      fix: `Add to nats-server's config and restart it: ${block}  (flotilla up's nats.conf has one), or start flotilla ui with --nats-ws set to the listener you have.`,
    };
  }
  if (probe && !probe.ws) {
    return {
      title: `NATS is unreachable at ${wsUrl}`,
      detail: `Nothing listens on ${wsUrl}${probe.natsUrl ? ` and nothing on ${probe.natsUrl} either` : ""}: nats-server is not running, or runs elsewhere.`,
      fix: `Start nats-server (flotilla up starts one), make sure its config has ${block}, or give flotilla ui the right --nats-ws.`,
    };
  }
  if (probe && probe.ws) {
    return {
      title: `NATS refused the WebSocket connection at ${wsUrl}`,
      detail: `Something listens on ${wsUrl} but the NATS handshake failed: ${err}. It may not be nats-server's websocket listener, expect TLS (wss://), or need credentials.`,
      fix: `Check the listener in nats-server's config (${block}) and the --nats-ws flag of flotilla ui.`,
    };
  }
  return { title: `NATS is unreachable at ${wsUrl}`, detail: err };
}

/** An API verb's failure as the API gave it ({"error":{"code","message"}}), or the transport's. */
export function requestProblem(prefix: string, verb: string, e: { name?: string; message?: string; code?: string }): Problem {
  const msg = e.message ?? String(e);
  if (e.code && e.code !== "TIMEOUT" && e.name === "ApiError") return { title: `${verb}: ${e.code}`, detail: msg };
  if (/no responders/i.test(msg) || e.name === "NoRespondersError") {
    return {
      title: `No flotilla daemon answers ${prefix}.api.${verb}`,
      detail: `No daemon of the cluster with prefix "${prefix}" is connected to this NATS (or none serves the API).`,
      fix: "Start a daemon (flotilla daemon, or flotilla up), or open the page with the right prefix (flotilla --prefix … ui).",
    };
  }
  if (/timeout/i.test(msg) || e.name === "TimeoutError") {
    return { title: `${verb}: no answer in time`, detail: `The request on ${prefix}.api.${verb} timed out; the daemon may be busy or partitioned from NATS.` };
  }
  if (/permission/i.test(msg)) return { title: `${verb}: permission denied`, detail: msg, fix: "These NATS credentials may not use this verb." };
  return { title: `${verb} failed`, detail: msg };
}
