import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Each file loads the real model (worker threads); keep the 2-core machine usable.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
