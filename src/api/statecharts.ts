// statecharts: {} → every actor kind's definition with its hash; {"actor":"task"} or
// {"hash":"..."} → just that one (unknown_actor when none). A viewer that meets an inspection
// message with a hash it has not seen asks this.
import { z } from "zod";
import { parseRequest } from "./request.js";
import { statecharts } from "../inspect/registry.js";
import type { HandlerFactory } from "./handlers.js";

const Body = z.object({ actor: z.string().min(1).max(100).optional(), hash: z.string().min(1).max(100).optional() }).strict();

export const statechartsHandlers: HandlerFactory = () => ({
  // parseRequest names the field and the value received, shortened (an unknown key may be 400 KiB).
  statecharts: async (body) => statecharts(parseRequest(Body, body, "statecharts", `{} or {"actor":"task"} or {"hash":"..."}`)),
});
