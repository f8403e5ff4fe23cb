// The units bucket, written only here and only with compare-and-set: `create` for a new key,
// `update(key, value, revision)` for an existing one, `delete(key, {previousSeq})` to destroy.
// A lost race (JetStream 10071 "wrong last sequence") re-reads the record and decides again,
// so concurrent writers never lose an update and a verb that became illegal meanwhile fails.
//
// A request for several units is checked whole before anything is written (names, unit files,
// existence, legality), so bad input changes nothing; each unit file is parsed once, there.
// The check reads every record in one pipelined batch, and the writes then go out pipelined,
// each a compare-and-set on the revision the check read (not a transaction, as in fleetctl: a
// failure leaves the other units written). A unit whose write lost a race (another writer
// changed it since the check) is re-read and decided again alone; a unit named twice in one
// request is written in request order, the second decided on the first's result.
import type { KV, KvEntry } from "@nats-io/kv";
import type { Logger } from "pino";
import { encode, decodeAs } from "../protocol/codec.js";
import { FlotillaError, describeError, isWrongLastSequence } from "../protocol/errors.js";
import { UnitRecord } from "../protocol/messages.js";
import { keys } from "../protocol/names.js";
import { silentLogger } from "../log.js";
import type { ParsedUnit } from "./types.js";
import { parseUnitFile, normalizeUnitName, unitHash, isTemplate, instanceOf, MAX_UNIT_FILE_BYTES } from "./index.js";
import { decide, isCreatingVerb, type Decision, type UnitVerb } from "./transitions.js";
import { arrivalOf } from "./match.js";

/** The parser's entry points, injectable so the store can be tested alone. */
export interface UnitFiles {
  parse(name: string, contents: string): ParsedUnit;
  normalizeName(name: string): string;
  hash(contents: string): string;
}

export const defaultUnitFiles: UnitFiles = {
  parse: parseUnitFile,
  normalizeName: normalizeUnitName,
  hash: unitHash,
};

export interface UnitRequest {
  name: string;
  contents?: string;
}

export interface UnitOutcome {
  name: string;
  /** The record after the verb; null once destroyed. */
  record: UnitRecord | null;
  changed: boolean;
  warning?: string;
}

export interface UnitStoreOptions {
  log?: Logger;
  files?: UnitFiles;
  now?: () => number;
  /** Attempts of one compare-and-set before giving up with `conflict`. */
  maxAttempts?: number;
  /** Lists keys without a consumer (see nats/kv-keys.ts); default kv.keys(). */
  listKeys?: () => Promise<string[]>;
}

interface Slot {
  record?: UnitRecord;
  /** Revision of the last entry of the key (a PUT, a delete marker or garbage); undefined: never written. */
  revision?: number;
}

interface Planned {
  name: string;
  contents?: string;
  hash?: string;
  /** The record as the check read it: the first write's compare-and-set is on its revision. */
  slot?: Slot;
}

/** How many reads or compare-and-set writes one verb keeps in flight. */
const WRITE_WINDOW = 256;

/** Gets in parallel batches: sequential gets cost ~130 µs each; unbounded parallel ones flood. */
const GET_BATCH = 256;

export async function getMany(kv: KV, names: string[]): Promise<(KvEntry | null)[]> {
  const out: (KvEntry | null)[] = [];
  for (let i = 0; i < names.length; i += GET_BATCH) {
    out.push(...(await Promise.all(names.slice(i, i + GET_BATCH).map((k) => kv.get(k).catch(() => null)))));
  }
  return out;
}

export class UnitStore {
  private readonly log: Logger;
  private readonly files: UnitFiles;
  private readonly now: () => number;
  private readonly maxAttempts: number;
  private readonly listKeys: () => Promise<string[]>;

  constructor(
    private readonly kv: KV,
    o: UnitStoreOptions = {},
  ) {
    this.log = o.log ?? silentLogger;
    this.files = o.files ?? defaultUnitFiles;
    this.now = o.now ?? Date.now;
    this.maxAttempts = o.maxAttempts ?? 500;
    this.listKeys =
      o.listKeys ??
      (async () => {
        const out: string[] = [];
        for await (const k of await kv.keys()) out.push(k);
        return out;
      });
  }

  // ---- reads ----

  private slotOf(name: string, e: KvEntry | null): Slot {
    if (!e) return {};
    if (e.operation !== "PUT") return { revision: e.revision };
    try {
      return { record: decodeAs(UnitRecord, e.value, `units/${e.key}`), revision: e.revision };
    } catch (err) {
      // Garbage in the bucket: treated as absent (a new submit may overwrite it), never a crash.
      this.log.warn({ unit: name, err: describeError(err) }, "skipping a unit record that does not decode");
      return { revision: e.revision };
    }
  }

