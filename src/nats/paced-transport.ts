// nats.js's Node transport, with its reads paced to the event loop.
//
// libuv reads a socket up to 32 times in one poll (64 KiB each), and nats.js parses every read
// at once, in microtasks, delivering each message to its subscription before the loop can turn.
// When a flood of watch deliveries arrives behind a busy moment (a 100,000 unit burst on the
// engine's units watch), the kernel has buffered megabytes, and their parsing holds the loop for
// 50-150 ms: lease renewals, heartbeats and API requests wait behind it (issue 10 item 3).
//
// This transport parses at most READ_BUDGET bytes per turn of the event loop, for all the
// process's connections together, and leaves the rest for the next turn. Reads still happen as
// fast as the socket delivers (the frames wait in memory, in order, as they would in the
// kernel); only the work they cause is spread across turns. Nothing else about the transport
// changes: the class is nats.js's own, with its frame loop (`iterate`) reimplemented.
import { NodeTransport, nodeResolveHost } from "@nats-io/transport-node/lib/node_transport.js";
import { NatsConnectionImpl, deferred, setTransportFactory } from "@nats-io/transport-node/lib/nats-base-client.js";
import type { ConnectionOptions, NatsConnection } from "@nats-io/nats-core";

/** Bytes of socket data parsed per turn of the event loop, across every connection (4 reads). */
export const READ_BUDGET = 256 * 1024;

/** The bytes parsed in this turn of the event loop; a setImmediate sets it back to 0. */
const turn = { spent: 0, resetting: false };
const reset = () => {
  turn.spent = 0;
  turn.resetting = false;
};
function charge(bytes: number): void {
  turn.spent += bytes;
  if (!turn.resetting) {
    turn.resetting = true;
    setImmediate(reset);
  }
}
/** Resolves in the next check phase, after the reset scheduled by `charge` (immediates run in order). */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** What the pacer did, for tests and benchmarks: the turns it gave back to the event loop. */
export const pacing = { deferrals: 0 };

export class PacedTransport extends NodeTransport {
  override async *iterate(): AsyncIterableIterator<Uint8Array> {
    for (;;) {
      if (this.yields.length === 0) await this.signal;
      const frames = this.yields;
      this.yields = [];
      for (let i = 0; i < frames.length; i++) {
        if (turn.spent >= READ_BUDGET) {
          pacing.deferrals++;
          await nextTurn();
        }
        const frame = frames[i]!;
        charge(frame.byteLength);
        yield frame;
      }
      if (this.done) break;
      // As nats.js does: frames that came while we yielded are taken on the next pass; else wait.
      if (this.yields.length === 0) {
        frames.length = 0;
        this.yields = frames;
        this.signal = deferred();
      }
    }
  }
}

/** transport-node's `connect`, with the paced transport. */
export function connectPaced(opts: ConnectionOptions): Promise<NatsConnection> {
  setTransportFactory({ factory: () => new PacedTransport(), dnsResolveFn: nodeResolveHost });
  return NatsConnectionImpl.connect(opts);
}
