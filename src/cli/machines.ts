// `flotilla list-machines` (fleetctl list-machines): MACHINE, IP, METADATA; short IDs unless -l.
import type { CommandRegistrar } from "./main.js";
import { withClient } from "./client.js";
import { addListingOptions, shortId, type Column, type ListFlags } from "./table.js";
import { RowPrinter, printListing } from "./listing-stream.js";
import type { MachineRecord } from "../protocol/messages.js";

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
  addListingOptions(
    program
      .command("list-machines [glob]")
      .description("list the machines of the cluster (MACHINE, IP, METADATA), sorted by ID; GLOB keeps the IDs it matches"),
    machineColumns as Column<never>[],
    DEFAULT_FIELDS,
  ).action(async (glob: string | undefined, o: ListFlags) => {
    const printer = new RowPrinter<MachineRecord>(machineColumns, o);
    await withClient(globals, (client) => printListing(client, "list-machines", glob === undefined ? {} : { glob }, printer));
  });
};
