// The role lists as data: which subjects each role's permissions match, with NATS's own
// wildcard rules (`*` one token, `>` the rest). The real server checks them in
// test/integration/auth-roles.test.ts; this pins the edges (unit names with many dots, other
// machines' keys, the read-only verbs) cheaply.
import { describe, expect, it } from "vitest";
import { UNIT_TOKENS, VIEWER_VERBS, inboxPrefixFor, permissionsFor } from "../../src/auth/roles.js";
import { API_VERBS, Names, keys, subjectMatches as matches } from "../../src/protocol/names.js";
import { authConf } from "../../src/auth/users.js";

const names = new Names("fl");

const allows = (list: string[], subject: string) => list.some((p) => matches(p, subject));
const machine = permissionsFor({ role: "machine", names, user: "machine-m1", machineId: "m1" });
const engine = permissionsFor({ role: "engine", names, user: "machine-m1", machineId: "m1" });
const operator = permissionsFor({ role: "operator", names, user: "operator" });
const viewer = permissionsFor({ role: "viewer", names, user: "viewer" });

describe("roles", () => {
  it("a machine writes its own states and journal for unit names of 1 to UNIT_TOKENS dotted parts, never another machine's", () => {
    for (let n = 1; n <= UNIT_TOKENS; n++) {
      const unit = [...Array(n - 1).fill("x"), "service"].join(".");
      expect(allows(machine.publish.allow, `$KV.${names.bucket("states")}.${keys.state(unit, "m1")}`), unit).toBe(true);
      expect(allows(machine.publish.allow, names.journalSubject(unit, "m1")), unit).toBe(true);
      expect(allows(machine.publish.allow, `$KV.${names.bucket("states")}.${keys.state(unit, "m2")}`), unit).toBe(false);
      expect(allows(machine.publish.allow, names.journalSubject(unit, "m2")), unit).toBe(false);
    }
    const tooLong = [...Array(UNIT_TOKENS).fill("x"), "service"].join(".");
    expect(allows(machine.publish.allow, `$KV.${names.bucket("states")}.${keys.state(tooLong, "m1")}`)).toBe(false);
  });

  it("a machine writes only its own record and watches only its own schedule slice", () => {
    expect(allows(machine.publish.allow, `$KV.${names.bucket("machines")}.m1`)).toBe(true);
    expect(allows(machine.publish.allow, `$KV.${names.bucket("machines")}.m2`)).toBe(false);
    const watch = (id: string) => `$JS.API.CONSUMER.CREATE.KV_${names.bucket("schedule")}.c1.$KV.${names.bucket("schedule")}.${keys.scheduleOfMachine(id)}`;
    expect(allows(machine.publish.allow, watch("m1"))).toBe(true);
    expect(allows(machine.publish.allow, watch("m2"))).toBe(false);
    for (const b of ["schedule", "leases", "units"] as const) {
      expect(allows(machine.publish.allow, `$KV.${names.bucket(b)}.m1.x`), b).toBe(false);
      expect(allows(engine.publish.allow, `$KV.${names.bucket(b)}.m1.x`), b).toBe(true);
    }
    expect(allows(machine.subscribe.allow, names.apiSubject("start"))).toBe(false);
    expect(allows(engine.subscribe.allow, names.apiSubject("start"))).toBe(true);
  });

  it("the operator sends every verb and writes no bucket; the viewer sends only the read verbs", () => {
    for (const v of API_VERBS) {
      expect(allows(operator.publish.allow, names.apiSubject(v)), v).toBe(true);
      expect(allows(viewer.publish.allow, names.apiSubject(v)), v).toBe((VIEWER_VERBS as readonly string[]).includes(v));
    }
    for (const b of ["units", "schedule", "states", "machines", "leases"] as const) {
      expect(allows(operator.publish.allow, `$KV.${names.bucket(b)}.x`), b).toBe(false);
      expect(allows(viewer.publish.allow, `$KV.${names.bucket(b)}.x`), b).toBe(false);
    }
  });

  it("every user has its own reply subjects", () => {
    expect(inboxPrefixFor("machine-m1")).toBe("_INBOX_machine-m1");
    expect(inboxPrefixFor("a.b*c>")).toBe("_INBOX_a_b_c_");
    expect(allows(operator.subscribe.allow, `${inboxPrefixFor("operator")}.abc`)).toBe(true);
    expect(allows(operator.subscribe.allow, `${inboxPrefixFor("viewer")}.abc`)).toBe(false);
    expect(allows(operator.subscribe.allow, "_INBOX.abc")).toBe(false);
  });

  it("auth.conf holds the hashes and the permissions, as JSON nats-server reads", () => {
    const text = authConf({ prefix: "fl", users: [{ user: "operator", role: "operator", hash: "$2b$10$abc" }] });
    const json = JSON.parse(text.slice(text.indexOf("{"))) as { users: { user: string; password: string; permissions: unknown }[] };
    expect(json.users[0]).toEqual({ user: "operator", password: "$2b$10$abc", permissions: operator });
  });
});
