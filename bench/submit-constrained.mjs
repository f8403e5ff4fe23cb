// The bench's submitter of fleet-shaped units (issue 10), in its own process as a client is:
// like submit-units.mjs, but each unit carries an [X-Fleet] section by workload:
//   conflicts  groups of 10: <p>g<k>-<j>.service, Conflicts=<p>g<k>-*  (fleet's replica spread)
//   machineof  half the units follow a peer: <p>side-g<k>-<j>.service, MachineOf=<p>g<k>-<j-1>.service
//   metadata   each unit wants one region (r0|r1|r2), one in four also disk=ssd
//   mixed      leaders: Conflicts, one region (some disk=ssd), 1 in 20 with CPU=0.25 and Memory=64M;
//              followers: MachineOf their leader
//   plain      no [X-Fleet] section, the same names as conflicts
// Prints "start <ms>" before the first publish and "done <ms> <failed>" once all are acknowledged.
// Usage: node bench/submit-constrained.mjs URL BUCKET COUNT PREFIX WORKLOAD
import { createHash } from "node:crypto";
import { connect } from "@nats-io/transport-node";
import { createInbox } from "@nats-io/nats-core";
import { Packr } from "msgpackr";

const [url, bucket, countText, prefix, workload] = process.argv.slice(2);
const count = Number(countText);
const packr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true });
const BASE = "[Unit]\nDescription=bench\n\n[Service]\nExecStart=/bin/sleep 600\n";

/** Name and [X-Fleet] lines of unit i of a workload (exported for the bench's expectations). */
export function unitOf(workload, prefix, i) {
  const g = `${prefix}g${Math.floor(i / 10)}`;
  const j = i % 10;
  const follower = (workload === "machineof" || workload === "mixed") && j % 2 === 1;
  const name = follower ? `${prefix}side-g${Math.floor(i / 10)}-${j}.service` : `${g}-${j}.service`;
  const fleet = [];
  if (follower) fleet.push(`MachineOf=${g}-${j - 1}.service`);
  else {
    if (workload === "conflicts" || workload === "mixed") fleet.push(`Conflicts=${g}-*`);
    if (workload === "metadata" || workload === "mixed") {
      fleet.push(`MachineMetadata=region=r${i % 3}`);
      if (i % 4 === 0) fleet.push("MachineMetadata=disk=ssd");
    }
  }
  if (workload === "mixed" && !follower && i % 20 === 0) fleet.push("CPU=0.25", "Memory=64M");
  const contents = fleet.length ? `${BASE}\n[X-Fleet]\n${fleet.join("\n")}\n` : BASE;
  return { name, contents };
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split("/").pop())) {
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
  const now = Date.now();
  const subjects = [];
  const values = [];
  for (let i = 0; i < count; i++) {
    const { name, contents } = unitOf(workload, prefix, i);
    const hash = createHash("sha1").update(contents).digest("hex");
    subjects.push(`$KV.${bucket}.${name}`);
    values.push(packr.pack({ name, contents, hash, desiredState: "launched", version: 1, createdAt: now, updatedAt: now }));
  }
  await nc.flush();
  process.stdout.write(`start ${Date.now()}\n`);
  for (let i = 0; i < count; i++) {
    if (inFlight >= WINDOW) await new Promise((r) => (wake = r));
    inFlight++;
    nc.publish(subjects[i], values[i], { reply: `${inbox}.${i}` });
  }
  await done;
  process.stdout.write(`done ${Date.now()} ${failed}\n`);
  await nc.close();
}
