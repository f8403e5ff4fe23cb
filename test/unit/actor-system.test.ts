// One actor system per daemon (src/server/actor-system.ts): roles under stable system ids, one
// inspector for all of them, ids freed on stop so a restarted role takes its id again, a
// failing actor logged; and the real engine and task-manager charts running in it.
import { describe, expect, it } from "vitest";
import pino from "pino";
import { Writable } from "node:stream";
import { createMachine, fromPromise, setup } from "xstate";
import type { NatsConnection } from "@nats-io/nats-core";
import { ActorSystem } from "../../src/server/actor-system.js";
import { CONTEXT_ACTORS, InspectMessage, inspector } from "../../src/inspect/publisher.js";
import { Names } from "../../src/protocol/names.js";
import { Engine } from "../../src/engine/engine.js";
import { MemoryEngineStore } from "../../src/store/memory-store.js";
import { heartMachine } from "../../src/machine/heart.machine.js";
import { taskManagerMachine } from "../../src/agent/task-manager.machine.js";
import { check } from "../helpers/check.js";

function capture() {
  const sent: { subject: string; msg: InspectMessage }[] = [];
  const nc = { isClosed: () => false, publish: (subject: string, data: string) => sent.push({ subject, msg: InspectMessage.parse(JSON.parse(data)) }) };
  return { sent, nc: nc as unknown as NatsConnection };
}

function logLines() {
  const lines: { level: number; msg: string }[] = [];
  const log = pino(
    { level: "info" },
    new Writable({
      write(chunk, _enc, cb) {
        lines.push(JSON.parse(String(chunk)) as { level: number; msg: string });
        cb();
      },
    }),
  );
  return { lines, log };
}

const toy = createMachine({ id: "toy", initial: "a", states: { a: { on: { GO: "b" } }, b: {} } });

