import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // The real-embedder files start worker threads with the model; keep the 2-core machine usable.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
