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

export function renderTable<T>(rows: T[], columns: Column<T>[], o: ListingOptions, jsonRows: unknown[] = rows): string {
  if (o.json) return JSON.stringify(jsonRows, null, 2) + "\n";
  let cols = columns;
  if (o.fields) {
    const wanted = o.fields.split(",").map((f) => f.trim().toLowerCase()).filter(Boolean);
    const byName = new Map(columns.map((c) => [c.header.toLowerCase(), c]));
    const unknown = wanted.filter((w) => !byName.has(w));
    if (unknown.length) {
      throw new Error(
        `unknown field(s) ${unknown.join(", ")}; choose from ${columns.map((c) => c.header.toLowerCase()).join(", ")}`,
      );
    }
    cols = wanted.map((w) => byName.get(w)!);
  }
  const cells = rows.map((r) => cols.map((c) => c.value(r, Boolean(o.full))));
  const all = o.noLegend ? cells : [cols.map((c) => c.header), ...cells];
  const widths = cols.map((_, i) => Math.max(...all.map((r) => r[i]!.length), 0));
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("\t").trimEnd()).join("\n") + (all.length ? "\n" : "");
}

export function shortId(id: string, full: boolean): string {
  return full ? id : id.slice(0, 8);
}

/** The flags every listing command takes (fleetctl's): --json, -l/--full, --no-legend, --fields. */
export interface ListFlags {
  json?: boolean;
  full?: boolean;
  legend: boolean;
  fields: string;
}

export function addListingOptions(cmd: Command, columns: Column<never>[], defaults: string): Command {
  return cmd
    .option("--json", "print the rows as JSON")
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
