// The page's wording of connection and request failures (ui/lib/errors.ts).
import { describe, expect, it } from "vitest";
import { connectProblem, requestProblem } from "../../ui/lib/errors.js";

describe("errors a person understands", () => {
  const ws = "ws://127.0.0.1:9222";
  it("nothing listens at all: NATS is unreachable, with the URL and what to start", () => {
    const p = connectProblem(ws, "connection refused", { wsUrl: ws, ws: false, natsUrl: "nats://127.0.0.1:4222", nats: false });
    expect(p.title).toBe("NATS is unreachable at ws://127.0.0.1:9222");
    expect(p.detail).toContain("nothing on nats://127.0.0.1:4222 either");
    expect(p.fix).toContain('websocket { listen: "127.0.0.1:9222", no_tls: true }');
  });
  it("the NATS port answers but the WebSocket one does not: the option to set", () => {
    const p = connectProblem(ws, "connection refused", { wsUrl: ws, ws: false, natsUrl: "nats://127.0.0.1:4222", nats: true });
    expect(p.title).toBe("nats-server has no WebSocket listener");
    expect(p.fix).toMatch(/^Add to nats-server's config and restart it: websocket \{ listen: "127\.0\.0\.1:9222", no_tls: true \}/);
  });
  it("something listens but the handshake fails; no probe at all", () => {
    expect(connectProblem(ws, "bad frame", { wsUrl: ws, ws: true, natsUrl: null, nats: null }).detail).toContain("the NATS handshake failed: bad frame");
    expect(connectProblem(ws, "boom", null)).toEqual({ title: "NATS is unreachable at ws://127.0.0.1:9222", detail: "boom" });
  });
  it("requests: the API's own error as it gave it, no responders, timeouts", () => {
    expect(requestProblem("p", "stop", { name: "ApiError", code: "unknown_unit", message: "unit x does not exist" })).toEqual({
      title: "stop: unknown_unit",
      detail: "unit x does not exist",
    });
    expect(requestProblem("p", "list-machines", { name: "NoRespondersError", message: "503" }).title).toBe("No flotilla daemon answers p.api.list-machines");
    expect(requestProblem("p", "status", { name: "TimeoutError", message: "TIMEOUT" }).title).toBe("status: no answer in time");
  });
});
