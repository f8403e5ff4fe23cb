// Nothing a task prints is lost while NATS is away (for less than the journal's limits): the
// tailer publishes with JetStream acknowledgement, keeps as sent only what was acknowledged and
// resends from there, and a journal stream that is gone is created again. A real task writes
// numbered lines every 50 ms; the journal must then hold every number exactly once, in order.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { existsSync, readFileSync, statSync } from "node:fs";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { NatsServer, uniquePrefix } from "../helpers/nats-server.js";
import { check } from "../helpers/check.js";
import { agentHost, hostContext, killStateDirWorkloads, readState, schedule, type AgentHost } from "../helpers/agent-host.js";
import { createAgent } from "../../src/agent/agent.js";
import { logFileOf } from "../../src/exec/process-executor.js";
import { WorkerStore } from "../../src/agent/worker-store.js";

let server: NatsServer;
const hosts: AgentHost[] = [];

beforeAll(async () => {
  server = await NatsServer.start();
});

afterAll(async () => {
  for (const h of hosts) {
    await h.close().catch(() => undefined);
    killStateDirWorkloads(h.stateDir);
  }
  await server?.dispose();
});

const LOOP = "i=0; while :; do i=$$((i+1)); echo n=$$i; sleep 0.05; done";
const COUNTER = `[Service]\nExecStart=/bin/sh -c "${LOOP}"\n`;

/** An agent (in this process) whose task logs rotate past `maxBytes`. */
async function hostWithLogMax(label: string, maxBytes: number): Promise<AgentHost> {
  const { ctx, nc, stateDir } = await hostContext({ url: server.url, prefix: uniquePrefix(label), machineId: "m1" });
  ctx.config.taskLogMaxBytes = maxBytes;
  const agent = createAgent(ctx);
  await agent.start();
  const h: AgentHost = { agent, ctx, nc, stateDir, close: async () => (await agent.stop(), await nc.close()) };
  hosts.push(h);
  return h;
}

/** The highest number the task has written to its log file so far. */
function lastWritten(h: AgentHost, unit: string): number {
  let text = "";
  try {
    text = readFileSync(logFileOf(h.stateDir, unit), "utf8");
  } catch {
    return 0;
  }
  const m = [...text.matchAll(/n=(\d+)\n/g)];
  return m.length ? Number(m[m.length - 1]![1]) : 0;
}

/** The numbers in the journal stream (this test's prefix: this unit only), in stream order. */
async function journalNumbers(h: AgentHost): Promise<number[]> {
  const stream = h.ctx.names.journalStream();
  const jsm = await jetstreamManager(h.nc);
  const total = await jsm.streams
    .info(stream)
    .then((i) => i.state.messages)
    .catch(() => 0);
  if (total === 0) return [];
  const c = await jetstream(h.nc).consumers.get(stream); // an ordered consumer from the first message
  const out: number[] = [];
  const dec = new TextDecoder();
  while (out.length < total) {
    const batch = await c.fetch({ max_messages: total - out.length, expires: 2000 });
    let got = 0;
    for await (const m of batch) {
      got++;
      const line = dec.decode(m.data);
      const n = /^n=(\d+)$/.exec(line);
      if (!n) throw new Error(`unexpected journal line ${JSON.stringify(line)}`);
      out.push(Number(n[1]));
    }
    if (got === 0) break;
  }
  await c.delete().catch(() => undefined);
  return out;
}

/** Where the sequence first breaks (a gap, a duplicate, a step back), or undefined. */
function firstBreak(ns: number[], from: number): string | undefined {
  for (let i = 0; i < ns.length; i++) {
    if (ns[i] !== from + i) return `at index ${i}: expected ${from + i}, found ${ns[i]} (…${ns.slice(Math.max(0, i - 3), i + 3).join(",")}…)`;
  }
  return undefined;
}

