// The task manager statechart (src/agent/task-manager.machine.ts): every transition, replayed on
// a live actor whose attempt (the child `task`) is a stub the test ends.
import { describe, expect, it } from "vitest";
import { createActor, createMachine, SimulatedClock, type AnyEventObject } from "xstate";
import { taskManagerMachine, type TaskManagerEvent } from "../../src/agent/task-manager.machine.js";

/** An attempt stand-in: ends (final) on END, records START/STOP. */
const attemptStub = createMachine({
  id: "task",
  context: { seen: [] as string[] },
  initial: "live",
  states: {
    live: {
      on: {
        START: { actions: ({ context }) => void context.seen.push("START") },
        STOP: { actions: ({ context }) => void context.seen.push("STOP") },
        END: "over",
      },
    },
    over: { type: "final" },
  },
  output: ({ context }) => ({ taskState: "failed", seen: context.seen }),
});

function harness(restart: boolean) {
  const clock = new SimulatedClock();
  const calls = { attempts: 0, closed: 0, ended: 0 };
  const m = taskManagerMachine.provide({
    actors: { task: attemptStub as never },
    guards: { restartDue: () => restart },
    actions: {
      newAttempt: () => void calls.attempts++,
      closeAttempt: () => void calls.closed++,
      attemptEnded: () => void calls.ended++,
      noteDelay: ({ context }) => void (context.restartDelayMs = 300),
    },
  });
  const actor = createActor(m, { input: { unit: "u.service", target: "launched" }, clock });
  const child = () => actor.getSnapshot().children.task as unknown as { send(e: AnyEventObject): void; getSnapshot(): { context: { seen: string[] } } } | undefined;
  return { clock, calls, actor, child };
}

describe("task manager statechart", () => {
  it("runs one attempt at a time, forwards START/STOP to it, restarts after the delay when due", () => {
    const h = harness(true);
    h.actor.start();
    h.actor.send({ type: "ATTEMPT", target: "launched" });
    expect(h.actor.getSnapshot().value).toBe("attempting");
    h.actor.send({ type: "STOP" });
    h.actor.send({ type: "START" });
    expect(h.child()!.getSnapshot().context.seen).toEqual(["STOP", "START"]);
    h.child()!.send({ type: "END" });
    expect(h.actor.getSnapshot().value).toBe("restartWaiting");
    expect(h.calls).toEqual({ attempts: 1, closed: 1, ended: 1 });
    h.clock.increment(299);
    expect(h.actor.getSnapshot().value).toBe("restartWaiting");
    h.clock.increment(1);
    expect(h.actor.getSnapshot()).toMatchObject({ value: "attempting", context: { attempts: 2, restarts: 1 } });
    expect(h.calls.attempts).toBe(2);
    // A stop while a restart is due holds it.
    h.child()!.send({ type: "END" });
    h.actor.send({ type: "HOLD" });
    expect(h.actor.getSnapshot().value).toBe("ended");
    h.clock.increment(1000);
    expect(h.actor.getSnapshot().value).toBe("ended");
    h.actor.send({ type: "DETACH" });
    expect(h.actor.getSnapshot().status).toBe("done");
  });

  // Every transition, each driven on a live actor from a path that reaches its source state.
  // (xstate/graph's traversal cannot walk this chart: it keeps one actor system across branches,
  // and the second attempt's child `task` collides with the first's system ID.)
  type Step = AnyEventObject | "END" | "TICK";
  const TO: Record<string, Step[]> = {
    idle: [],
    attempting: [{ type: "ATTEMPT", target: "launched" }],
    restartWaiting: [{ type: "ATTEMPT", target: "launched" }, "END"],
    ended: [{ type: "HOLD" }],
  };
  const EDGES: [from: string, step: Step, restart: boolean, to: string][] = [
    ["idle", { type: "ATTEMPT", target: "launched" }, false, "attempting"],
    ["idle", { type: "HOLD" }, false, "ended"],
    ["idle", { type: "DETACH" }, false, "detached"],
    ["attempting", { type: "ATTEMPT", target: "launched" }, false, "attempting"],
    ["attempting", "END", true, "restartWaiting"],
    ["attempting", "END", false, "ended"],
    ["attempting", { type: "DETACH" }, false, "detached"],
    ["restartWaiting", "TICK", true, "attempting"],
    ["restartWaiting", { type: "HOLD" }, true, "ended"],
    ["restartWaiting", { type: "ATTEMPT", target: "launched" }, true, "attempting"],
    ["restartWaiting", { type: "DETACH" }, true, "detached"],
    ["ended", { type: "ATTEMPT", target: "launched" }, false, "attempting"],
    ["ended", { type: "DETACH" }, false, "detached"],
  ];
  const apply = (h: ReturnType<typeof harness>, st: Step): void => {
    if (st === "END") h.child()!.send({ type: "END" });
    else if (st === "TICK") h.clock.increment(300);
    else h.actor.send(st as TaskManagerEvent);
  };
  it.each(EDGES)("%s --%j--> (restart due: %s) %s", (from, step, restart, to) => {
    const h = harness(restart);
    h.actor.start();
    for (const st of TO[from]!) apply(h, st);
    expect(h.actor.getSnapshot().value).toBe(from);
    apply(h, step);
    expect(h.actor.getSnapshot().value).toBe(to);
  });

  it("covers every state and every event of the chart", () => {
    const states = Object.keys((taskManagerMachine.root as unknown as { states: Record<string, unknown> }).states);
    expect(new Set(EDGES.map((e) => e[0]).concat(EDGES.map((e) => e[3])))).toEqual(new Set(states));
    const events = new Set(EDGES.map((e) => (typeof e[1] === "string" ? e[1] : e[1].type)));
    for (const e of ["ATTEMPT", "HOLD", "DETACH", "END", "TICK"]) expect(events).toContain(e);
  });

  it("a new attempt over a live one replaces it (the old child stopped, a new one started)", () => {
    const h = harness(false);
    h.actor.start();
    h.actor.send({ type: "ATTEMPT", target: "launched" });
    const first = h.child();
    h.actor.send({ type: "ATTEMPT", target: "launched" });
    expect(h.actor.getSnapshot()).toMatchObject({ value: "attempting", context: { attempts: 2 } });
    expect(h.child()).not.toBe(first);
    expect(h.calls).toMatchObject({ attempts: 2, closed: 1 });
  });

  it("keeps its named actors, guards and delays in the exported chart", () => {
    const json = JSON.stringify(taskManagerMachine.toJSON());
    for (const name of ["task", "restartDue", "newAttempt", "attemptEnded", "restartDelay"]) expect(json).toContain(name);
  });
});
