// Inspection v2 end to end: a real daemon publishes every actor's steps into the
// <prefix>-inspect stream, so a viewer that connects late reads each actor's current state (the
// last message per subject) with gapless sequences, and the definitions behind their hashes
// come from the statecharts verb.
import { describe, expect, it } from "vitest";
import { DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { useNatsServer } from "../helpers/fixture.js";
import { uniquePrefix } from "../helpers/nats-server.js";
import { check } from "../helpers/check.js";
import { startDaemon } from "../helpers/daemon.js";
import { runCli } from "../helpers/cli.js";
import { Names } from "../../src/protocol/names.js";
import { InspectMessage } from "../../src/inspect/publisher.js";

const nats = useNatsServer();

/** Every message of the stream, in order (the history). */
async function history(names: Names): Promise<InspectMessage[]> {
  const js = jetstream(nats.nc);
  const c = await js.consumers.get(names.inspectStream(), { deliver_policy: DeliverPolicy.All });
  const out: InspectMessage[] = [];
  const info = await c.info();
  if (info.num_pending === 0) return out;
  for await (const m of await c.fetch({ max_messages: info.num_pending, expires: 5000 })) {
    out.push(InspectMessage.parse(m.json()));
    if (m.info.pending === 0) break;
  }
  return out;
}

/** The last message of every subject: what a late viewer sees first. */
async function current(names: Names): Promise<Map<string, InspectMessage>> {
  const js = jetstream(nats.nc);
  const c = await js.consumers.get(names.inspectStream(), { deliver_policy: DeliverPolicy.LastPerSubject });
  const out = new Map<string, InspectMessage>();
  const info = await c.info();
  if (info.num_pending === 0) return out;
  for await (const m of await c.fetch({ max_messages: info.num_pending, expires: 5000 })) {
    out.set(m.subject, InspectMessage.parse(m.json()));
    if (m.info.pending === 0) break;
  }
  return out;
}

describe("the inspect stream", () => {
  it("holds every actor's current state and its whole history, with seq numbers that have no gaps", async () => {
    const prefix = uniquePrefix("insp");
    const names = new Names(prefix);
    const d = await startDaemon({ server: nats.server, prefix, extraArgs: ["--inspect-max-age", "30m"] });
    const env = { NATS_URL: nats.server.url, FLOTILLA_PREFIX: prefix };
    // Start a unit through the API, as the CLI does.
    const reply = await nats.nc.request(
      names.apiSubject("start"),
      JSON.stringify({ units: [{ name: "hello.service", contents: "[Service]\nExecStart=/bin/sleep 600\n" }] }),
      { timeout: 10_000 },
    );
    expect(reply.headers?.get("Nats-Service-Error-Code") ?? "").toBe("");
    const m = d.machineId;
    const taskSubject = `${prefix}.inspect.${m}.task.hello.service`;
    const now = await check(
      async () => {
        const cur = await current(names);
        return cur.get(taskSubject)?.value === "running" && cur.has(`${prefix}.inspect.${m}.lease`) ? cur : undefined;
      },
      20_000,
      "the task running and the lease in the stream",
    );
    for (const actor of ["machine", "heart", "monitor", "engine", "lease", "agent"]) {
      const msg = now.get(`${prefix}.inspect.${m}.${actor}`);
      expect(msg, actor).toBeDefined();
      expect(msg).toMatchObject({ v: 2, machineId: m, actor, id: actor });
    }
    expect(now.get(taskSubject)).toMatchObject({ id: "task:hello.service", unit: "hello.service", actor: "task", status: "active" });
    // The task's parent: its task manager, one per unit.
    expect(now.get(`${prefix}.inspect.${m}.task-manager.hello.service`)).toMatchObject({ id: "task-manager:hello.service", unit: "hello.service", value: "attempting" });
    expect(now.get(`${prefix}.inspect.${m}.lease`)!.value).toMatchObject({ leader: expect.stringMatching(/holding|renewing/) });
    expect(now.get(`${prefix}.inspect.${m}.engine`)!.value).toMatchObject({ leading: expect.any(String) });
    expect(now.get(`${prefix}.inspect.${m}.agent`)!.value).toBe("steady");
    // The history: per actor id, seq 1, 2, 3, ... in order, the last one equal to the current state.
    const all = await history(names);
    const byId = new Map<string, InspectMessage[]>();
    for (const x of all) byId.set(x.id, [...(byId.get(x.id) ?? []), x]);
    for (const [id, msgs] of byId) {
      expect(msgs.map((x) => x.seq), id).toEqual(msgs.map((_, i) => i + 1));
      expect(new Set(msgs.map((x) => x.session)).size).toBe(1);
    }
    const task = byId.get("task:hello.service")!;
    expect(task[0]!.event).toBe("xstate.init");
    expect(task.some((x) => x.transitions.some((t) => t.targets.includes("task.running")))).toBe(true);
    // Every hash names a definition the statecharts verb knows.
    const charts = JSON.parse(new TextDecoder().decode((await nats.nc.request(names.apiSubject("statecharts"), "{}", { timeout: 10_000 })).data)) as { actor: string; hash: string }[];
    const known = new Map(charts.map((c) => [c.actor, c.hash]));
    for (const x of now.values()) expect(known.get(x.actor), x.actor).toBe(x.defHash);
    // The stream's limits are the daemon's (30 minutes, the default 64 MiB).
    const cfg = (await (await jetstreamManager(nats.nc)).streams.info(names.inspectStream())).config;
    expect([cfg.max_age, cfg.max_bytes]).toEqual([30 * 60 * 1e9, 64 * 2 ** 20]);
    // The CLI prints the same definitions without a cluster.
    const cli = await runCli(["statecharts", "task"], { env });
    expect(cli.code).toBe(0);
    expect(JSON.parse(cli.stdout)).toMatchObject({ actor: "task", hash: known.get("task") });
  });
});
