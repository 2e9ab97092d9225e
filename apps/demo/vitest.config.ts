import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    // One demo at a time: each starts its own provider and embedder workers.
    fileParallelism: false,
  },
});
