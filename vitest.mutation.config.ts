import { defineConfig } from "vitest/config";

// The vitest config StrykerJS runs (`npm run test:mutation`, stryker.config.mjs): only the unit
// tests of pure code, and no globalSetup. Those tests import src/ directly and start no daemon, so
// they need neither the dist/ build nor a nats-server; skipping the build also keeps each mutant's
// test run to the test itself.
export default defineConfig({
  test: {
    include: ["test/unit/**/*.test.ts"],
    exclude: [
      // Not pure: these start a real nats-server or poll real timers.
      "test/unit/unit-state-publisher.test.ts",
      "test/unit/check-helpers.test.ts",
      // Measures wall-clock time (a page within PAGE_MS): failed Stryker's initial run twice on
      // the loaded machine, and covers none of the mutated files.
      "test/unit/listings-index-cache.test.ts",
    ],
    testTimeout: 20_000,
    pool: "threads",
  },
});
