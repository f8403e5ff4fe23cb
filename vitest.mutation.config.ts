import { defineConfig } from "vitest/config";

// The vitest config StrykerJS runs (`npm run test:mutation`, stryker.config.json): only the unit
// tests of pure code, and no globalSetup. Those tests import src/ directly and start no daemon, so
// they need neither the dist/ build nor a nats-server; skipping the build also keeps each mutant's
// test run to the test itself.
export default defineConfig({
  test: {
    include: ["test/unit/**/*.test.ts"],
    // Not pure: these start a real nats-server or poll real timers.
    exclude: ["test/unit/unit-state-publisher.test.ts", "test/unit/check-helpers.test.ts"],
    testTimeout: 20_000,
    pool: "threads",
  },
});
