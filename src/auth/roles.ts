// Who may publish and subscribe to what on the bus: the four roles of docs/auth.md, as the
// nats-server `permissions` of a static user. Every list was found by test
// (test/integration/auth-roles.test.ts runs the main paths with each role against a server
// that logs every refusal) and every subject comes from Names, never typed here by hand.
//
// Unit names hold dots ("hello.service"), so a key or subject that ends with a machine ID
// ("hello.service.m1") has a variable number of tokens before it; NATS wildcards cannot say
// "anything, then m1", so the lists spell out 1 to UNIT_TOKENS tokens. A unit whose name has
// more dots than that cannot report its state under auth (the refusal names the subject).
import { Names, READ_VERBS, type BucketRole, kvNames } from "../protocol/names.js";

export const ROLES = ["machine", "engine", "operator", "viewer"] as const;
export type Role = (typeof ROLES)[number];

/** Dotted parts a unit name may have and still be written by its machine (a.b.c.service: 4). */
export const UNIT_TOKENS = 8;

export interface Permissions {
  publish: { allow: string[] };
  subscribe: { allow: string[] };
  /** Lets a service answer requests (publish to the requester's reply subject, once). */
  allow_responses?: boolean;
}

/**
 * The reply subjects of one user: nats.js takes `inboxPrefix`, so every request, watch and
 * consumer of this user gets its replies under here and no other user may subscribe to them.
 */
export function inboxPrefixFor(user: string): string {
  return `_INBOX_${user.replace(/[^A-Za-z0-9_-]/g, "_")}`;
}

const STREAM = (bucket: string) => kvNames.stream(bucket);

/** `<head>.*.<tail>`, `<head>.*.*.<tail>`, ... for unit names of 1..UNIT_TOKENS tokens. */
function unitThen(head: string, tail: string): string[] {
  const out: string[] = [];
  for (let n = 1; n <= UNIT_TOKENS; n++) out.push(`${head}.${Array(n).fill("*").join(".")}.${tail}`);
  return out;
}

/** Reading a stream: info (also key listings), direct gets, watches (ordered consumers). */
function streamRead(stream: string): string[] {
  return [
    `$JS.API.STREAM.INFO.${stream}`,
    `$JS.API.DIRECT.GET.${stream}`,
    `$JS.API.DIRECT.GET.${stream}.>`,
    `$JS.API.CONSUMER.CREATE.${stream}`,
    `$JS.API.CONSUMER.CREATE.${stream}.>`,
    `$JS.API.CONSUMER.INFO.${stream}.*`,
    `$JS.API.CONSUMER.DELETE.${stream}.*`,
    `$JS.FC.${stream}.>`,
  ];
}

function kvRead(names: Names, roles: readonly BucketRole[]): string[] {
  return roles.flatMap((r) => streamRead(STREAM(names.bucket(r))));
}

const ALL_BUCKETS: readonly BucketRole[] = ["units", "schedule", "states", "machines", "leases"];

/** Reading the journal stream the way the `journal` verb does (a pull consumer, acked). */
function journalRead(names: Names): string[] {
  const s = names.journalStream();
  return [
    ...streamRead(s),
    `$JS.API.CONSUMER.DURABLE.CREATE.${s}.*`,
    `$JS.API.CONSUMER.MSG.NEXT.${s}.*`,
    `$JS.API.STREAM.MSG.GET.${s}`,
    `$JS.ACK.${s}.>`,
  ];
}

function kvWrite(names: Names, role: BucketRole): string {
  return kvNames.subject(names.bucket(role), ">");
}

/** Creating and updating the cluster's streams (buckets and journal): engines only. */
function streamAdmin(names: Names): string[] {
  const streams = [...ALL_BUCKETS.map((r) => STREAM(names.bucket(r))), names.journalStream(), names.inspectStream()];
  return streams.flatMap((s) => [`$JS.API.STREAM.CREATE.${s}`, `$JS.API.STREAM.UPDATE.${s}`]);
}

export interface RoleInput {
  role: Role;
  names: Names;
  user: string;
  /** machine and engine only. */
  machineId?: string;
}

