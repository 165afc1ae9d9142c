import { defineConfig } from "vitest/config";

// End-to-end tests drive the real app binary through tauri-driver (see scripts/e2e.sh).
// NANODEX_E2E_STDLIB=1 runs the standard-library measurement instead (`make bench-app`).
export default defineConfig({
  test: {
    include: [process.env.NANODEX_E2E_STDLIB === "1" ? "e2e/stdlib.e2e.test.ts" : "e2e/app.e2e.test.ts"],
    environment: "node",
    testTimeout: 1_800_000,
    hookTimeout: 120_000,
    fileParallelism: false,
  },
});
