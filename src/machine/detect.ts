// What the machine actor reports about this host: hostname, a public IP, cpu and memory.
// Detection is best-effort and never throws; flags override every value.
import { availableParallelism, hostname, networkInterfaces, totalmem } from "node:os";

export interface HostFacts {
  hostname: string;
  publicIp: string;
  cpu: number; // cores
  memory: number; // bytes
}

/** The first non-internal IPv4 address (fleet picks the first usable one too), else IPv6, else "". */
export function detectPublicIp(): string {
  const ifs = networkInterfaces();
  let v6 = "";
  for (const name of Object.keys(ifs).sort()) {
    for (const a of ifs[name] ?? []) {
      if (a.internal) continue;
      if (a.family === "IPv4") return a.address;
      if (!v6 && !a.address.startsWith("fe80")) v6 = a.address;
    }
  }
  return v6;
}

export function detectHost(): HostFacts {
  let name = "";
  try {
    name = hostname();
  } catch {
    /* leave empty */
  }
  return { hostname: name, publicIp: detectPublicIp(), cpu: availableParallelism(), memory: totalmem() };
}
