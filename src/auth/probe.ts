// Before a daemon starts, it checks that its credentials allow what its configuration asks of
// it, so a missing permission is one clear line and exit 1, not a retry loop or a component
// that fails later. Each check is a core publish that changes nothing (the KV and journal ones
// carry an expected last sequence no subject can have, so JetStream refuses to store them) or
// a subscription that is dropped at once; the server answers a refused one with a
// "Permissions Violation" error, which nats.js reports on status(). A flush makes the server
// answer every one of them before we look.
import { headers, type NatsConnection, type PermissionViolationError } from "@nats-io/nats-core";
import { FlotillaError } from "../protocol/errors.js";
import { keys, type Names, kvNames } from "../protocol/names.js";

/** nats.js throws a refused request as a RequestError whose cause is the PermissionViolationError. */
export function permissionViolation(e: unknown): PermissionViolationError | undefined {
  for (let x = e as { name?: string; cause?: unknown } | undefined, i = 0; x && i < 3; x = x.cause as typeof x, i++) {
    if (x.name === "PermissionViolationError") return x as unknown as PermissionViolationError;
  }
  return undefined;
}

const PROBE_UNIT = "flotilla-permission-probe.service";

export interface ProbeNeeds {
  machineId: string;
  engine: boolean;
  api: boolean;
}

interface Check {
  op: "publish" | "subscribe";
  subject: string;
  /** What needs it, for the message. */
  why: string;
  role: "machine" | "engine";
}

export function checksFor(names: Names, n: ProbeNeeds): Check[] {
  const kv = (role: Parameters<Names["bucket"]>[0], key: string) => kvNames.subject(names.bucket(role), key);
  const c: Check[] = [
    { op: "publish", subject: kv("machines", keys.machine(n.machineId)), why: "the heartbeat", role: "machine" },
    { op: "publish", subject: kv("states", keys.state(PROBE_UNIT, n.machineId)), why: "the agent's unit states", role: "machine" },
    { op: "publish", subject: names.journalSubject(PROBE_UNIT, n.machineId), why: "the task journal", role: "machine" },
    { op: "subscribe", subject: names.machineControlSubject(n.machineId, "availability"), why: "availability changes", role: "machine" },
  ];
  for (const b of ["units", "schedule", "states", "machines", "leases"] as const) {
    c.push({ op: "publish", subject: `$JS.API.STREAM.INFO.${kvNames.stream(names.bucket(b))}`, why: `reading ${names.bucket(b)}`, role: "machine" });
  }
  if (n.engine) {
    c.push(
      { op: "publish", subject: kv("schedule", "=permission-probe"), why: "the engine (writing the schedule)", role: "engine" },
      { op: "publish", subject: kv("leases", "=permission-probe"), why: "the engine (the leader lease)", role: "engine" },
    );
  }
  if (n.api) {
    c.push(
      { op: "publish", subject: kv("units", "=permission-probe"), why: "the API service (writing units)", role: "engine" },
      { op: "subscribe", subject: names.apiSubject("list-machines"), why: "the API service", role: "engine" },
    );
  }
  return c;
}

/** Throws FlotillaError("permission_denied") naming the first refused subject and the role it needs. */
export async function probePermissions(nc: NatsConnection, names: Names, n: ProbeNeeds, user?: string): Promise<void> {
  const refused: PermissionViolationError[] = [];
  const status = nc.status();
  const collecting = (async () => {
    for await (const s of status) {
      if (s.type === "error" && (s.error as Error)?.name === "PermissionViolationError") refused.push(s.error as PermissionViolationError);
    }
  })();
  const checks = checksFor(names, n);
  const h = headers();
  h.set("Nats-Expected-Last-Subject-Sequence", String(Number.MAX_SAFE_INTEGER));
  for (const c of checks) {
    if (c.op === "publish") nc.publish(c.subject, new Uint8Array(0), { headers: h });
    else nc.subscribe(c.subject, { max: 1, callback: () => undefined }).unsubscribe();
  }
  // A subscription refused and unsubscribed at once is still answered by the server.
  await nc.flush();
  await new Promise((r) => setImmediate(r));
  // nats.js's status iterator has stop(); the type only says AsyncIterable.
  (status as unknown as { stop?: () => void }).stop?.();
  await collecting.catch(() => undefined);
  if (refused.length === 0) return;
  const first = refused[0]!;
  const c = checks.find((x) => x.subject === first.subject && x.op === first.operation) ?? checks.find((x) => x.subject === first.subject);
  const role = c?.role ?? "machine";
  const all = refused.map((r) => `${r.operation} ${r.subject}`).join(", ");
  const who = user ? `user "${user}"` : "these credentials";
  const fix =
    role === "engine"
      ? `give it a user with the engine role (flotilla auth add-machine ${n.machineId} --role engine), or run it with --no-engine --no-api`
      : `give it the credentials of machine ${n.machineId} (flotilla auth add-machine ${n.machineId})`;
  throw new FlotillaError(
    "permission_denied",
    `NATS refused ${who} to ${first.operation} to ${first.subject}${c ? `, which ${c.why} needs` : ""}: ` +
      `this daemon needs the ${role} role; ${fix}. Refused: ${all}`,
    { field: "user", value: user },
  );
}
