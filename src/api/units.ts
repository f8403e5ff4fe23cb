// The unit verbs of the `flotilla` API: submit, load, start, stop, unload, destroy, restart,
// list-unit-files, list-units, status, cat. Every body is checked with a strict zod schema
// (unknown fields are refused, the error names the field), then handed to the UnitStore.
//
//   nats req flotilla.api.start '{"units":[{"name":"hello.service","contents":"[Service]\nExecStart=/bin/sleep 600\n"}]}'
//   nats req flotilla.api.list-unit-files ''
import { z } from "zod";
import { FlotillaError, showValue } from "../protocol/errors.js";
import type { UnitRecord } from "../protocol/messages.js";
import { keys, type BucketRole } from "../protocol/names.js";
import { listKeys, type BucketRef } from "../nats/kv-keys.js";
import type { ClusterContext } from "../server/context.js";
import { UnitStore, type UnitOutcome } from "../unit/store.js";
import { CREATING_VERBS, UNIT_VERBS, type UnitVerb } from "../unit/transitions.js";
import { goalReached, waitForUnit } from "../unit/wait.js";
import { normalizeUnitName } from "../unit/index.js";
import type { ApiHandlers } from "./service.js";
import { parseRequest } from "./request.js";
import {
  lastError,
  readMachines,
  readSchedule,
  readStates,
  unitFileRow,
  unitInfo,
  globalsWaiting,
} from "./unit-views.js";

// ---- request schemas ----

const UnitRef = z.object({ name: z.string() }).strict();
const UnitWithContents = z.object({ name: z.string(), contents: z.string().optional() }).strict();

export const CreatingBody = z
  .object({ units: z.array(UnitWithContents).min(1, "give at least one unit"), replace: z.boolean().optional() })
  .strict();
export const NamesBody = z.object({ units: z.array(UnitRef).min(1, "give at least one unit") }).strict();
export const NameBody = z.object({ name: z.string() }).strict();

export { parseRequest };

/**
 * A unit name is at most 255 characters (systemd's rule): a longer one is refused here, before
 * the name checks quote it whole, so an error about a 400 KiB name stays one short line.
 */
const MAX_NAME = 255;
function checkNameLength(name: string, field: string): void {
  if (name.length > MAX_NAME) {
    throw new FlotillaError(
      "invalid_unit_name",
      `invalid unit name ${showValue(name)} (${name.length} characters): longer than ${MAX_NAME} characters`,
      { field, value: showValue(name) },
    );
  }
}
function checkUnitNames(units: readonly { name: string }[]): void {
  units.forEach((u, i) => checkNameLength(u.name, `units[${i}].name`));
}

// ---- replies ----

export type UnitSummary = Omit<UnitRecord, "contents">;

export interface UnitVerbReply {
  units: { name: string; changed: boolean; record: UnitSummary | null }[];
  warnings: string[];
}

function summary(r: UnitRecord | null): UnitSummary | null {
  if (!r) return null;
  const { contents: _contents, ...rest } = r;
  return rest;
}

function reply(outcomes: UnitOutcome[]): UnitVerbReply {
  return {
    units: outcomes.map((o) => ({ name: o.name, changed: o.changed, record: summary(o.record) })),
    warnings: outcomes.flatMap((o) => (o.warning ? [o.warning] : [])),
  };
}

/** How long the API's restart waits for a unit's task to stop before starting it again. */
export const RESTART_STOP_WAIT_MS = 5000;

const EX_UNITS = `{"units":[{"name":"hello.service","contents":"..."}]}`;
const EX_NAMES = `{"units":[{"name":"hello.service"}]}`;
const EX_NAME = `{"name":"hello.service"}`;

