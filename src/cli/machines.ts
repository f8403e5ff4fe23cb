// `flotilla list-machines` (fleetctl list-machines): MACHINE, IP, METADATA; short IDs unless -l.
import type { CommandRegistrar } from "./main.js";
import { ApiClient } from "./client.js";
import { renderTable, shortId, type Column } from "./table.js";
import type { MachineRecord } from "../protocol/messages.js";
import { FlotillaError } from "../protocol/errors.js";

export function formatMetadata(m: Record<string, string>): string {
  const pairs = Object.keys(m)
    .sort()
    .map((k) => `${k}=${m[k]}`);
  return pairs.length ? pairs.join(",") : "-";
}

export const machineColumns: Column<MachineRecord>[] = [
  { header: "MACHINE", value: (r, full) => (full || r.id.length <= 8 ? r.id : `${shortId(r.id, false)}...`) },
  { header: "IP", value: (r) => r.publicIp || "-" },
  { header: "METADATA", value: (r) => formatMetadata(r.metadata) },
  { header: "HOSTNAME", value: (r) => r.hostname || "-" },
  { header: "AVAILABILITY", value: (r) => r.availability },
  { header: "CPU", value: (r) => String(r.capacity.cpu) },
  { header: "MEMORY", value: (r) => String(r.capacity.memory) },
];

const DEFAULT_FIELDS = "machine,ip,metadata";

export const registerMachines: CommandRegistrar = (program, globals) => {
  program
    .command("list-machines")
    .description("list the machines of the cluster (MACHINE, IP, METADATA)")
    .option("--json", "print the machine records as JSON")
    .option("-l, --full", "show full machine IDs")
    .option("--no-legend", "do not print the header line")
    .option("--fields <list>", `columns to show, from ${machineColumns.map((c) => c.header.toLowerCase()).join(",")}`, DEFAULT_FIELDS)
    .action(async (o: { json?: boolean; full?: boolean; legend: boolean; fields: string }) => {
      const client = await ApiClient.connect(globals());
      try {
        const rows = await client.request<MachineRecord[]>("list-machines", {});
        let text: string;
        try {
          text = renderTable(rows, machineColumns, { json: o.json, full: o.full, noLegend: !o.legend, fields: o.fields });
        } catch (e) {
          throw new FlotillaError("bad_flag", (e as Error).message, { field: "fields", value: o.fields });
        }
        process.stdout.write(text);
      } finally {
        await client.close();
      }
    });
};
