// XState state value -> the ids of every active state node, root included:
//   "idle"                         -> root, root.idle
//   { leader: "holding" }          -> root, root.leader, root.leader.holding
//   { a: "x", b: { c: "y" } }      -> root, root.a, root.a.x, root.b, root.b.c, root.b.c.y  (parallel)
export function activeIds(rootId: string, value: unknown): Set<string> {
  const out = new Set<string>([rootId]);
  const walk = (parent: string, v: unknown): void => {
    if (typeof v === "string") {
      out.add(`${parent}.${v}`);
      return;
    }
    if (v && typeof v === "object") {
      for (const [k, inner] of Object.entries(v as Record<string, unknown>)) {
        const id = `${parent}.${k}`;
        out.add(id);
        walk(id, inner);
      }
    }
  };
  walk(rootId, value);
  return out;
}
