import { prng } from "./prng.js";
// The chaos test's schedule of faults, drawn in advance from a seed so that a failing run can be
// replayed exactly (CHAOS_SEED=<seed>). Pure: no processes, no clock.
//
// What a plan holds, in time order (ms from the start of the chaos window):
//   kill M / restart M      SIGKILL a daemon, later start it again on the same state dir
//   nats-stop / nats-start  one NATS outage (same port, same store)
//   drain M / activate M    one drain of a machine and its activation
// Rules the plan keeps, so that the executor never waits on something the plan cannot give:
//   - never all machines dead at once (at most machines - 1);
//   - no restart while NATS is down, or shortly before it goes down (startDaemon needs NATS
//     for the few seconds a daemon takes to register);
//   - the drained machine is alive (and registered) when it is drained and when it is activated;
//   - every restart, the NATS start and the activation fall inside the window.

export type ChaosEvent =
  | { at: number; kind: "kill" | "restart" | "drain" | "activate"; machine: string }
  | { at: number; kind: "nats-stop" | "nats-start" };

/** The same seed gives the same plan. */
export { prng };

export interface PlanOptions {
  seed: number;
  machines: string[];
  durationMs: number;
  /** The agent TTL: outages are drawn around it (shorter and longer than one TTL). */
  ttlMs: number;
  /** How long a restarted daemon may take to register (a window in which it counts as dead). */
  registerMs?: number;
}

export function planChaos(o: PlanOptions): ChaosEvent[] {
  const r = prng(o.seed);
  const u = (a: number, b: number) => Math.round(a + (b - a) * r());
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)]!;
  const D = o.durationMs;
  const reg = o.registerMs ?? 3000;
  const events: ChaosEvent[] = [];

  const natsStop = u(0.3 * D, 0.6 * D);
  const natsStart = natsStop + u(500, 2 * o.ttlMs);
  events.push({ at: natsStop, kind: "nats-stop" }, { at: natsStart, kind: "nats-start" });

  const drained = pick(o.machines);
  const drainAt = u(0.1 * D, 0.35 * D);
  const activateAt = Math.min(drainAt + u(8000, 18_000), D - 6000);
  events.push({ at: drainAt, kind: "drain", machine: drained }, { at: activateAt, kind: "activate", machine: drained });

  // [from, to) during which a machine is dead or still registering after its restart.
  const dead = new Map<string, [number, number][]>(o.machines.map((m) => [m, []]));
  const overlaps = (iv: [number, number][], a: number, b: number) => iv.some(([x, y]) => x < b && a < y);
  let t = u(1500, 4000);
  while (t < D - 4000) {
    const down = u(300, 3 * o.ttlMs);
    let restartAt = t + down;
    if (restartAt > natsStop - reg && restartAt < natsStart + 300) restartAt = natsStart + 300 + u(0, 1000);
    restartAt = Math.min(restartAt, D - 1500);
    if (restartAt > t) {
      const a = t;
      const b = restartAt + reg;
      const candidates = o.machines.filter((m) => {
        if (overlaps(dead.get(m)!, a - 500, b)) return false;
        if (m === drained && ((drainAt >= a - 500 && drainAt < b) || (activateAt >= a - 500 && activateAt < b))) return false;
        const othersDead = o.machines.filter((x) => x !== m && overlaps(dead.get(x)!, a, b)).length;
        return othersDead <= o.machines.length - 2;
      });
      if (candidates.length > 0) {
        const m = pick(candidates);
        dead.get(m)!.push([a, b]);
        events.push({ at: a, kind: "kill", machine: m }, { at: restartAt, kind: "restart", machine: m });
      }
    }
    t += u(2000, 6000);
  }
  return events.sort((x, y) => x.at - y.at);
}

/** One line per event, for the test's output: "  12.345 s  kill c2". */
export function describePlan(events: ChaosEvent[]): string {
  return events
    .map((e) => `  ${(e.at / 1000).toFixed(3).padStart(7)} s  ${e.kind}${"machine" in e ? ` ${e.machine}` : ""}`)
    .join("\n");
}
