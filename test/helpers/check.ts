// Wait for convergence by polling with a deadline, never with fixed sleeps.

/**
 * Calls fn until it returns a truthy value (which is returned) or does not throw, until
 * timeoutMs passes; then throws with the last error or value so the test says what never held.
 */
export async function check<T>(
  fn: () => T | Promise<T>,
  timeoutMs = 10_000,
  what = "condition",
  intervalMs = 25,
): Promise<Exclude<T, false | null | undefined | 0 | "">> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as Exclude<T, false | null | undefined | 0 | "">;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${detail}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * The opposite of check(): asserts that fn keeps holding (returns truthy, does not throw) on
 * every poll for the whole window — for "nothing happens" claims such as "the workload was never
 * stopped while NATS was down". Throws at the first poll where it does not hold.
 */
export async function holds(
  fn: () => unknown | Promise<unknown>,
  windowMs: number,
  what = "condition",
  intervalMs = 100,
): Promise<void> {
  const until = Date.now() + windowMs;
  for (;;) {
    let ok: unknown;
    try {
      ok = await fn();
    } catch (e) {
      throw new Error(`${what} stopped holding after ${windowMs - Math.max(0, until - Date.now())} ms: ${(e as Error).message}`);
    }
    if (!ok) throw new Error(`${what} stopped holding after ${windowMs - Math.max(0, until - Date.now())} ms`);
    if (Date.now() >= until) return;
    await new Promise((r) => setTimeout(r, Math.min(intervalMs, Math.max(1, until - Date.now()))));
  }
}

/**
 * The pace of a sampler or of a load loop (one observation, or one request, every `ms`): never a
 * wait for something to happen; waiting for a condition is check()'s, holding one is holds()'s.
 */
export function pace(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * How much `count()` grew in each turn of the event loop (one run of a setImmediate chain), from
 * now until stop(): `worst` is the most one turn took in, `turns` how many turns went by. For
 * "no turn does more than N" claims, counted in work rather than in ms, so that a loaded machine
 * cannot make them pass or fail.
 */
export function perTurn(count: () => number): { stop(): { worst: number; turns: number } } {
  let last = count();
  let worst = 0;
  let turns = 0;
  let sampling = true;
  const sample = () => {
    const now = count();
    worst = Math.max(worst, now - last);
    last = now;
    turns++;
    if (sampling) setImmediate(sample);
  };
  setImmediate(sample);
  return {
    stop: () => {
      sampling = false;
      const now = count();
      return { worst: Math.max(worst, now - last), turns };
    },
  };
}
