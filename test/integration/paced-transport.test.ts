// Our NATS connections parse at most READ_BUDGET bytes of socket data per turn of the event loop
// (src/nats/paced-transport.ts). nats.js parses all that one poll of the socket read, up to 32
// reads of 64 KiB, in one go: after a busy moment megabytes are waiting, and the engine's loop
// (lease renewals, heartbeats, API requests) stalled 50-150 ms behind their parsing. Counted in
// bytes per turn of the event loop, not in ms, so that a loaded machine cannot make it pass or fail.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { useNatsServer } from "../helpers/fixture.js";
import { check, perTurn } from "../helpers/check.js";
import { pacing, READ_BUDGET } from "../../src/nats/paced-transport.js";

const nats = useNatsServer();
const COUNT = 20_000;
const SIZE = 1024;

// A client of its own (nats.js as it comes), publishing COUNT messages of SIZE bytes, each
// starting with its index, then creating the file MARK once the server has taken them all.
const PUBLISHER = `
import { connect } from "@nats-io/transport-node";
import { writeFileSync } from "node:fs";
const [url, subject, count, size, mark] = process.argv.slice(1);
const nc = await connect({ servers: url });
process.stdout.write("ready\\n");
for (let i = 0; i < Number(count); i++) {
  // nats.js keeps the payload until it writes it out: one buffer each.
  const body = new Uint8Array(Number(size));
  new DataView(body.buffer).setUint32(0, i);
  nc.publish(subject, body);
}
await nc.flush();
writeFileSync(mark, "sent");
await nc.close();
`;

describe("paced NATS reads", () => {
  it(`a flood that waited behind a blocked event loop is parsed at most ${READ_BUDGET / 1024} KiB per turn, all of it, in order`, async () => {
    const subject = "flood.paced";
    let bytes = 0;
    let outOfOrder = 0;
    let next = 0;
    const sub = nats.nc.subscribe(subject, {
      callback: (_err, m) => {
        bytes += m.data.length;
        if (new DataView(m.data.buffer, m.data.byteOffset).getUint32(0) !== next) outOfOrder++;
        next++;
      },
    });
    await nats.nc.flush();

    const turns = perTurn(() => bytes);

    const deferrals = pacing.deferrals;
    const mark = join(mkdtempSync(join(tmpdir(), "flood-")), "sent");
    const child = spawn(process.execPath, ["--input-type=module", "-e", PUBLISHER, nats.server.url, subject, String(COUNT), String(SIZE), mark], {
      cwd: process.cwd(),
      stdio: ["ignore", "pipe", "inherit"],
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
    await new Promise<void>((resolve) => child.stdout!.on("data", (d) => String(d).includes("ready") && resolve()));
    // Hold the event loop until the publisher has sent it all: the flood waits in the socket (and
    // in the server), as it does behind a long round. Polled synchronously, with a deadline.
    const deadline = Date.now() + 20_000;
    while (!existsSync(mark)) {
      if (Date.now() > deadline) throw new Error("the publisher did not finish within 20 s");
    }
    await check(() => next === COUNT, 30_000, `all ${COUNT} messages (got ${next})`);
    const { worst } = turns.stop();
    expect(await exited).toBe(0);
    sub.unsubscribe();

    expect(outOfOrder).toBe(0);
    expect(bytes).toBe(COUNT * SIZE);
    // The flood was there to pace: the reader gave turns back.
    expect(pacing.deferrals - deferrals).toBeGreaterThan(0);
    // A turn of this sampler spans the poll phase and the check phase: the budget once in each,
    // and the socket read that went over it (64 KiB at most) in each.
    expect(worst, `bytes parsed between two turns: ${worst}`).toBeLessThanOrEqual(2 * READ_BUDGET + 2 * 64 * 1024);
  });
});
