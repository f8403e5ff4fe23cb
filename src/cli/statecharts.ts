// `flotilla statecharts [--format json|mermaid|dot] [ACTOR]`: the statecharts this version of
// flotilla runs, from the real definitions (no cluster needed). The API verb `statecharts`
// answers the same from a running daemon.
import type { CommandRegistrar } from "./main.js";
import { FlotillaError } from "../protocol/errors.js";

const FORMATS = ["json", "mermaid", "dot"] as const;

export const registerStatecharts: CommandRegistrar = (program) => {
  program
    .command("statecharts [actor]")
    .description("print the statecharts of every actor (or one: machine, heart, monitor, engine, lease, agent, task) from their real definitions")
    .option("--format <format>", "json, mermaid or dot", "json")
    .action(async (actor: string | undefined, o: { format: string }) => {
      if (!(FORMATS as readonly string[]).includes(o.format)) {
        throw new FlotillaError("bad_flag", `--format ${o.format} is not one of ${FORMATS.join(", ")}`, { field: "format", value: o.format });
      }
      // The definitions (every machine, xstate) load only for this command.
      const [{ statecharts }, { toDot, toMermaid }] = await Promise.all([import("../inspect/registry.js"), import("../inspect/definition.js")]);
      const list = statecharts(actor === undefined ? {} : { actor });
      if (o.format === "json") {
        process.stdout.write(JSON.stringify(actor === undefined ? list : list[0], null, 2) + "\n");
        return;
      }
      for (const s of list) {
        const text = o.format === "mermaid" ? toMermaid(s.definition) : toDot(s.definition);
        process.stdout.write((list.length > 1 ? `${o.format === "mermaid" ? "%%" : "//"} ${s.actor} ${s.hash}\n` : "") + text);
      }
    });
};