  private async read(name: string): Promise<Slot> {
    return this.slotOf(name, await this.kv.get(keys.unit(name)));
  }

  /** read() of many units, pipelined (a failed read fails the whole, as read() does). */
  private async readMany(names: string[]): Promise<Map<string, Slot>> {
    const unique = [...new Set(names)];
    const out = new Map<string, Slot>();
    for (let i = 0; i < unique.length; i += WRITE_WINDOW) {
      const part = unique.slice(i, i + WRITE_WINDOW);
      const entries = await Promise.all(part.map((n) => this.kv.get(keys.unit(n))));
      part.forEach((n, j) => out.set(n, this.slotOf(n, entries[j] ?? null)));
    }
    return out;
  }

  async get(name: string): Promise<UnitRecord | undefined> {
    return (await this.read(this.files.normalizeName(name))).record;
  }

  /** Every decodable unit record, sorted by name; garbage values are logged and skipped. */
  async list(): Promise<UnitRecord[]> {
    return (await this.listWithArrival()).map((x) => x.record);
  }

  /** list(), each record with its arrival (arrivalOf: first come, first served between globals). */
  async listWithArrival(): Promise<{ record: UnitRecord; arrival: number }[]> {
    const names = await this.listKeys();
    const entries = await getMany(this.kv, names);
    const out: { record: UnitRecord; arrival: number }[] = [];
    for (let i = 0; i < names.length; i++) {
      const slot = this.slotOf(keys.unitFromKey(names[i]!), entries[i] ?? null);
      if (slot.record) out.push({ record: slot.record, arrival: arrivalOf(slot.record, slot.revision!) });
    }
    return out.sort((a, b) => (a.record.name < b.record.name ? -1 : a.record.name > b.record.name ? 1 : 0));
  }

  // ---- verbs ----

  submit(reqs: UnitRequest[], replace = false): Promise<UnitOutcome[]> {
    return this.apply("submit", reqs, replace);
  }
  load(reqs: UnitRequest[], replace = false): Promise<UnitOutcome[]> {
    return this.apply("load", reqs, replace);
  }
  start(reqs: UnitRequest[], replace = false): Promise<UnitOutcome[]> {
    return this.apply("start", reqs, replace);
  }
  stop(names: string[]): Promise<UnitOutcome[]> {
    return this.apply("stop", names.map((name) => ({ name })), false);
  }
  unload(names: string[]): Promise<UnitOutcome[]> {
    return this.apply("unload", names.map((name) => ({ name })), false);
  }
  destroy(names: string[]): Promise<UnitOutcome[]> {
    return this.apply("destroy", names.map((name) => ({ name })), false);
  }
  /**
   * stop then start, as two writes (so watchers see the unit leave `launched`); `between` runs
   * after the stop of each unit (the API waits there for the task to stop).
   */
  async restart(names: string[], between?: (name: string) => Promise<void>): Promise<UnitOutcome[]> {
    const planned = await this.check("restart", names.map((name) => ({ name })), false);
    const stopped = await this.writeMany(planned, (p) => (cur) => {
      if (cur?.desiredState === "inactive") throw restartInactive(p.name);
      return decide("stop", cur, { name: p.name, replace: false });
    });
    // Wait for all the stops at once: one bound for the request, not one per unit.
    if (between) await Promise.all(stopped.filter((o) => o.changed).map((o) => between(o.name)));
    // The starts read again: the stops changed every record.
    const started = await this.writeMany(
      planned.map((p) => ({ name: p.name })),
      (p) => (cur) => decide("start", cur, { name: p.name, replace: false }),
    );
    return started.map((o, i) => ({ ...o, changed: stopped[i]!.changed || o.changed }));
  }

  /** Applies a verb to several units: everything is checked first, then written (pipelined). */
  async apply(verb: Exclude<UnitVerb, "restart">, reqs: UnitRequest[], replace: boolean): Promise<UnitOutcome[]> {
    const planned = await this.check(verb, reqs, replace);
    return this.writeMany(planned, (p) => (cur) => decide(verb, cur, { name: p.name, contents: p.contents, hash: p.hash, replace }));
  }

  /**
   * Generic compare-and-set on one existing unit: `fn` gets the current record and returns the
   * next (version and updatedAt are set here). For tools and tests; verbs go through decide().
   */
  async mutate(name: string, fn: (r: UnitRecord) => Pick<UnitRecord, "contents" | "hash" | "desiredState">): Promise<UnitOutcome> {
    const n = this.files.normalizeName(name);
    return this.write(n, (cur) => {
      if (!cur) throw new FlotillaError("unknown_unit", `unit ${n} does not exist in the cluster`, { field: "name", value: n });
      const next = fn(cur);
      return { action: "put", ...next };
    }, true);
  }

