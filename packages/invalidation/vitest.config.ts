import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // The cross-process test forks plain Node processes that import this package's dist.
    globalSetup: ['./test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
