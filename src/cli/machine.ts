// `flotilla machine drain|pause|activate ID`: a machine's availability. drain moves its units
// elsewhere and takes no new ones; pause keeps its units and takes no new ones; activate undoes
// both. ID is a machine ID or a unique prefix of one (the short IDs list-machines shows).
import type { CommandRegistrar } from "./main.js";
import { withClient } from "./client.js";
import type { Availability, MachineRecord } from "../protocol/messages.js";

const VERBS: { verb: string; availability: Availability; help: string; done: string }[] = [
  { verb: "drain", availability: "drain", help: "move the machine's units elsewhere and take no new ones", done: "draining: its units move to other machines" },
  { verb: "pause", availability: "pause", help: "keep the machine's units but take no new ones", done: "paused: it keeps its units and takes no new ones" },
  { verb: "activate", availability: "active", help: "let the machine take units again", done: "active" },
];

export const registerMachine: CommandRegistrar = (program, globals) => {
  const group = program.command("machine").description("change a machine's availability (drain, pause, activate)");
  for (const v of VERBS) {
    group
      .command(`${v.verb} <machine>`)
      .description(v.help)
      .option("--json", "print the new machine record as JSON")
      .action(async (machine: string, o: { json?: boolean }) => {
        await withClient(globals, async (client) => {
          const rec = await client.request<MachineRecord>("machine-availability", { machine, availability: v.availability });
          process.stdout.write(o.json ? JSON.stringify(rec, null, 2) + "\n" : `Machine ${rec.id} is ${v.done}\n`);
        });
      });
  }
};
