// Tests that spawn daemons and the CLI run the compiled code (bin/flotilla.js -> dist/), as a
// user would; build it once before any test file runs so it is never stale.
import { execFileSync } from "node:child_process";

export default function setup(): void {
  execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.json"], { stdio: "inherit" });
}
