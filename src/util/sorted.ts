// Sorted string arrays: one order, one linear merge and the binary searches, for the engine's
// name index (engine/glob-index.ts) and the listing index (api/index-cache.ts).

/** Ascending code-unit order, as `<` compares strings. */
export function byString(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Two ascending arrays as one (linear, no sort; on equal strings a's comes first). */
export function mergeSorted(a: readonly string[], b: readonly string[]): string[] {
  const g = mergeSortedSteps(a, b);
  for (;;) {
    const r = g.next();
    if (r.done) return r.value;
  }
}

/**
 * mergeSorted(), yielding every `every` names written (the engine runs it in slices that give
 * the event loop a turn: a merge into 100,000 names takes 20 ms or more).
 */
export function* mergeSortedSteps(a: readonly string[], b: readonly string[], every = 4096): Generator<void, string[], void> {
  const out = new Array<string>(a.length + b.length);
  let i = 0;
  let j = 0;
  let o = 0;
  let next = every;
  while (i < a.length && j < b.length) {
    out[o++] = b[j]! < a[i]! ? b[j++]! : a[i++]!;
    if (o === next) {
      next += every;
      yield;
    }
  }
  while (i < a.length) out[o++] = a[i++]!;
  while (j < b.length) out[o++] = b[j++]!;
  return out;
}

/** First index whose key is > k. */
export function upperBound(a: readonly string[], k: string): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! <= k) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First index whose key is >= k. */
export function lowerBound(a: readonly string[], k: string): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < k) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