  // ---- internals ----

  /**
   * Phase one: validate every request and decide against the current records; writes nothing.
   * Names and unit files first (no I/O), then every record in one batch, then the templates
   * of the instances that need one, in a second batch.
   */
  private async check(verb: UnitVerb, reqs: UnitRequest[], replace: boolean): Promise<Planned[]> {
    const names: string[] = [];
    for (let i = 0; i < reqs.length; i++) {
      const req = reqs[i]!;
      const name = this.normalize(req.name, `units[${i}].name`);
      if (isTemplate(name) && verb !== "submit" && verb !== "destroy" && verb !== "unload") {
        throw new FlotillaError(
          "illegal_state_change",
          `${name} is a template: ${verb} an instance of it instead (for example ${name.replace("@.", "@1.")})`,
          { field: `units[${i}].name`, value: name },
        );
      }
      if (req.contents !== undefined) this.validateContents(name, req.contents, `units[${i}].contents`);
      names.push(name);
    }
    const slots = await this.readMany(names);
    const creating = verb !== "restart" && isCreatingVerb(verb);
    const templates = new Map<string, Slot>();
    if (creating) {
      const wanted: string[] = [];
      names.forEach((name, i) => {
        const tmpl = instanceOf(name)?.template;
        if (tmpl && !slots.get(name)!.record && reqs[i]!.contents === undefined) wanted.push(tmpl);
      });
      if (wanted.length) for (const [k, v] of await this.readMany(wanted)) templates.set(k, v);
    }
    const planned: Planned[] = [];
    for (let i = 0; i < reqs.length; i++) {
      const name = names[i]!;
      const slot = slots.get(name)!;
      let contents = reqs[i]!.contents;
      if (!slot.record && contents === undefined && creating) {
        contents = this.fromTemplate(name, `units[${i}].name`, templates);
      }
      const hash = contents === undefined ? undefined : this.files.hash(contents);
      if (verb === "restart") {
        if (!slot.record) throw new FlotillaError("unknown_unit", `unit ${name} does not exist in the cluster`, { field: `units[${i}].name`, value: name });
        if (slot.record.desiredState === "inactive") throw restartInactive(name);
      } else {
        try {
          decide(verb, slot.record, { name, contents, hash, replace });
        } catch (e) {
          if (e instanceof FlotillaError) {
            throw new FlotillaError(e.code, e.message, { field: `units[${i}].name`, value: name, line: e.line });
          }
          throw e;
        }
      }
      planned.push({ name, contents, hash, slot });
    }
    return planned;
  }

  private normalize(raw: string, field: string): string {
    try {
      return this.files.normalizeName(raw);
    } catch (e) {
      if (e instanceof FlotillaError) throw new FlotillaError("invalid_unit_name", e.message, { field, value: raw });
      throw e;
    }
  }

  private validateContents(name: string, contents: string, field: string): void {
    const bytes = Buffer.byteLength(contents, "utf8");
    if (bytes > MAX_UNIT_FILE_BYTES) {
      throw new FlotillaError(
        "payload_too_large",
        `unit file of ${name} is ${bytes} bytes; the limit is ${MAX_UNIT_FILE_BYTES} bytes`,
        { field, value: bytes },
      );
    }
    try {
      this.files.parse(name, contents);
    } catch (e) {
      if (e instanceof FlotillaError) {
        throw new FlotillaError("invalid_unit_file", `${name}: ${e.message}`, { field, line: e.line, value: name });
      }
      throw new FlotillaError("invalid_unit_file", `${name}: ${describeError(e)}`, { field, value: name });
    }
  }

  /** fleet's lazy instantiation: foo@1.service from a submitted foo@.service (read in check's batch). */
  private fromTemplate(name: string, field: string, templates: ReadonlyMap<string, Slot>): string | undefined {
    const tmpl = instanceOf(name)?.template;
    if (!tmpl) return undefined;
    const slot = templates.get(tmpl);
    if (!slot?.record) {
      throw new FlotillaError(
        "unknown_unit",
        `unit ${name} does not exist in the cluster, nor does its template ${tmpl}; submit one of them with its unit file`,
        { field, value: name },
      );
    }
    this.validateContents(name, slot.record.contents, field);
    return slot.record.contents;
  }

