// Unit names, templates and specifiers. fleetctl appends ".service" to a name without a known
// unit type; templates are "prefix@.service", instances "prefix@instance.service", and the
// specifiers %n %N %p %i (plus systemd's %P %I and %%) come from the name alone.
import { FlotillaError, showValue } from "../protocol/errors.js";
import { isValidUnitName } from "../protocol/names.js";

/** The unit types systemd (and so fleet's name validation) knows. */
export const UNIT_TYPES = [
  "service",
  "socket",
  "busname",
  "target",
  "snapshot",
  "device",
  "mount",
  "automount",
  "swap",
  "timer",
  "path",
  "slice",
  "scope",
] as const;

const ALLOWED = /^[a-zA-Z0-9:_.@-]$/;
const ALLOWED_NAME = /^[a-zA-Z0-9:_.@-]*$/;
/** A .service name that normalizeUnitName returns as it is: no leading '@' or '.', no '.' before ".service". */
const WHOLE_SERVICE = /^[a-zA-Z0-9:_-][a-zA-Z0-9:_.@-]*[a-zA-Z0-9:_@-]\.service$/;

function nameError(name: string, why: string): FlotillaError {
  return new FlotillaError("invalid_unit_name", `invalid unit name ${showValue(name)}: ${why}`, {
    field: "name",
    value: name,
  });
}

function suffixOf(name: string): string | undefined {
  const dot = name.lastIndexOf(".");
  if (dot < 0) return undefined;
  const s = name.slice(dot + 1);
  return (UNIT_TYPES as readonly string[]).includes(s) ? s : undefined;
}

/**
 * Validates a unit name and appends ".service" when it has no known unit type, as fleetctl
 * does ("hello" -> "hello.service", "hello@" -> "hello@.service"). Throws invalid_unit_name
 * that names the name and the rule it breaks.
 */
export function normalizeUnitName(name: string): string {
  // Most names are already whole and pass every rule (the engine asks twice per unit).
  if (typeof name === "string" && name.length <= 255 && WHOLE_SERVICE.test(name)) return name;
  return normalizeByRules(name);
}

/** normalizeUnitName, every rule in turn (exported for the test that holds the shortcut to it). */
export function normalizeByRules(name: string): string {
  if (typeof name !== "string" || name.length === 0) throw nameError(String(name ?? ""), "the name is empty");
  // The common case in one test; the loop only to say which character is wrong.
  if (!ALLOWED_NAME.test(name)) for (const ch of name) {
    if (!ALLOWED.test(ch)) {
      const shown = ch === " " ? "a space" : ch === "/" ? `"/" (give the unit name, not a path)` : showValue(ch);
      throw nameError(name, `${shown} is not allowed; use letters, digits and ':', '_', '.', '@', '-'`);
    }
  }
  const full = suffixOf(name) ? name : `${name}.service`;
  if (full.length > 255) throw nameError(name, "longer than 255 characters");
  if (full.startsWith("@")) throw nameError(name, `a name cannot start with "@"`);
  if (full.startsWith(".")) throw nameError(name, `a name cannot start with "."`);
  if (name.endsWith(".")) throw nameError(name, `a name cannot end with "."`);
  const stem = full.slice(0, full.lastIndexOf("."));
  if (stem === "" || stem.endsWith(".")) throw nameError(name, `the part before ".${full.slice(stem.length + 1)}" is empty or ends with "."`);
  if (!isValidUnitName(full)) throw nameError(name, "not a valid unit name");
  return full;
}

export interface UnitNameInfo {
  /** "foo@bar.service" */
  fullName: string;
  /** Without the type suffix: "foo@bar" */
  name: string;
  /** Before the '@' (or the whole name): "foo" */
  prefix: string;
  /** After the '@': "bar"; "" for a template or a plain unit. */
  instance: string;
  /** Unit type: "service" */
  type: string;
  /** For a template or an instance: "foo@.service". */
  template?: string;
}

