// @ts-check
// `npm run test:mutation`: StrykerJS over the pure core (docs/mutation.md has the score, the run
// time and the survivors we keep on purpose).
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  packageManager: "npm",
  testRunner: "vitest",
  plugins: ["@stryker-mutator/vitest-runner"],
  // Only the unit tests of pure code, and no globalSetup: they import src/ directly, so they need
  // neither the dist/ build nor a nats-server.
  vitest: { configFile: "vitest.mutation.config.ts" },
  mutate: [
    "src/engine/scheduler.ts",
    "src/engine/reconciler.ts",
    "src/engine/fast-path.ts",
    "src/engine/incremental.ts",
    "src/engine/glob-index.ts",
    "src/util/sorted.ts",
    "src/agent/task-policy.ts",
    "src/unit/parse.ts",
    "src/unit/ini.ts",
    "src/unit/words.ts",
    "src/unit/service-options.ts",
    "src/unit/fleet-options.ts",
    "src/unit/validate.ts",
    "src/unit/transitions.ts",
  ],
  // Each mutant runs only the tests that cover it.
  coverageAnalysis: "perTest",
  // Two cores, shared with other engineers' test runs.
  concurrency: 1,
  // Re-runs test only the mutants whose code or tests changed since the last run.
  incremental: true,
  incrementalFile: "reports/stryker-incremental.json",
  tempDirName: ".stryker-tmp",
  ignorePatterns: ["dist", "dist.*", ".flotilla", "bench", "reports", ".ci/vitest-report.json"],
  // Stryker rewrites tsconfig `extends`/`references` in its sandbox through TypeScript's JS API,
  // which TypeScript 7 (the native compiler this repo uses) no longer has: the call throws.
  // Ours has neither, so there is nothing to rewrite: point the option at a file that does not
  // exist and the step is skipped.
  tsconfigFile: "stryker-no-tsconfig-rewrite.json",
  // An infinite loop (a mutated heap sift, for(;;)) is a timeout, and counts as killed.
  timeoutMS: 10_000,
  reporters: ["clear-text", "progress", "html", "json"],
  htmlReporter: { fileName: "reports/mutation/mutation.html" },
  jsonReporter: { fileName: "reports/mutation/mutation.json" },
  clearTextReporter: { allowColor: false, logTests: false, reportMutants: true, reportScoreTable: true },
  thresholds: { high: 90, low: 80, break: null },
};
