// list-machines: every machine record in the `machines` bucket, sorted by ID. A value that is
// not a machine record (say, written by hand with `nats kv put`) is skipped with a log line.
//
// Read with one ordered consumer delivering the last value per key: keys() plus a get per key
// costs two round trips per machine and ~250 ms for 1,000 machines; this is one stream read.
import type { NatsConnection } from "@nats-io/nats-core";
import { DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { Logger } from "pino";
import { decodeAs } from "../protocol/codec.js";
import { describeError } from "../protocol/errors.js";
import { MachineRecord } from "../protocol/messages.js";
import type { HandlerFactory } from "./handlers.js";

/**
 * The read ends at pending 0. When the key that would have been last expires (bucket TTL)
 * before it is delivered, pending never reaches 0 on a message: a second without a message ends
 * the read instead (kv.keys() hangs forever in that case), and nothing takes longer than the bound.
 */
const IDLE_END_MS = 1000;
const READ_BOUND_MS = 5000;

export async function readLastValues(nc: NatsConnection, bucket: string): Promise<Map<string, Uint8Array>> {
  const stream = `KV_${bucket}`;
  const prefix = `$KV.${bucket}.`;
  const out = new Map<string, Uint8Array>();
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(stream);
  if (info.state.messages === 0) return out;
  const js = jetstream(nc);
  const consumer = await js.consumers.get(stream, {
    filter_subjects: `${prefix}>`,
    deliver_policy: DeliverPolicy.LastPerSubject,
  });
  const messages = await consumer.consume({ max_messages: 2048, idle_heartbeat: 1000 });
  const bound = setTimeout(() => messages.stop(), READ_BOUND_MS);
  let idle = setTimeout(() => messages.stop(), IDLE_END_MS);
  try {
    for await (const m of messages) {
      clearTimeout(idle);
      idle = setTimeout(() => messages.stop(), IDLE_END_MS);
      const op = m.headers?.get("KV-Operation");
      const key = m.subject.slice(prefix.length);
      if (op === "DEL" || op === "PURGE") out.delete(key);
      else out.set(key, m.data);
      if (m.info.pending === 0) break;
    }
  } finally {
    clearTimeout(bound);
    clearTimeout(idle);
    messages.stop();
  }
  return out;
}

export async function listMachines(nc: NatsConnection, bucket: string, log: Logger): Promise<MachineRecord[]> {
  const values = await readLastValues(nc, bucket);
  const out: MachineRecord[] = [];
  for (const [key, value] of values) {
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