/** The exact permissions of one user. */
export function permissionsFor(o: RoleInput): Permissions {
  const { names } = o;
  const p = names.prefix;
  const inbox = `${inboxPrefixFor(o.user)}.>`;
  switch (o.role) {
    case "machine":
    case "engine": {
      const id = o.machineId;
      if (!id) throw new Error(`role ${o.role} needs a machine ID`);
      const b = (r: BucketRole) => names.bucket(r);
      const publish = [
        "$JS.API.INFO",
        // ensureBuckets looks at every bucket; the agent watches its slice of the schedule and
        // the units, and reads its own machine record (the duplicate machine-ID check).
        ...ALL_BUCKETS.map((r) => `$JS.API.STREAM.INFO.${STREAM(b(r))}`),
        kvNames.directGet(b("machines"), id),
        `$JS.API.CONSUMER.CREATE.${STREAM(b("schedule"))}.*.${kvNames.subject(b("schedule"), `${id}.>`)}`,
        `$JS.API.CONSUMER.CREATE.${STREAM(b("units"))}.*.${kvNames.subject(b("units"), ">")}`,
        `$JS.API.CONSUMER.DELETE.${STREAM(b("schedule"))}.*`,
        `$JS.API.CONSUMER.DELETE.${STREAM(b("units"))}.*`,
        `$JS.FC.${STREAM(b("schedule"))}.>`,
        `$JS.FC.${STREAM(b("units"))}.>`,
        `$JS.API.STREAM.INFO.${names.journalStream()}`,
        `$JS.API.STREAM.INFO.${names.inspectStream()}`,
        // Every daemon "creates" these two at start; a create with the config the stream already
        // has succeeds without changing anything. Updates (new limits) are the engines'.
        `$JS.API.STREAM.CREATE.${names.journalStream()}`,
        `$JS.API.STREAM.CREATE.${names.inspectStream()}`,
        // Its own record, its own unit states, its journal and inspect subjects.
        kvNames.subject(b("machines"), id),
        ...unitThen(kvNames.root(b("states")), id),
        ...unitThen(`${p}.journal`, id),
        `${p}.inspect.${id}.>`,
      ];
      const subscribe = [inbox, names.machineControlSubject(id, "*")];
      if (o.role === "engine") {
        publish.push(
          // The engine reads everything (views of machines, states, schedule, the lease)...
          ...kvRead(names, ALL_BUCKETS),
          kvWrite(names, "schedule"),
          kvWrite(names, "leases"),
          // ...and the API service runs in engine daemons: it writes units on the operator's
          // behalf, reads the journal and asks other machines' daemons to change availability.
          kvWrite(names, "units"),
          ...streamAdmin(names),
          ...journalRead(names),
          names.machineControlSubject("*", "*"),
          "$SRV.>",
        );
        subscribe.push(`${names.apiSubjectRoot()}.>`, "$SRV.>");
      }
      return { publish: { allow: dedupe(publish) }, subscribe: { allow: subscribe }, allow_responses: true };
    }
    case "operator":
      return {
        publish: {
          allow: dedupe([
            `${names.apiSubjectRoot()}.>`,
            "$SRV.>",
            "$JS.API.INFO",
            // start/stop/... wait for the unit states by watching them (src/unit/wait.ts).
            ...kvRead(names, ["states"]),
            ...streamRead(names.inspectStream()),
          ]),
        },
        subscribe: { allow: [inbox, names.inspectAll(), names.journalAll()] },
      };
    case "viewer":
      return {
        publish: {
          allow: [...VIEWER_VERBS.map((v) => names.apiSubject(v)), ...READ_VERBS.map((v) => names.apiAnySubject(v)), "$SRV.>", "$JS.API.INFO", ...streamRead(names.inspectStream())],
        },
        subscribe: { allow: [inbox, names.inspectAll(), names.journalAll()] },
      };
  }
}

/** The API verbs that only read. */
export const VIEWER_VERBS = [...READ_VERBS, "watch-units"] as const;

function dedupe(xs: string[]): string[] {
  return [...new Set(xs)];
}
