// nats.js's Node transport, with its reads paced to the event loop.
//
// libuv reads a socket up to 32 times in one poll (64 KiB each), and nats.js parses every read
// at once, in microtasks, delivering each message to its subscription before the loop can turn.
// When a flood of watch deliveries arrives behind a busy moment (a 100,000 unit burst on the
// engine's units watch), the kernel has buffered megabytes, and their parsing holds the loop for
// 50-150 ms: lease renewals, heartbeats and API requests wait behind it (issue 10 item 3).
//
// This transport hands the parser a read in pieces of at most PIECE bytes, and gives the event
// loop a turn once READ_BUDGET bytes or TURN_MS of parsing (and of what the messages set off)
// went by in this turn, for all the process's connections together. Time counts too: code not
// yet optimised, or a garbage collector marking a big heap inside our allocations, made 256 KiB
// take 50-90 ms. Reads still happen as fast as the socket delivers (the frames wait in memory,
// in order, as they would in the kernel); only the work they cause is spread across turns. The
// parser takes data cut anywhere (TCP cuts it anywhere too). Nothing else about the transport
// changes: the class is nats.js's own, with its frame loop (`iterate`) reimplemented.
import { NodeTransport, nodeResolveHost } from "@nats-io/transport-node/lib/node_transport.js";
import { NatsConnectionImpl, deferred, setTransportFactory } from "@nats-io/transport-node/lib/nats-base-client.js";
import type { ConnectionOptions, NatsConnection } from "@nats-io/nats-core";

/** Bytes of socket data parsed per turn of the event loop, across every connection (4 reads). */
export const READ_BUDGET = 256 * 1024;
/** Time spent parsing (and in the subscriptions' callbacks) per turn of the event loop. */
export const TURN_MS = 5;
/** The most the parser is handed at once: the clock is read between pieces. */
export const PIECE = 16 * 1024;

/** This turn of the event loop: bytes parsed, since when; a setImmediate starts the next. */
const turn = { spent: 0, since: 0, open: false };
const reset = () => {
  turn.spent = 0;
  turn.open = false;
};
function charge(bytes: number): void {
  if (!turn.open) {
    turn.open = true;
    turn.since = performance.now();
    setImmediate(reset);
  }
  turn.spent += bytes;
}
const used = () => turn.open && (turn.spent >= READ_BUDGET || performance.now() - turn.since >= TURN_MS);
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
        const frame = frames[i]!;
        for (let at = 0; at < frame.byteLength; at += PIECE) {
          if (used()) {
            pacing.deferrals++;
            await nextTurn();
          }
          const piece = at === 0 && frame.byteLength <= PIECE ? frame : frame.subarray(at, at + PIECE);
          charge(piece.byteLength);
          yield piece;
        }
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
