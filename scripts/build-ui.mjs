#!/usr/bin/env node
// Builds the browser app (ui/) into dist/ui/ (or --outdir DIR): one bundle by esbuild (Preact,
// signals, nats.js's WebSocket client), the page and its stylesheet, elkjs's layout worker, and
// the licences of what the bundle carries. Written into a fresh directory renamed into place, so
// a `flotilla ui` serving the old build never reads a half-written one.
//   node scripts/build-ui.mjs [--outdir dist/ui] [--dev]
import { build } from "esbuild";
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const outdir = resolve(ROOT, args.includes("--outdir") ? args[args.indexOf("--outdir") + 1] : "dist/ui");
const dev = args.includes("--dev");
const tmp = `${outdir}.build-${process.pid}`;

rmSync(tmp, { recursive: true, force: true });
mkdirSync(tmp, { recursive: true });
await build({
  entryPoints: [join(ROOT, "ui/app/main.tsx")],
  bundle: true,
  outfile: join(tmp, "app.js"),
  format: "esm",
  platform: "browser",
  target: ["es2022"],
  jsx: "automatic",
  jsxImportSource: "preact",
  minify: !dev,
  sourcemap: true,
  legalComments: "none",
  logLevel: "warning",
  define: { "process.env.NODE_ENV": dev ? '"development"' : '"production"' },
});
cpSync(join(ROOT, "ui/index.html"), join(tmp, "index.html"));
cpSync(join(ROOT, "ui/style.css"), join(tmp, "style.css"));
cpSync(join(ROOT, "node_modules/elkjs/lib/elk-worker.min.js"), join(tmp, "elk-worker.js"));

const notices = ["preact", "@preact/signals", "@preact/signals-core", "elkjs", "@nats-io/nats-core", "@nats-io/nuid", "@nats-io/nkeys", "@nats-io/jetstream", "zod"]
  .map((p) => {
    const dir = join(ROOT, "node_modules", p);
    if (!existsSync(dir)) return "";
    const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
    return `${p} ${pkg.version}: ${pkg.license}`;
  })
  .filter(Boolean);
writeFileSync(join(tmp, "LICENSES.txt"), `Third-party code in this page (name version: licence):\n${notices.join("\n")}\n`);

mkdirSync(dirname(outdir), { recursive: true });
const old = `${outdir}.old-${process.pid}`;
if (existsSync(outdir)) renameSync(outdir, old);
renameSync(tmp, outdir);
rmSync(old, { recursive: true, force: true });
