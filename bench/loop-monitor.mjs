// Preloaded into a daemon by bench/list.ts (NODE_OPTIONS=--import this file, with
// FLOTILLA_LOOP_MONITOR=<file>): measures how long the daemon's event loop is held, from inside
// the daemon (perf_hooks.monitorEventLoopDelay), without a line of the daemon changed. Each
// SIGUSR2 appends one JSON line to <file> - the delays since the last signal (or the start):
// {"n":1,"maxMs":..,"p99Ms":..,"meanMs":..,"samples":..} - and starts the next window.
import { appendFileSync } from "node:fs";
import { monitorEventLoopDelay } from "node:perf_hooks";

const out = process.env.FLOTILLA_LOOP_MONITOR;
if (out) {
  // A sample every 10 ms: a loop held for T ms shows as a delay of about T ms.
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  let n = 0;
  process.on("SIGUSR2", () => {
    const ms = (ns) => Math.round(ns / 1e5) / 10;
    const line = { n: ++n, maxMs: ms(h.max), p99Ms: ms(h.percentile(99)), meanMs: ms(h.mean), samples: h.count };
    h.reset();
    appendFileSync(out, JSON.stringify(line) + "\n");
  });
}