export function unitHandlers(ctx: ClusterContext): ApiHandlers {
  const log = ctx.log.child({ component: "api-units" });
  const ref = (role: BucketRole): BucketRef => ({ kv: ctx.buckets[role], nc: ctx.nc, name: ctx.names.bucket(role) });
  const store = new UnitStore(ctx.buckets.units, { log, listKeys: () => listKeys(ctx.nc, ctx.names.bucket("units")) });
  const h: ApiHandlers = {};

  for (const verb of UNIT_VERBS) {
    if ((CREATING_VERBS as readonly string[]).includes(verb)) {
      h[verb] = async (body) => {
        const req = parseRequest(CreatingBody, body, verb, EX_UNITS);
        checkUnitNames(req.units);
        return reply(await store.apply(verb as "submit" | "load" | "start", req.units, req.replace ?? false));
      };
    } else if (verb === "restart") {
      h[verb] = async (body) => {
        const req = parseRequest(NamesBody, body, verb, EX_NAMES);
        checkUnitNames(req.units);
        const outcomes = await store.restart(
          req.units.map((u) => u.name),
          async (name) => {
            await waitForUnit(ref("states"), name, (s) => goalReached("stopped", s), {
              timeoutMs: RESTART_STOP_WAIT_MS,
              log,
            });
          },
        );
        return reply(outcomes);
      };
    } else {
      h[verb] = async (body) => {
        const req = parseRequest(NamesBody, body, verb, EX_NAMES);
        checkUnitNames(req.units);
        return reply(await store.apply(verb as Exclude<UnitVerb, "restart">, req.units, false));
      };
    }
  }

  // list-unit-files and list-units: src/api/listings.ts (paged, from an index per bucket).

  const getUnit = async (body: unknown, verb: string): Promise<UnitRecord> => {
    const req = parseRequest(NameBody, body, verb, EX_NAME);
    checkNameLength(req.name, "name");
    let name: string;
    try {
      name = normalizeUnitName(req.name);
    } catch (e) {
      if (e instanceof FlotillaError) throw new FlotillaError("invalid_unit_name", e.message, { field: "name", value: req.name });
      throw e;
    }
    const r = await store.get(name);
    if (!r) throw new FlotillaError("unknown_unit", `unit ${name} does not exist in the cluster`, { field: "name", value: name });
    return r;
  };

  h.cat = async (body) => {
    const r = await getUnit(body, "cat");
    return { name: r.name, contents: r.contents };
  };

  h.status = async (body) => {
    const r = await getUnit(body, "status");
    const [sched, statesByUnit, machines] = await Promise.all([
      readSchedule(ref("schedule"), log),
      readStates(ref("states"), log, keys.statesOfUnit(r.name)),
      readMachines(ref("machines"), log),
    ]);
    const states = statesByUnit.get(r.name) ?? [];
    const info = unitInfo(r, log);
    const row = unitFileRow(r, { ...sched, states: statesByUnit, machines }, info);
    return {
      unit: r,
      description: info.description,
      global: info.global,
      currentState: row.currentState,
      target: row.target,
      // A global unit has no schedule entries (the agents run it themselves): its machines are
      // the ones that report it.
      machines: (info.global ? [...new Set(states.map((s) => s.machineId))].sort() : row.machines).map((id) => ({
        id,
        publicIp: machines.get(id)?.publicIp || null,
      })),
      /** IP of every machine named here (scheduled or reporting a state). */
      machineIps: Object.fromEntries(
        [...new Set([...row.machines, ...states.map((s) => s.machineId)])].map((id) => [id, machines.get(id)?.publicIp || null]),
      ),
      unplaced: info.global && states.length === 0 && r.desiredState !== "inactive"
        ? (globalsWaiting(await store.listWithArrival(), log).get(r.name) ?? null)
        : row.unplaced,
      /** Per filter, the machines it refused ({why, count, machines}), while the unit is unplaced. */
      refusals: row.unplaced !== null ? (sched.refusals?.get(r.name) ?? []) : [],
      states,
      lastError: lastError(states),
    };
  };

  return h;
}
