// The heart, monitor and machine statecharts with fake effects and a simulated clock: beats
// every TTL/2, failed beats retried with backoff capped at TTL/3 and never given up, the
// monitor stopping components after repeated failure and starting them at the next good beat.
import { describe, expect, it } from "vitest";
import { SimulatedClock, createActor, fromPromise } from "xstate";
import { heartMachine } from "../../src/machine/heart.machine.js";
import { monitorMachine } from "../../src/machine/monitor.machine.js";
import { machineMachine } from "../../src/machine/machine.machine.js";
import { beatInterval, retryDelay } from "../../src/machine/record.js";
import type { HostFacts } from "../../src/machine/detect.js";

const flush = async () => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

describe("heart timing", () => {
  it.each([
    [10_000, 1, 833],
    [10_000, 2, 1666],
    [10_000, 3, 3332],
    [10_000, 4, 3333],
    [10_000, 50, 3333],
    [1000, 1, 83],
  ])("ttl %i, failure %i: retry after %i ms (capped at TTL/3)", (ttl, failures, ms) => {
    expect(retryDelay(ttl, failures)).toBe(ms);
  });
  it("beats every TTL/2", () => {
    expect(beatInterval(10_000)).toBe(5000);
  });
});

describe("heart", () => {
  it("beats at once, then every TTL/2", async () => {
    const clock = new SimulatedClock();
    let beats = 0;
    const heart = createActor(heartMachine.provide({ actors: { beat: fromPromise(async () => {
          beats++;
        }) } }), {
      input: { ttlMs: 1000 },
      clock,
    });
    const oks: number[] = [];
    heart.on("heart.ok", (e) => oks.push(e.beats));
    heart.start();
    await flush();
    expect(beats).toBe(1);
    clock.increment(499);
    await flush();
    expect(beats).toBe(1);
    clock.increment(1);
    await flush();
    expect(beats).toBe(2);
    expect(oks).toEqual([1, 2]);
    heart.send({ type: "BEAT_NOW" });
    await flush();
    expect(beats).toBe(3);
    heart.stop();
  });

  it("retries a failed beat with backoff forever and recovers", async () => {
    const clock = new SimulatedClock();
    let up = false;
    let attempts = 0;
    const heart = createActor(
      heartMachine.provide({
        actors: {
          beat: fromPromise(async () => {
            attempts++;
            if (!up) throw new Error("no responders");
          }),
        },
      }),
      { input: { ttlMs: 1200 }, clock },
    );
    const failed: { failures: number; error: string }[] = [];
    heart.on("heart.failed", (e) => failed.push(e));
    heart.start();
    await flush();
    expect(failed).toEqual([{ type: "heart.failed", failures: 1, error: "no responders" }]);
    for (const d of [retryDelay(1200, 1), retryDelay(1200, 2), retryDelay(1200, 3), retryDelay(1200, 4)]) {
      clock.increment(d);
      await flush();
    }
    expect(attempts).toBe(5);
    expect(failed.map((f) => f.failures)).toEqual([1, 2, 3, 4, 5]);
    expect(heart.getSnapshot().value).toBe("retrying");
    up = true;
    clock.increment(400);
    await flush();
    expect(heart.getSnapshot().value).toBe("waiting");
    expect(heart.getSnapshot().context.failures).toBe(0);
    heart.stop();
  });
});

describe("monitor", () => {
  it("stops components after 3 failed beats and starts them at the next good one", async () => {
    const calls: string[] = [];
    const monitor = createActor(
      monitorMachine.provide({
        actors: {
          stopComponents: fromPromise(async () => {
            calls.push("stop");
          }),
          startComponents: fromPromise(async () => {
            calls.push("start");
          }),
        },
      }),
      { input: { threshold: 3 } },
    ).start();
    monitor.send({ type: "BEAT_FAILED", failures: 1 });
    monitor.send({ type: "BEAT_FAILED", failures: 2 });
    expect(monitor.getSnapshot().value).toBe("healthy");
    monitor.send({ type: "BEAT_FAILED", failures: 3 });
    await flush();
    expect(calls).toEqual(["stop"]);
    expect(monitor.getSnapshot().value).toBe("waitingForBeat");
    monitor.send({ type: "BEAT_FAILED", failures: 4 });
    monitor.send({ type: "BEAT_OK" });
    await flush();
    expect(calls).toEqual(["stop", "start"]);
    expect(monitor.getSnapshot().value).toBe("healthy");
  });

  it("a restart that fails stops again and waits for the next good beat", async () => {
    const calls: string[] = [];
    const monitor = createActor(
      monitorMachine.provide({
        actors: {
          stopComponents: fromPromise(async () => {
            calls.push("stop");
          }),
          startComponents: fromPromise<void, void>(async () => {
            calls.push("start");
            throw new Error("NATS flapped");
          }),
        },
      }),
      { input: { threshold: 1 } },
    ).start();
    monitor.send({ type: "BEAT_FAILED", failures: 1 });
    await flush();
    monitor.send({ type: "BEAT_OK" });
    await flush();
    expect(calls).toEqual(["stop", "start", "stop"]);
    expect(monitor.getSnapshot().value).toBe("waitingForBeat");
  });
});

describe("machine", () => {
  const facts: HostFacts = { hostname: "h1", publicIp: "10.0.0.9", cpu: 4, memory: 8e9 };
  const identity = { id: "m1", version: "0", session: "s", startedAt: 1, metadata: { region: "eu" } };

  it("builds its record from detected facts, flags winning", () => {
    const m = createActor(machineMachine, {
      input: { identity: { ...identity, publicIp: "1.2.3.4", capacity: { cpu: 1 } }, facts, availability: "active", refreshMs: 1000 },
    }).start();
    expect(m.getSnapshot().context.record).toMatchObject({
      id: "m1",
      hostname: "h1",
      publicIp: "1.2.3.4",
      metadata: { region: "eu" },
      capacity: { cpu: 1, memory: 8e9 },
      availability: "active",
    });
    m.stop();
  });

  it("changes availability once, persists it and announces the change", async () => {
    const persisted: string[] = [];
    const m = createActor(
      machineMachine.provide({
        actors: { persistAvailability: fromPromise(async ({ input }) => void persisted.push(input.availability)) },
      }),
      { input: { identity, facts, availability: "active", refreshMs: 60_000 } },
    );
    const changes: string[] = [];
    m.on("machine.changed", (e) => changes.push(e.record.availability));
    m.start();
    m.send({ type: "SET_AVAILABILITY", availability: "drain" });
    m.send({ type: "SET_AVAILABILITY", availability: "drain" });
    await flush();
    expect(changes).toEqual(["drain"]);
    expect(persisted).toEqual(["drain"]);
    m.stop();
  });

  it("re-detects periodically and announces only real changes", async () => {
    const clock = new SimulatedClock();
    let ip = "10.0.0.9";
    const m = createActor(machineMachine.provide({ actors: { detect: fromPromise(async () => ({ ...facts, publicIp: ip })) } }), {
      input: { identity, facts, availability: "active", refreshMs: 1000 },
      clock,
    });
    const changes: string[] = [];
    m.on("machine.changed", (e) => changes.push(e.record.publicIp));
    m.start();
    clock.increment(1000);
    await flush();
    expect(changes).toEqual([]);
    ip = "10.0.0.10";
    clock.increment(1000);
    await flush();
    expect(changes).toEqual(["10.0.0.10"]);
    m.stop();
  });
});