  /**
   * Phase two for many units: the first write of each unit goes out pipelined, a
   * compare-and-set on the revision the check read (read now when it has none); a unit whose
   * write lost a race goes through write() alone (re-read, decided again). A unit named again
   * later in the request is written after, in request order. Outcomes in request order.
   */
  private async writeMany(planned: Planned[], decideFor: (p: Planned) => (cur: UnitRecord | undefined) => Decision): Promise<UnitOutcome[]> {
    const out: (UnitOutcome | undefined)[] = new Array(planned.length);
    const first: number[] = [];
    const again: number[] = [];
    const seen = new Set<string>();
    planned.forEach((p, i) => {
      if (seen.has(p.name)) again.push(i);
      else {
        seen.add(p.name);
        first.push(i);
      }
    });
    const unread = first.filter((i) => !planned[i]!.slot).map((i) => planned[i]!.name);
    const fresh = unread.length ? await this.readMany(unread) : undefined;
    let failure: unknown;
    for (let k = 0; k < first.length; k += WRITE_WINDOW) {
      await Promise.all(
        first.slice(k, k + WRITE_WINDOW).map(async (i) => {
          const p = planned[i]!;
          try {
            const fn = decideFor(p);
            out[i] = (await this.attempt(p.name, p.slot ?? fresh!.get(p.name)!, fn)) ?? (await this.write(p.name, fn));
          } catch (e) {
            failure ??= e;
          }
        }),
      );
      if (failure !== undefined) throw failure;
    }
    for (const i of again) out[i] = await this.write(planned[i]!.name, decideFor(planned[i]!));
    return out as UnitOutcome[];
  }

  /** Phase two for one unit: a compare-and-set write, reading and deciding again on every attempt. */
  private async write(
    name: string,
    decideFn: (cur: UnitRecord | undefined) => Decision,
    alwaysBump = false,
  ): Promise<UnitOutcome> {
    for (let attempt = 1; attempt <= this.maxAttempts; attempt++) {
      const done = await this.attempt(name, await this.read(name), decideFn, alwaysBump);
      if (done) return done;
      // Lost the race: back off a little (jittered, growing) and decide again on the new record.
      await new Promise((r) => setTimeout(r, Math.random() * Math.min(2 * attempt, 20)));
    }
    throw new FlotillaError("conflict", `gave up writing ${name} after ${this.maxAttempts} attempts: other writers keep changing it`, {
      field: "units",
      value: name,
      temporary: true,
    });
  }

  /** One compare-and-set on the record `slot` read; undefined: another writer changed it first. */
  private async attempt(
    name: string,
    slot: Slot,
    decideFn: (cur: UnitRecord | undefined) => Decision,
    alwaysBump = false,
  ): Promise<UnitOutcome | undefined> {
    const key = keys.unit(name);
    const d = decideFn(slot.record);
    try {
      if (d.action === "none" && !alwaysBump) {
        return { name, record: slot.record ?? null, changed: false, warning: d.warning };
      }
      if (d.action === "delete") {
        if (slot.revision === undefined || !slot.record) return { name, record: null, changed: false };
        await this.kv.delete(key, { previousSeq: slot.revision });
        return { name, record: null, changed: true };
      }
      const cur = slot.record;
      const now = this.now();
      const desiredState = d.action === "put" ? d.desiredState : cur!.desiredState;
      const activated = activatedRevision(cur, slot.revision, desiredState);
      const next: UnitRecord = {
        name,
        contents: d.action === "put" ? d.contents : cur!.contents,
        hash: d.action === "put" ? d.hash : cur!.hash,
        desiredState,
        version: (cur?.version ?? 0) + 1,
        createdAt: cur?.createdAt ?? now,
        updatedAt: now,
        ...(activated === undefined ? {} : { activatedRevision: activated }),
      };
      const bytes = encode(next);
      if (slot.revision === undefined) await this.kv.create(key, bytes);
      else await this.kv.update(key, bytes, slot.revision);
      return { name, record: next, changed: true, warning: d.action === "put" ? d.warning : undefined };
    } catch (e) {
      if (!isWrongLastSequence(e)) throw e;
      return undefined;
    }
  }
}

/**
 * The arrival a written record carries (UnitRecord.activatedRevision), first come, first served
 * between conflicting globals. A write that makes the unit wanted (created loaded or launched,
 * or leaving inactive) carries none: its own revision, known only once it is made, is the
 * arrival, and readers take it from the entry. The next write, a compare-and-set on exactly
 * that revision, pins it; later ones keep it. A record from before the field is pinned at the
 * revision readers already used for it, so nobody's order changes. Inactive: no arrival.
 */
export function activatedRevision(
  cur: UnitRecord | undefined,
  curRevision: number | undefined,
  next: UnitRecord["desiredState"],
): number | undefined {
  if (next === "inactive" || !cur || cur.desiredState === "inactive" || curRevision === undefined) return undefined;
  return cur.activatedRevision ?? curRevision;
}

function restartInactive(name: string): FlotillaError {
  return new FlotillaError("illegal_state_change", `cannot restart ${name}: it is inactive; use start`, {
    field: "units",
    value: name,
  });
}
