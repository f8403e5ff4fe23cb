// Every API verb's handler, gathered from the file that owns it (one line per area).
import type { ClusterContext } from "../server/context.js";
import type { ApiHandlers } from "./service.js";
import { unitHandlers } from "./units.js";
import { journalHandlers } from "./journal.js";
import { machineAvailabilityHandlers } from "./machine-availability.js";
import { statechartsHandlers } from "./statecharts.js";
import { listingHandlers } from "./listings.js";

export type HandlerFactory = (ctx: ClusterContext) => ApiHandlers;

export const handlerFactories: HandlerFactory[] = [
  unitHandlers,
  journalHandlers,
  machineAvailabilityHandlers,
  statechartsHandlers,
  // list-units, list-unit-files, list-machines, watch-units: paged, from an index per bucket.
  listingHandlers,
];

export function buildHandlers(ctx: ClusterContext): ApiHandlers {
  const out: ApiHandlers = {};
  for (const f of handlerFactories) Object.assign(out, f(ctx));
  return out;
}
