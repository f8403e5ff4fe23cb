// `flotilla health`: is this host's daemon alive and heard by the cluster? The container's
// HEALTHCHECK. It reads the daemon's configuration exactly as `flotilla daemon` does (FLOTILLA_*
// environment, --config, flags), finds its machine ID (the flag or <state-dir>/machine-id) and
// asks NATS for that machine's record: healthy when the daemon's own heart put it there within
// one agent TTL. A process check would call a daemon healthy that is cut off from NATS or whose
// heart stopped; this one fails exactly when the cluster would give the machine's units away.
// Exit 0 healthy, 1 not (one line on stderr saying why).
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { CommandRegistrar } from "./main.js";
import { addDaemonOptions, flagsOf } from "./daemon.js";
import { FlotillaError, describeError } from "../protocol/errors.js";
import { Names, keys, assertMachineId } from "../protocol/names.js";
import type { MachineRecord } from "../protocol/messages.js";
import { parseDuration } from "../util/measure.js";

export const registerHealth: CommandRegistrar = (program) => {
  const cmd = program
    .command("health")
    .description("exit 0 when this host's daemon beats into the cluster (the container HEALTHCHECK); reads the daemon's config");
  addDaemonOptions(cmd)
    .option("--max-age <duration>", "how old the machine record may be (default: the agent TTL)")
    .action(async (o: { config?: string; maxAge?: string }) => {
      // Imported here, not at the CLI's start (zod, NATS, the config loader).
      const [{ loadConfig }, { connectOnce }, { openKv }, { decodeAs }, messages] = await Promise.all([
        import("../server/config.js"),
        import("../nats/connection.js"),
        import("../nats/buckets.js"),
        import("../protocol/codec.js"),
        import("../protocol/messages.js"),
      ]);
      const { config } = loadConfig({ flags: flagsOf(program, cmd), file: o.config });
      const idFile = join(config.stateDir, "machine-id");
      // Never generate an ID here (resolveMachineId would): no file means no daemon ran yet.
      let machineId = config.machineId;
      if (!machineId) {
        if (!existsSync(idFile)) {
          throw new FlotillaError("unknown_machine", `no daemon has run with state dir ${config.stateDir} yet (${idFile} is missing)`);
        }
        machineId = assertMachineId(readFileSync(idFile, "utf8").trim(), "machine_id");
      }
      const maxAgeMs = o.maxAge ? parseDuration(o.maxAge, "max-age") : config.agentTtlMs;
      const names = new Names(config.prefix);
      const nc = await connectOnce({
        url: config.natsUrl,
        creds: config.creds,
        user: config.user,
        password: config.password,
        token: config.token,
        tls: config.tls,
        name: `flotilla-health-${machineId}`,
      });
      try {
        let rec: MachineRecord | undefined;
        try {
          const kv = await openKv(nc, names.bucket("machines"));
          const e = await kv.get(keys.machine(machineId));
          if (e && e.operation === "PUT" && e.value.length > 0) rec = decodeAs(messages.MachineRecord, e.value, "machine record");
        } catch (e) {
          throw new FlotillaError("nats_unavailable", `cannot read machine ${machineId} from ${names.bucket("machines")}: ${describeError(e)}`, { temporary: true });
        }
        if (!rec) {
          throw new FlotillaError("unknown_machine", `machine ${machineId} has no record in ${names.bucket("machines")}: its daemon is not beating (down, starting, or cut off from NATS)`);
        }
        const age = Date.now() - rec.heartbeatAt;
        if (age > maxAgeMs) {
          throw new FlotillaError("timeout", `machine ${machineId} last beat ${age} ms ago, more than ${maxAgeMs} ms: its daemon's heart is stuck or its clock is off`);
        }
        process.stdout.write(`healthy: machine ${machineId} beat ${Math.max(0, age)} ms ago (${rec.availability})\n`);
      } finally {
        await nc.close().catch(() => undefined);
      }
    });
};
