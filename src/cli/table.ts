import type { Command } from "commander";
import { FlotillaError } from "../protocol/errors.js";
// fleetctl-style tables: tab-aligned columns, an upper-case legend unless --no-legend, or the
// raw rows as JSON with --json. Every listing command prints through here.

export interface Column<T> {
  header: string;
  value: (row: T, full: boolean) => string;
}

export interface ListingOptions {
  json?: boolean;
  noLegend?: boolean;
  full?: boolean;
  fields?: string; // comma-separated headers (case-insensitive) to keep, in order
}

/** The columns --fields names, in its order (all of them without --fields). */
export function selectColumns<T>(columns: Column<T>[], fields: string | undefined): Column<T>[] {
  if (!fields) return columns;
  const wanted = fields.split(",").map((f) => f.trim().toLowerCase()).filter(Boolean);
  const byName = new Map(columns.map((c) => [c.header.toLowerCase(), c]));
  const unknown = wanted.filter((w) => !byName.has(w));
  if (unknown.length) {
    throw new FlotillaError(
      "bad_flag",
      `unknown field(s) ${unknown.join(", ")}; choose from ${columns.map((c) => c.header.toLowerCase()).join(", ")}`,
      { field: "fields", value: fields },
    );
  }
  return wanted.map((w) => byName.get(w)!);
}

/** One table line: every cell but the last padded to its column's width, tab-separated. */
export function renderRow(cells: string[], widths: number[]): string {
  return cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("\t").trimEnd() + "\n";
}

export function renderTable<T>(rows: T[], columns: Column<T>[], o: ListingOptions, jsonRows: unknown[] = rows): string {
  if (o.json) return JSON.stringify(jsonRows, null, 2) + "\n";
  const cols = selectColumns(columns, o.fields);
  const cells = rows.map((r) => cols.map((c) => c.value(r, Boolean(o.full))));
  const all = o.noLegend ? cells : [cols.map((c) => c.header), ...cells];
  const widths = cols.map((_, i) => Math.max(...all.map((r) => r[i]!.length), 0));
  return all.map((r) => renderRow(r, widths)).join("");
}

export function shortId(id: string, full: boolean): string {
  return full ? id : id.slice(0, 8);
}

/** The flags every listing command takes (fleetctl's): --json, -l/--full, --no-legend, --fields; and --ndjson. */
export interface ListFlags {
  json?: boolean;
  ndjson?: boolean;
  full?: boolean;
  legend: boolean;
  fields: string;
}

export function addListingOptions(cmd: Command, columns: Column<never>[], defaults: string): Command {
  return cmd
    .option("--json", "print the rows as one JSON array")
    .option("--ndjson", "print the rows as JSON, one object per line (as they come)")
    .option("-l, --full", "do not shorten hashes and machine IDs")
    .option("--no-legend", "do not print the header line")
    .option("--fields <list>", `columns to show, from ${columns.map((c) => c.header.toLowerCase()).join(",")}`, defaults);
}

/** renderTable for a listing command; an unknown --fields entry is a usage error (exit 2). */
export function renderListing<T>(rows: T[], columns: Column<T>[], o: ListFlags, jsonRows: unknown[] = rows): string {
  try {
    return renderTable(rows, columns, { json: o.json, full: o.full, noLegend: !o.legend, fields: o.fields }, jsonRows);
  } catch (e) {
    throw new FlotillaError("bad_flag", (e as Error).message, { field: "fields", value: o.fields });
  }
}
