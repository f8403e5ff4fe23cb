#!/usr/bin/env node
// Makes sure Debian's chromium is there before the tests: the browser tests (test/e2e/) drive it
// with playwright-core (npx playwright install cannot work here: no downloads outside the package
// registries). Order: $CHROMIUM_BIN, /usr/bin/chromium, then apt-get install chromium when we are
// root or have passwordless sudo. Without it the tests still run; the browser ones fail saying so.
import { spawnSync } from "node:child_process";
import { accessSync, constants } from "node:fs";

const runs = (p) => {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};
const wanted = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";
if (runs(wanted)) process.exit(0);
const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
const hasApt = runs("/usr/bin/apt-get");
const canSudo = !isRoot && runs("/usr/bin/sudo") && spawnSync("sudo", ["-n", "true"]).status === 0;
if (hasApt && (isRoot || canSudo)) {
  console.error("chromium not found: installing Debian's chromium package with apt-get (for the browser tests) ...");
  const pre = isRoot ? [] : ["sudo", "-n"];
  const run = (args) => {
    const [cmd, ...rest] = [...pre, ...args];
    return spawnSync(cmd, rest, { stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } }).status;
  };
  run(["apt-get", "update", "-qq"]);
  const status = run(["apt-get", "install", "-y", "-qq", "chromium"]);
  if (status === 0 && runs(wanted)) {
    console.error(`installed chromium at ${wanted}`);
    process.exit(0);
  }
  console.error(`apt-get install chromium failed (exit ${status}); the browser tests will fail until it is there.`);
  process.exit(0);
}
console.error(`chromium is not at ${wanted} and cannot be installed here (needs root or passwordless sudo with apt-get): sudo apt-get install chromium, or set CHROMIUM_BIN. The browser tests will fail until then.`);
process.exit(0);
