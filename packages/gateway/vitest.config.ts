import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Several files start their own redis-server and gateways: one file at a time on a small machine.
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