describe("journal", () => {
  test("NATS stopped for a few seconds while a task prints: every line reaches the journal once, in order", async () => {
    const h = await agentHost({ url: server.url, prefix: uniquePrefix("jout"), machineId: "m1" });
    hosts.push(h);
    const unit = "counter.service";
    await schedule(h.ctx.buckets, "m1", unit, COUNTER);
    await check(async () => (await readState(h.ctx.buckets, unit, "m1"))?.taskState === "running", 10_000, "counter running");
    await check(async () => (await journalNumbers(h)).length >= 10, 10_000, "first lines in the journal", 250);

    await server.stop();
    const atStop = lastWritten(h, unit);
    // About three seconds of output written while NATS is away.
    await check(() => lastWritten(h, unit) >= atStop + 60, 15_000, "60 more lines written while NATS is down");
    await server.restart();
    const atRestart = lastWritten(h, unit);

    const ns = await check(async () => {
      const got = await journalNumbers(h);
      return got.length > 0 && got[got.length - 1]! >= atRestart + 20 && got;
    }, 30_000, `the journal past n=${atRestart + 20}`, 250);
    expect(firstBreak(ns, 1)).toBeUndefined();
  });

  test("a log file past --task-log-max-size while NATS is away is not rotated until its lines are acknowledged", async () => {
    const h = await hostWithLogMax("jrot", 400);
    const unit = "counter.service";
    const file = logFileOf(h.stateDir, unit);
    await schedule(h.ctx.buckets, "m1", unit, COUNTER);
    await check(async () => (await journalNumbers(h)).length >= 5, 10_000, "first lines in the journal", 250);

    await server.stop();
    // Well past the limit, and still not cut: nothing in it is acknowledged.
    await check(() => statSync(file).size >= 700, 15_000, "the log file past 700 bytes while NATS is down");
    await server.restart();
    const atRestart = lastWritten(h, unit);

    const ns = await check(async () => {
      const got = await journalNumbers(h);
      return got.length > 0 && got[got.length - 1]! >= atRestart + 20 && got;
    }, 30_000, `the journal past n=${atRestart + 20}`, 250);
    expect(firstBreak(ns, 1)).toBeUndefined();
    expect(existsSync(`${file}.1`)).toBe(true); // rotated once acknowledged
    expect(statSync(file).size).toBeLessThan(700);
  });

  test("an agent that restarts behind what the stream has (its last position not saved) sends those lines again, and the stream keeps one copy", async () => {
    const h = await agentHost({ url: server.url, prefix: uniquePrefix("jdup"), machineId: "m1" });
    hosts.push(h);
    const unit = "counter.service";
    await schedule(h.ctx.buckets, "m1", unit, COUNTER);
    await check(async () => (await journalNumbers(h)).length >= 20, 10_000, "20 lines in the journal", 250);
    await h.agent.stop(); // the task keeps running; the next start adopts it

    // As if the agent had died before its last offsets reached the store: back to after n=5.
    const store = new WorkerStore(h.stateDir);
    store.open();
    const pos = store.journalPosition(unit);
    expect(pos?.offset).toBeGreaterThan(0);
    const text = readFileSync(logFileOf(h.stateDir, unit), "utf8");
    const back = Buffer.byteLength(text.slice(0, text.indexOf("n=5\n") + 4), "utf8");
    await store.putJournalOffset(unit, back, pos!.epoch);
    await store.close();

    await h.agent.start();
    const atStart = lastWritten(h, unit);
    const ns = await check(async () => {
      const got = await journalNumbers(h);
      return got.length > 0 && got[got.length - 1]! >= atStart + 10 && got;
    }, 20_000, `the journal past n=${atStart + 10}`, 250);
    expect(firstBreak(ns, 1)).toBeUndefined();
  });

  test("a line the stream refuses for good (over its max_msg_size) is skipped; the file's position moves past it", async () => {
    const h = await hostWithLogMax("jbig", 300);
    const jsm = await jetstreamManager(h.nc);
    const name = h.ctx.names.journalStream();
    const info = await jsm.streams.info(name);
    await jsm.streams.update(name, { ...info.config, max_msg_size: 256 });
    const unit = "counter.service";
    const file = logFileOf(h.stateDir, unit);
    await schedule(h.ctx.buckets, "m1", unit, `[Service]\nExecStart=/bin/sh -c "echo ${"x".repeat(400)}; ${LOOP}"\n`);
    // Lines after the refused one reach the stream either way (their publishes went out with
    // it); what shows the tailer got past it is the rotation, which needs the whole file acked.
    await check(() => existsSync(`${file}.1`), 20_000, "the log file rotated (everything in it acknowledged or skipped)", 100);
    const atRotation = lastWritten(h, unit);
    const ns = await check(async () => {
      const got = await journalNumbers(h);
      return got.length > 0 && got[got.length - 1]! >= atRotation + 10 && got;
    }, 15_000, `the journal past n=${atRotation + 10}`, 250);
    expect(firstBreak(ns, 1)).toBeUndefined();
  });

  test("the journal stream deleted under a running task: it is created again and no line after that is missing", async () => {
    const h = await agentHost({ url: server.url, prefix: uniquePrefix("jdel"), machineId: "m1" });
    hosts.push(h);
    const unit = "counter.service";
    await schedule(h.ctx.buckets, "m1", unit, COUNTER);
    await check(async () => (await journalNumbers(h)).length >= 5, 10_000, "first lines in the journal", 250);

    const jsm = await jetstreamManager(h.nc);
    await jsm.streams.delete(h.ctx.names.journalStream());
    const atDelete = lastWritten(h, unit);
    const ns = await check(async () => {
      const got = await journalNumbers(h);
      return got.length > 0 && got[got.length - 1]! >= atDelete + 40 && got;
    }, 30_000, `the journal stream back, past n=${atDelete + 40}`, 250);
    // Lines acknowledged by the deleted stream went with it; from the first line the new stream
    // holds, nothing is missing, and it starts no later than the line written at the deletion.
    expect(ns[0]).toBeLessThanOrEqual(atDelete + 1);
    expect(firstBreak(ns, ns[0]!)).toBeUndefined();
  });
});
