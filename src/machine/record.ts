// Pure decisions of the machine actor: what record this host publishes, from what it detected
// and what the operator configured (flags always win over detection).
import type { Availability, MachineRecord } from "../protocol/messages.js";
import type { HostFacts } from "./detect.js";

export interface MachineIdentity {
  id: string;
  version: string;
  session: string;
  startedAt: number;
  metadata: Record<string, string>;
  publicIp?: string;
  capacity?: { cpu?: number; memory?: number };
}

export type MachineBody = Omit<MachineRecord, "heartbeatAt">;

export function buildRecord(idn: MachineIdentity, facts: HostFacts, availability: Availability): MachineBody {
  return {
    id: idn.id,
    hostname: facts.hostname,
    publicIp: idn.publicIp || facts.publicIp,
    metadata: { ...idn.metadata },
    capacity: { cpu: idn.capacity?.cpu ?? facts.cpu, memory: idn.capacity?.memory ?? facts.memory },
    availability,
    version: idn.version,
    startedAt: idn.startedAt,
    session: idn.session,
  };
}

export function sameRecord(a: MachineBody, b: MachineBody): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Heart timing (fleet): beat every TTL/2; a failed beat is retried with backoff capped at TTL/3. */
export function beatInterval(ttlMs: number): number {
  return Math.max(10, Math.floor(ttlMs / 2));
}

export function retryDelay(ttlMs: number, failures: number): number {
  const cap = Math.max(20, Math.floor(ttlMs / 3));
  const base = Math.max(20, Math.floor(ttlMs / 12));
  return Math.min(cap, base * 2 ** Math.max(0, failures - 1));
}
