import { runLayerComplianceSuite } from '@strata-cache/layer-test-suite';
import { type TcpProxyHandle, redisForTests, startTcpProxy, uniqueKeyPrefix } from '@strata-cache/test-utils';
import { RedisLayer } from '../src/index.js';

// REDIS_URL (never flushed: every run uses its own key prefix) or a private redis-server.
// The layer talks through a TCP proxy so the `unavailable` check can black-hole the connection
// (a hung server) without signalling a server these tests may not own.
let proxy: TcpProxyHandle | undefined;

runLayerComplianceSuite({
  name: 'redis',
  create: async () => {
    const redis = await redisForTests();
    const target = new URL(redis.url);
    proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 6379) });
    const url = new URL(redis.url);
    url.host = `127.0.0.1:${proxy.port}`;
    return new RedisLayer({
      url: url.toString(),
      prefix: uniqueKeyPrefix('compliance'),
      // Functional checks call the layer directly: a loaded machine must not trip the breaker.
      // The unavailable check still runs under MultiLayerCache's 50 ms budget.
      timeoutMs: 1_000,
      breaker: { cooldownMs: 100 },
    });
  },
  destroy: async (layer) => {
    // Remove what this run wrote (only its own prefix).
    const cleaner = new RedisLayer({ url: (await redisForTests()).url, prefix: (layer as RedisLayer).keys.prefix, adminTimeoutMs: 10_000 });
    await cleaner.clear();
    await cleaner.close();
    await proxy?.close();
  },
  unavailable: {
    make: () => proxy!.pause(),
    restore: () => proxy!.resume(),
    budgetMs: 50,
  },
  ttlMs: 300,
});
