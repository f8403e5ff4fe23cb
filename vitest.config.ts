import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/helpers/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Each file starts its own nats-server and real processes; two cores do not take more.
    maxWorkers: 2,
    pool: "forks",
  },
});
