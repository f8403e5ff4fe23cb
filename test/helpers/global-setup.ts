// Tests that spawn daemons and the CLI run the compiled code (bin/flotilla.js -> dist/), as a
// user would. Build it before any test file runs, but only when a source is newer than the last
// build, and into a fresh directory renamed into place: a rebuild never half-writes dist/ under
// another run's daemons.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

// The browser app (ui/ -> dist/ui/, scripts/build-ui.mjs) is rebuilt the same way when ui/ or its
// build script is newer than the bundle; a tsc rebuild builds it into the fresh directory too.
const UI_BUILD = join("scripts", "build-ui.mjs");
function buildUi(outdir: string): void {
  execFileSync(process.execPath, [UI_BUILD, "--outdir", outdir], { stdio: "inherit" });
}
function uiStale(): boolean {
  if (!existsSync("ui") || !existsSync(UI_BUILD)) return false;
  const bundle = join("dist", "ui", "app.js");
  return !existsSync(bundle) || statSync(bundle).mtimeMs < Math.max(newestMtime("ui"), statSync(UI_BUILD).mtimeMs);
}

export default function setup(): void {
  const stamp = join("dist", "cli", "run.js");
  const sources = Math.max(newestMtime("src"), statSync("tsconfig.json").mtimeMs);
  if (existsSync(stamp) && statSync(stamp).mtimeMs >= sources) {
    if (uiStale()) buildUi(join("dist", "ui"));
    return;
  }
  const tmp = `dist.build-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.json", "--outDir", tmp], {
    stdio: "inherit",
  });
  if (existsSync("ui") && existsSync(UI_BUILD)) buildUi(join(tmp, "ui"));
  const old = `dist.old-${process.pid}`;
  if (existsSync("dist")) renameSync("dist", old);
  renameSync(tmp, "dist");
  rmSync(old, { recursive: true, force: true });
}
