// What a test leaves running after its daemons and agents are gone: workloads outlive the
// agent by design (they are adopted on its next start), so a test that ran units must kill
// them itself. Kept free of src/ imports so that every helper can use it.
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";

/**
 * Kills every workload a state dir's run files name (afterAll cleanup), by process group. Only
 * a group whose leader is the flotilla supervisor of that very run directory is touched: a pid
 * file left by a workload that died long ago may name a pid the system has since reused.
 */
export function killStateDirWorkloads(stateDir: string): void {
  const runRoot = join(stateDir, "run");
  if (!existsSync(runRoot)) return;
  for (const d of readdirSafe(runRoot)) {
    const runDir = join(runRoot, d);
    try {
      const pid = Number(readFileSync(join(runDir, "pid"), "utf8").trim());
      if (!(pid > 0)) continue;
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const pgid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
      if (!(pgid > 1)) continue;
      const leader = readFileSync(`/proc/${pgid}/cmdline`, "utf8").split("\0");
      if (!leader.includes("flotilla-supervise") || !leader.includes(runDir)) continue;
      process.kill(-pgid, "SIGKILL");
    } catch {
      /* nothing running */
    }
  }
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
