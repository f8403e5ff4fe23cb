// `flotilla journal [-n N] [-f] UNIT` (fleetctl journal): the unit's last N output lines, from
// every machine that ran it; -f keeps printing new lines until interrupted.
import type { CommandRegistrar } from "./main.js";
import { ApiClient } from "./client.js";
import { FlotillaError } from "../protocol/errors.js";
import type { JournalReply } from "../api/journal.js";

export const registerJournal: CommandRegistrar = (program, globals) => {
  program
    .command("journal")
    .description("print the output (stdout and stderr) of a unit")
    .argument("<unit>", "unit name, e.g. hello.service")
    .option("-n, --lines <n>", "number of recent lines to print", "10")
    .option("-f, --follow", "keep printing new lines as they are written")
    .option("--output <mode>", "short (lines only) or json", "short")
    .action(async (unitArg: string, o: { lines: string; follow?: boolean; output: string }) => {
      // The API module (zod, JetStream) only for this command, not at the CLI's start.
      const { MAX_JOURNAL_LINES } = await import("../api/journal.js");
      const lines = Number(o.lines);
      if (!Number.isInteger(lines) || lines < 1) {
        throw new FlotillaError("bad_flag", `-n: "${o.lines}" is not a positive whole number`, { field: "lines", value: o.lines });
      }
      if (lines > MAX_JOURNAL_LINES) {
        throw new FlotillaError("bad_flag", `-n: ${lines} is more than the ${MAX_JOURNAL_LINES} lines the journal keeps per unit and machine`, {
          field: "lines",
          value: o.lines,
        });
      }
      const unit = unitArg.includes(".") ? unitArg : `${unitArg}.service`;
      const client = await ApiClient.connect(globals());
      const print = (l: { machineId: string; time: number; line: string }) =>
        process.stdout.write(o.output === "json" ? JSON.stringify(l) + "\n" : l.line + "\n");
      try {
        // Subscribe first so that nothing written while the request runs is missed.
        const sub = o.follow ? client.nc.subscribe(client.names.journalUnitFilter(unit)) : undefined;
        // A reply holds what fits in one NATS message; the older lines come page by page
        // ("before" = the last reply's "next"), newest page first, printed oldest first.
        const pages: JournalReply["lines"][] = [];
        let got = 0;
        for (let before: number | undefined; got < lines; ) {
          const reply: JournalReply = await client.request<JournalReply>("journal", { name: unit, lines: lines - got, ...(before ? { before } : {}) });
          pages.unshift(reply.lines);
          got += reply.lines.length;
          if (!reply.more || reply.next === undefined || reply.lines.length === 0) break;
          before = reply.next;
        }
        const all = pages.flat();
        for (const l of all) print(l);
        if (!sub) return;
        const dec = new TextDecoder();
        const last = all.length ? all[all.length - 1]! : undefined;
        let skipping = last !== undefined;
        const stop = () => sub.unsubscribe();
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
        for await (const m of sub) {
          const parts = m.subject.split(".");
          const l = { machineId: parts[parts.length - 1] ?? "", time: Date.now(), line: dec.decode(m.data) };
          // Lines already printed by the request may arrive again on the subscription.
          if (skipping && last && l.line === last.line && l.machineId === last.machineId) {
            skipping = false;
            continue;
          }
          print(l);
        }
      } finally {
        await client.close();
      }
    });
};
