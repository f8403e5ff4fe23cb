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