describe("a daemon's actor system", () => {
  it("holds each role under its system id; a stopped role frees it for the next start; a taken id is refused", () => {
    const sys = new ActorSystem();
    const a = sys.spawn(toy, { systemId: "machine" });
    const b = sys.spawn(toy, { systemId: "heart" });
    expect(sys.get("machine")).toBe(a);
    expect(sys.get("heart")).toBe(b);
    expect(sys.ids()).toEqual(["heart", "machine"]);
    expect(() => sys.spawn(toy, { systemId: "heart" })).toThrow(/system id "heart" runs already/);
    a.send({ type: "GO" });
    expect(a.getSnapshot().value).toBe("b");
    sys.stop(a);
    expect(sys.get("machine")).toBeUndefined();
    expect(a.getSnapshot().status).toBe("stopped");
    const again = sys.spawn(toy, { systemId: "machine" });
    expect(sys.get("machine")).toBe(again);
    expect(again.getSnapshot().value).toBe("a");
    // One that reaches its final state leaves the system and the root's children.
    const once = sys.spawn(createMachine({ id: "once", initial: "a", states: { a: { on: { GO: "done" } }, done: { type: "final" } } }), { systemId: "task-manager:x.service" });
    expect(sys.ids()).toContain("task-manager:x.service");
    once.send({ type: "GO" });
    expect(sys.get("task-manager:x.service")).toBeUndefined();
    expect(sys.ids()).toEqual(["heart", "machine"]);
    sys.close();
    expect(b.getSnapshot().status).toBe("stopped");
  });

  it("one inspector publishes every role on its own subject with its stable id and a gapless seq", () => {
    const { sent, nc } = capture();
    const sys = new ActorSystem({ inspect: inspector(nc, new Names("pfx"), "m1", undefined, { withContext: CONTEXT_ACTORS }) });
    const heart = sys.spawn(heartMachine.provide({ actors: { beat: fromPromise(() => new Promise<void>(() => undefined)) } }), { systemId: "heart", input: { ttlMs: 10_000 } });
    const tm = sys.spawn(
      taskManagerMachine.provide({ actors: { task: createMachine({ id: "task", initial: "running", states: { running: {} } }) as never } }),
      { systemId: "task-manager:web@1.service", input: { unit: "web@1.service", target: "launched" } as never },
    );
    tm.send({ type: "ATTEMPT", target: "launched" } as never);
    // A second unit's manager and task in the same system: ids are per unit, nothing collides.
    const tm2 = sys.spawn(
      taskManagerMachine.provide({ actors: { task: createMachine({ id: "task", initial: "running", states: { running: {} } }) as never } }),
      { systemId: "task-manager:db.service", input: { unit: "db.service", target: "launched" } as never },
    );
    tm2.send({ type: "ATTEMPT", target: "launched" } as never);
    expect(tm2.getSnapshot().status).toBe("active");
    expect(sent.some((s) => s.subject === "pfx.inspect.m1.task.db.service")).toBe(true);
    const subjects = new Set(sent.map((s) => s.subject));
    expect(subjects).toEqual(
      new Set(["pfx.inspect.m1.heart", "pfx.inspect.m1.task-manager.web=401.service", "pfx.inspect.m1.task.web=401.service", "pfx.inspect.m1.task-manager.db.service", "pfx.inspect.m1.task.db.service"]),
    );
    // The root itself is not an actor anyone draws.
    expect(sent.some((s) => s.msg.defHash === "" || s.msg.id === "daemon")).toBe(false);
    const task = sent.filter((s) => s.subject === "pfx.inspect.m1.task.web=401.service").map((s) => s.msg);
    expect(task[0]).toMatchObject({ id: "task:web@1.service", unit: "web@1.service", actor: "task", value: "running" });
    const mgr = sent.filter((s) => s.msg.id === "task-manager:web@1.service").map((s) => s.msg);
    expect(mgr.map((m) => m.seq)).toEqual(mgr.map((_, i) => mgr[0]!.seq + i));
    expect(mgr.at(-1)).toMatchObject({ id: "task-manager:web@1.service", value: "attempting" });
    expect(sent.find((s) => s.msg.actor === "heart")!.msg.id).toBe("heart");
    // Context only for the roles whose context is small (machine, engine, agent).
    expect(sent.every((s) => s.msg.context === undefined)).toBe(true);
    expect(heart.getSnapshot().status).toBe("active");
    sys.close();
  });

  it("an actor that fails is logged with its system id (it has a parent, so XState tells no one else)", async () => {
    const { lines, log } = logLines();
    const sys = new ActorSystem({ log });
    const bad = setup({ actors: { boom: fromPromise<void>(async () => Promise.reject(new Error("disk on fire"))) } }).createMachine({
      id: "bad",
      initial: "x",
      states: { x: { invoke: { src: "boom" } } },
    });
    sys.spawn(bad, { systemId: "agent" });
    await check(() => lines.find((l) => l.msg === "actor agent failed"), 2000, "the failure logged");
    expect(JSON.stringify(lines)).toContain("disk on fire");
    sys.close();
  });

  it("the engine runs in the daemon's system as `engine`, its lease as `lease`, and frees both when stopped", async () => {
    const { sent, nc } = capture();
    const sys = new ActorSystem({ inspect: inspector(nc, new Names("pfx"), "e1", undefined, { withContext: CONTEXT_ACTORS }) });
    const e = new Engine({ store: new MemoryEngineStore(), actors: sys, log: pino({ level: "silent" }), machineId: "e1", leaseTtlMs: 3000, agentTtlMs: 5000, reconcileIntervalMs: 200 });
    await e.start();
    await check(() => e.isLeader, 5000, "leading");
    expect(sys.get("engine")).toBeDefined();
    expect(sys.get("lease")).toBeDefined();
    expect(sent.some((s) => s.subject === "pfx.inspect.e1.engine" && s.msg.context !== undefined)).toBe(true);
    expect(sent.some((s) => s.subject === "pfx.inspect.e1.lease")).toBe(true);
    await e.stop();
    expect(sys.get("engine")).toBeUndefined();
    expect(sys.get("lease")).toBeUndefined();
    await e.start();
    await check(() => e.isLeader, 5000, "leading again, under the same id");
    expect(sys.get("engine")).toBeDefined();
    await e.stop();
    sys.close();
  });
});
