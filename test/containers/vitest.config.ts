// The container test (npm run test:containers; scripts/containers/test.sh builds the images
// first). Its files are *.ctest.ts so that the main suite's test/**/*.test.ts never picks them.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/containers/**/*.ctest.ts"],
    testTimeout: 180_000,
    hookTimeout: 300_000,
    maxWorkers: 1,
    pool: "forks",
  },
});
