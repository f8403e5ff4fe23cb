// Process entry of spawnAgentHost: the agent component alone, configured by HOST_* variables.
// SIGTERM stops it cleanly (workloads keep running); SIGKILL is what the tests use.
import { agentHost } from "./agent-host.js";

const host = await agentHost({
  url: process.env.HOST_URL!,
  prefix: process.env.HOST_PREFIX!,
  machineId: process.env.HOST_MACHINE_ID!,
  stateDir: process.env.HOST_STATE_DIR!,
  agentTtlMs: Number(process.env.HOST_TTL_MS ?? 1500),
});
process.stdout.write("agent-host ready\n");
process.on("SIGTERM", () => {
  void host.close().then(() => process.exit(0));
});