/**
 * Splits a unit name into its parts, as fleet's unit.NewUnitNameInfo. A name without a known
 * type is read as a .service (as normalizeUnitName would make it); nothing is validated here.
 */
export function unitNameInfo(unitName: string): UnitNameInfo {
  const fullName = suffixOf(unitName) ? unitName : `${unitName}.service`;
  const dot = fullName.lastIndexOf(".");
  const name = dot < 0 ? fullName : fullName.slice(0, dot);
  const type = dot < 0 ? "" : fullName.slice(dot + 1);
  const at = name.indexOf("@");
  if (at < 0) return { fullName, name, prefix: name, instance: "", type };
  const prefix = name.slice(0, at);
  return {
    fullName,
    name,
    prefix,
    instance: name.slice(at + 1),
    type,
    template: `${prefix}@.${type}`,
  };
}

/** "foo@.service" is a template: it can be submitted but not run. */
export function isTemplate(name: string): boolean {
  const info = unitNameInfo(name);
  return info.template !== undefined && info.instance === "";
}

/** "foo@1.service" -> { template: "foo@.service", instance: "1", prefix: "foo" }; else undefined. */
export function instanceOf(name: string): { template: string; instance: string; prefix: string } | undefined {
  const info = unitNameInfo(name);
  if (info.template === undefined || info.instance === "") return undefined;
  return { template: info.template, instance: info.instance, prefix: info.prefix };
}

/** systemd's unit name unescaping for %I and %P: "\x2d" -> "-". */
function unescapeName(s: string): string {
  return s.replace(/\\x([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

function lastDash(prefix: string): string {
  return prefix.slice(prefix.lastIndexOf("-") + 1);
}

/** systemd's path unescaping for %f: "var-lib-x" -> "/var/lib/x". */
function unescapePath(s: string): string {
  return "/" + unescapeName(s.replace(/-/g, "/")).replace(/^\/+/, "");
}

/** Host facts for the machine specifiers, known only to the agent that runs the unit. */
export interface HostInfo {
  hostname?: string; // %H, %l
  machineId?: string; // %m
  bootId?: string; // %b
}

/** Specifiers systemd resolves from the host or the service manager, not from the name. */
const HOST_SPECIFIERS = new Set("aAbBCdEgGhHlLmMoqsStTuUvVwWyY".split(""));

export class SpecifierError extends Error {}

/**
 * Expands the unit-name specifiers in one value; with `host`, also %H %l %m %b. Other systemd
 * specifiers (%u, %h, %t... and the host ones without `host`) are left as written: the agent
 * parses again with `host` and so expands everything in one exact pass. A specifier systemd
 * does not have is an error.
 */
export function expandSpecifiers(value: string, unitName: string, host?: HostInfo): string {
  if (!value.includes("%")) return value;
  const info = unitNameInfo(unitName);
  let out = "";
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c !== "%") {
      out += c;
      continue;
    }
    const s = value[i + 1];
    i++;
    switch (s) {
      case "n": out += info.fullName; break;
      case "N": out += info.name; break;
      case "p": out += info.prefix; break;
      case "P": out += unescapeName(info.prefix); break;
      case "i": out += info.instance; break;
      case "I": out += unescapeName(info.instance); break;
      case "j": out += lastDash(info.prefix); break;
      case "J": out += unescapeName(lastDash(info.prefix)); break;
      case "f": out += unescapePath(info.instance || info.prefix); break;
      case "%": out += "%"; break;
      case undefined:
        throw new SpecifierError(`a lone "%" ends the value (write "%%" for a percent sign)`);
      default: {
        if (!HOST_SPECIFIERS.has(s)) {
          throw new SpecifierError(`unknown specifier "%${s}" (write "%%" for a percent sign)`);
        }
        const hv = !host ? undefined : s === "H" || s === "l" ? host.hostname : s === "m" ? host.machineId : s === "b" ? host.bootId : undefined;
        out += hv ?? `%${s}`;
      }
    }
  }
  return out;
}
