// The bench's unit submitter, in its own process as real clients are: writes N unit records
// straight into the units bucket as JetStream publishes with acknowledgements gathered on one
// inbox (the same technique as src/engine/ack-publisher.ts). Prints "start <ms>" just before
// the first publish and "done <ms>" once every write is acknowledged (Date.now() clocks).
// Usage: node bench/submit-units.mjs URL BUCKET COUNT PREFIX [put|del]
// (del: deletes those units instead, as kv.delete() does: an empty message marked KV-Operation: DEL)
import { createHash } from "node:crypto";
import { connect } from "@nats-io/transport-node";
import { createInbox, headers } from "@nats-io/nats-core";
import { Packr } from "msgpackr";

const [url, bucket, countText, prefix, mode = "put"] = process.argv.slice(2);
const del = headers();
del.set("KV-Operation", "DEL");
const count = Number(countText);
const packr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true });
const contents = "[Unit]\nDescription=bench\n\n[Service]\nExecStart=/bin/sleep 600\n";
const hash = createHash("sha1").update(contents).digest("hex");
const nc = await connect({ servers: url });
const inbox = createInbox();
let acked = 0;
let failed = 0;
const WINDOW = 2048;
let inFlight = 0;
let wake;
const done = new Promise((resolve) => {
  nc.subscribe(`${inbox}.*`, {
    callback: (_err, msg) => {
      inFlight--;
      const ack = msg.data.length ? JSON.parse(new TextDecoder().decode(msg.data)) : {};
      if (!ack.error && typeof ack.seq === "number" && ack.seq > 0) acked++;
      else failed++;
      if (wake && inFlight < WINDOW / 2) {
        const w = wake;
        wake = undefined;
        w();
      }
      if (acked + failed === count) resolve();
    },
  });
});
// The records are encoded before the clock starts, as a client has its unit files ready: the
// figure is about the cluster taking them in, not about this process encoding them.
const now = Date.now();
const subjects = Array.from({ length: count }, (_, i) => `$KV.${bucket}.${prefix}${i}.service`);
const values = Array.from({ length: mode === "del" ? 0 : count }, (_, i) =>
  packr.pack({ name: `${prefix}${i}.service`, contents, hash, desiredState: "launched", version: 1, createdAt: now, updatedAt: now }),
);
await nc.flush();
process.stdout.write(`start ${Date.now()}\n`);
for (let i = 0; i < count; i++) {
  if (inFlight >= WINDOW) await new Promise((r) => (wake = r));
  inFlight++;
  if (mode === "del") nc.publish(subjects[i], new Uint8Array(0), { reply: `${inbox}.${i}`, headers: del });
  else nc.publish(subjects[i], values[i], { reply: `${inbox}.${i}` });
}
await done;
process.stdout.write(`done ${Date.now()} ${failed}\n`);
await nc.close();
