// A TCP proxy on loopback that carries what the server sends at a fixed rate (what the client
// sends passes at once): a slow or saturated link between one client and nats-server, for tests
// of what a component does while a replay takes seconds. The server sees its data taken at once
// (it sits in the proxy, as it would in a network's buffers).
import { createServer, connect, type Server, type Socket } from "node:net";

export class ThrottleProxy {
  private constructor(
    private readonly server: Server,
    private readonly sockets: Set<Socket>,
    readonly port: number,
  ) {}

  /** Listens on a random loopback port and forwards to 127.0.0.1:upstreamPort. */
  /** Bytes a second the server's side is carried at; changed with setRate() (all connections). */
  private static rates = new WeakMap<ThrottleProxy, { bps: number }>();

  /** Carries the server's side at this rate from now on. */
  setRate(bytesPerSecond: number): void {
    ThrottleProxy.rates.get(this)!.bps = bytesPerSecond;
  }

  static async start(upstreamPort: number, bytesPerSecond: number): Promise<ThrottleProxy> {
    const rate = { bps: bytesPerSecond };
    const sockets = new Set<Socket>();
    const server = createServer((client) => {
      const upstream = connect(upstreamPort, "127.0.0.1");
      sockets.add(client).add(upstream);
      const queue: Buffer[] = [];
      // Backpressure: past HIGH bytes waiting, stop reading from the server (TCP then pushes back
      // on it, as a saturated link does), and read again below LOW.
      const HIGH = 256 * 1024;
      const LOW = 64 * 1024;
      let queued = 0;
      const tickMs = 20;
      const perTick = () => Math.max(1, Math.floor((rate.bps * tickMs) / 1000));
      const timer = setInterval(() => {
        let budget = perTick();
        while (budget > 0 && queue.length) {
          const head = queue[0]!;
          if (head.length <= budget) {
            queue.shift();
            budget -= head.length;
            queued -= head.length;
            client.write(head);
          } else {
            client.write(head.subarray(0, budget));
            queue[0] = head.subarray(budget);
            queued -= budget;
            budget = 0;
          }
        }
        if (queued < LOW && upstream.isPaused()) upstream.resume();
      }, tickMs);
      const close = () => {
        clearInterval(timer);
        sockets.delete(client);
        sockets.delete(upstream);
        client.destroy();
        upstream.destroy();
      };
      client.on("data", (d) => upstream.write(d));
      upstream.on("data", (d) => {
        queue.push(d);
        queued += d.length;
        if (queued > HIGH) upstream.pause();
      });
      client.on("close", close).on("error", close);
      upstream.on("close", close).on("error", close);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as { port: number }).port;
    const p = new ThrottleProxy(server, sockets, port);
    ThrottleProxy.rates.set(p, rate);
    return p;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
