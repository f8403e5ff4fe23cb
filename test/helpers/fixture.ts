// The per-file test setup in one place: a real nats-server for the file and a connection to
// it, started in beforeAll and stopped in afterAll. Call at the top level of a test file.
import { afterAll, beforeAll } from "vitest";
import type { NatsConnection } from "@nats-io/nats-core";
import { NatsServer } from "./nats-server.js";
import { connectOnce } from "../../src/nats/connection.js";

export interface NatsFixture {
  /** The file's nats-server (valid from beforeAll on). */
  readonly server: NatsServer;
  /** A connection to it, closed in afterAll. */
  readonly nc: NatsConnection;
  /** One more connection (as a second daemon would have), closed in afterAll. */
  connect(): Promise<NatsConnection>;
  /** Runs fn in afterAll before the connections close and the server stops (last added, first run). */
  defer(fn: () => unknown): void;
}

export function useNatsServer(): NatsFixture {
  let server: NatsServer | undefined;
  const conns: NatsConnection[] = [];
  const deferred: (() => unknown)[] = [];
  const ready = <T>(v: T | undefined, what: string): T => {
    if (v === undefined) throw new Error(`useNatsServer: ${what} is used before beforeAll ran`);
    return v;
  };
  const fixture: NatsFixture = {
    get server() {
      return ready(server, "the server");
    },
    get nc() {
      return ready(conns[0], "the connection");
    },
    async connect() {
      const nc = await connectOnce({ url: ready(server, "the server").url });
      conns.push(nc);
      return nc;
    },
    defer(fn) {
      deferred.push(fn);
    },
  };
  beforeAll(async () => {
    server = await NatsServer.start();
    await fixture.connect();
  });
  afterAll(async () => {
    for (const fn of deferred.splice(0).reverse()) await fn();
    for (const nc of conns.splice(0)) await nc.close();
    await server?.dispose();
  });
  return fixture;
}
