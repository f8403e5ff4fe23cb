// list-machines: every machine record in the `machines` bucket, sorted by ID. A value that is
// not a machine record (say, written by hand with `nats kv put`) is skipped with a log line.
//
// Read with STREAM.INFO (the keys) and pipelined direct gets (nats/kv-read.ts), not with an
// ordered consumer: in a JetStream cluster that lost a node, a third of consumer creates time out
// for as long as the node is away, while STREAM.INFO and direct gets keep answering.
import type { NatsConnection } from "@nats-io/nats-core";
import type { Logger } from "pino";
import { decodeAs } from "../protocol/codec.js";
import { describeError } from "../protocol/errors.js";
import { MachineRecord } from "../protocol/messages.js";
import { readBucket } from "../nats/kv-read.js";
import type { HandlerFactory } from "./handlers.js";

export async function listMachines(nc: NatsConnection, bucket: string, log: Logger): Promise<MachineRecord[]> {
  const out: MachineRecord[] = [];
  for (const { key, value } of await readBucket(nc, bucket, ">", { log })) {
    if (value.length === 0) continue;
    try {
      out.push(decodeAs(MachineRecord, value, `${bucket}/${key}`));
    } catch (err) {
      log.warn({ key }, `list-machines: skipping a bad record: ${describeError(err)}`);
    }
  }
  return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

export const machinesHandlers: HandlerFactory = (ctx) => ({
  "list-machines": async () => listMachines(ctx.nc, ctx.names.bucket("machines"), ctx.log),
});
