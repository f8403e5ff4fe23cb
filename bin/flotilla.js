#!/usr/bin/env node
// The published entry point runs the compiled CLI; `npm ci` builds dist/ through `prepare`.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const here = dirname(fileURLToPath(import.meta.url));
const compiled = join(here, "..", "dist", "cli", "run.js");
if (!existsSync(compiled)) {
  process.stderr.write(
    "flotilla: the CLI is not built yet (dist/cli/run.js is missing).\n" +
      "Run `npm install` (it builds through `prepare`) or `npm run build` in the flotilla checkout.\n",
  );
  process.exit(1);
}
await import(compiled);
