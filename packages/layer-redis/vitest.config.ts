import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Fault tests start, kill and pause their own redis-servers and assert bounded latency:
    // run files one after another so they do not compete for the (shared, 2-core) machine.
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
