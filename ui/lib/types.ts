// The wire shapes the page reads: inspection v2 messages (`<prefix>.inspect.>` and the
// `<prefix>-inspect` stream) and statechart definitions (API verb `statecharts`). Both are
// checked with zod where they enter (nats.ts, recording.ts); these are the checked types.
import { z } from "zod";

export const TransitionTaken = z.object({
  source: z.string(),
  targets: z.array(z.string()).default([]),
  event: z.string().default(""),
});

export const InspectMessage = z.object({
  v: z.literal(2),
  machineId: z.string().min(1),
  session: z.string().default(""),
  actor: z.string().min(1),
  id: z.string().min(1),
  unit: z.string().optional(),
  seq: z.number().int().nonnegative(),
  defHash: z.string().default(""),
  event: z.string().default(""),
  value: z.unknown(),
  transitions: z.array(TransitionTaken).default([]),
  status: z.string().default("active"),
  at: z.number(),
  context: z.unknown().optional(),
});
export type InspectMessage = z.infer<typeof InspectMessage>;

export interface TransitionDef {
  kind: "on" | "always" | "after";
  event: string;
  delay?: string | number;
  guard?: string;
  targets: string[];
  actions?: string[];
  reenter?: boolean;
}

export interface StateNodeDef {
  id: string;
  key: string;
  type: "atomic" | "compound" | "parallel" | "final" | "history";
  initial?: string;
  states: Record<string, StateNodeDef>;
  transitions: TransitionDef[];
  invoke?: { id: string; src: string }[];
  tags?: string[];
  entry?: string[];
  exit?: string[];
}

export interface Def {
  id: string;
  root: StateNodeDef;
}

export interface Statechart {
  actor: string;
  hash: string;
  definition: Def;
}

const TransitionDefSchema = z.object({
  kind: z.enum(["on", "always", "after"]),
  event: z.string().default(""),
  delay: z.union([z.string(), z.number()]).optional(),
  guard: z.string().optional(),
  targets: z.array(z.string()).default([]),
  actions: z.array(z.string()).optional(),
  reenter: z.boolean().optional(),
});

const StateNodeSchema: z.ZodType<StateNodeDef> = z.lazy(() =>
  z.object({
    id: z.string(),
    key: z.string(),
    type: z.enum(["atomic", "compound", "parallel", "final", "history"]),
    initial: z.string().optional(),
    states: z.record(z.string(), StateNodeSchema).default({}),
    transitions: z.array(TransitionDefSchema).default([]),
    invoke: z.array(z.object({ id: z.string(), src: z.string() })).optional(),
    tags: z.array(z.string()).optional(),
    entry: z.array(z.string()).optional(),
    exit: z.array(z.string()).optional(),
  }),
) as z.ZodType<StateNodeDef>;

export const StatechartSchema = z.object({
  actor: z.string(),
  hash: z.string(),
  definition: z.object({ id: z.string(), root: StateNodeSchema }),
});
export const StatechartList = z.array(StatechartSchema);

/** The key the page files an actor under: one daemon's one actor (sessions follow each other). */
export function actorKey(m: { machineId: string; id: string }): string {
  return `${m.machineId}/${m.id}`;
}

/** "running", "leader.holding", "a.x + b.y" for a parallel value. */
export function valueText(value: unknown): string {
  if (typeof value === "string") return value;
  if (value && typeof value === "object") {
    const parts = Object.entries(value as Record<string, unknown>).map(([k, v]) => {
      const inner = valueText(v);
      return inner ? `${k}.${inner}` : k;
    });
    return parts.length > 1 ? parts.join(" + ") : (parts[0] ?? "");
  }
  return "";
}
