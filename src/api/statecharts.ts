// statecharts: {} → every actor kind's definition with its hash; {"actor":"task"} or
// {"hash":"..."} → just that one (unknown_actor when none). A viewer that meets an inspection
// message with a hash it has not seen asks this.
import { z } from "zod";
import { FlotillaError } from "../protocol/errors.js";
import { statecharts } from "../inspect/registry.js";
import type { HandlerFactory } from "./handlers.js";

const Body = z.object({ actor: z.string().min(1).max(100).optional(), hash: z.string().min(1).max(100).optional() }).strict();

export const statechartsHandlers: HandlerFactory = () => ({
  statecharts: async (body) => {
    const parsed = Body.safeParse(body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new FlotillaError("bad_request", `${issue?.path.join(".") || "body"}: ${issue?.message ?? "invalid"}; send {} or {"actor":"task"} or {"hash":"..."}`, {
        field: issue?.path.join(".") || "body",
      });
    }
    return statecharts(parsed.data);
  },
});
