// Sorted string arrays: one order and one linear merge for the engine's name index
// (engine/glob-index.ts) and the listing index (api/index-cache.ts).

/** Ascending code-unit order, as `<` compares strings. */
export function byString(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Two ascending arrays as one (linear, no sort; on equal strings a's comes first). */
export function mergeSorted(a: readonly string[], b: readonly string[]): string[] {
  const out = new Array<string>(a.length + b.length);
  let i = 0;
  let j = 0;
  let o = 0;
  while (i < a.length && j < b.length) out[o++] = b[j]! < a[i]! ? b[j++]! : a[i++]!;
  while (i < a.length) out[o++] = a[i++]!;
  while (j < b.length) out[o++] = b[j++]!;
  return out;
}
