import { MultiLayerCache } from '@strata-cache/core';
import { MemoryLayer } from '@strata-cache/layer-memory';
import { type RedisServerHandle, startRedisServer, uniqueKeyPrefix } from '@strata-cache/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisLayer } from '../src/index.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let server: RedisServerHandle;
beforeAll(async () => {
  server = await startRedisServer();
}, 30_000);
afterAll(async () => server?.stop());

/** About `mb` MB of varied text (compressible like real answers, not a run of one byte). */
function bigText(mb: number): string {
  const words = ['cache', 'answer', 'tenant', 'refund', 'order', 'policy', 'model', 'latency', 'invoice', 'shipping', 'token', 'prompt'];
  const parts: string[] = [];
  let n = 0;
  for (let i = 0; n < mb * 2 ** 20; i++) {
    const w = `${words[(i * 7) % words.length]}-${i % 9973} `;
    parts.push(w);
    n += w.length;
  }
  return parts.join('');
}

describe('nothing lost at shutdown', () => {
  it('a 16 MB value written by a miss is in Redis once `await cache.close()` resolves (default budgets)', async () => {
    const prefix = uniqueKeyPrefix('close16');
    const layer = new RedisLayer({ url: server.url, prefix });
    await layer.connect();
    const cache = new MultiLayerCache({ layers: [new MemoryLayer(), layer], policy: 'always' });
    cache.on('error', () => undefined); // the 50 ms budget runs out for the write; the layer still finishes it
    const text = bigText(16);
    const r = await cache.getOrLoad({ q: 'sixteen megabytes' }, async () => ({ text }));
    expect(r.status).toBe('miss');
    const key = cache.keyFor({ q: 'sixteen megabytes' });
    await cache.close();
    // The check reads 16 MB back: a generous read limit, so a loaded machine cannot turn it into a miss.
    const reader = new RedisLayer({ url: server.url, prefix, timeoutMs: 10_000 });
    const stored = await reader.get(key);
    expect((stored?.value as { text: string } | undefined)?.text === text).toBe(true);
    await reader.clear();
    await reader.close();
  }, 60_000);

  it('close() gives up on writes after closeTimeoutMs when Redis hangs', async () => {
    const layer = new RedisLayer({ url: server.url, prefix: uniqueKeyPrefix('close-hung'), closeTimeoutMs: 300, writeTimeoutMs: 10_000 });
    await layer.connect();
    // Core waits for its own writes in flight up to its closeTimeoutMs before closing the layers:
    // the same bound on both sides.
    const cache = new MultiLayerCache({ layers: [layer], policy: 'always', closeTimeoutMs: 300 });
    cache.on('error', () => undefined);
    server.pause();
    try {
      await cache.getOrLoad({ q: 'never lands' }, async () => 'v');
      const t0 = performance.now();
      await cache.close();
      const ms = performance.now() - t0;
      // Core's own budget for the write, plus the layer's closeTimeoutMs, plus slack for a loaded machine.
      expect(ms).toBeLessThan(300 + 2_000);
    } finally {
      server.resume();
    }
  }, 30_000);
});

describe('the coordinator honours one bounded deadline', () => {
  it('on a hung Redis a miss with the coordinator waits about one lock timeout, not writeTimeoutMs', async () => {
    const layer = new RedisLayer({
      url: server.url,
      prefix: uniqueKeyPrefix('lock-hung'),
      timeoutMs: 50,
      writeTimeoutMs: 5_000,
      breaker: { cooldownMs: 60_000 },
    });
    await layer.connect();
    const cache = new MultiLayerCache({ layers: [new MemoryLayer(), { layer, budgetMs: 50 }], coordinator: layer.coordinator, policy: 'always' });
    cache.on('error', () => undefined);
    server.pause();
    const waits: number[] = [];
    try {
      for (let i = 0; i < 5; i++) {
        const t0 = performance.now();
        const r = await cache.getOrLoad({ q: 'hung lock', i }, async () => `v${i}`);
        waits.push(performance.now() - t0);
        expect(r.value).toBe(`v${i}`);
      }
    } finally {
      server.resume();
    }
    console.log('hung redis, miss with coordinator, ms', JSON.stringify(waits.map((w) => Math.round(w))));
    // Read (budget 50) + lock attempt (timeoutMs 50) for the first misses, nothing once the
    // breaker opened; never writeTimeoutMs (5 s). Generous slack for a loaded machine.
    expect(Math.max(...waits)).toBeLessThan(1_000);
    expect(layer.state).toBe('open');
    await cache.close();
  }, 30_000);

  it('a waiter gives up at lock.maxWaitMs even when Redis hangs while it waits', async () => {
    const prefix = uniqueKeyPrefix('lock-deadline');
    const holder = new RedisLayer({ url: server.url, prefix });
    const waiter = new RedisLayer({ url: server.url, prefix, writeTimeoutMs: 5_000, lock: { maxWaitMs: 400, pollMinMs: 100, pollMaxMs: 100 } });
    await Promise.all([holder.connect(), waiter.connect()]);
    const a = new MultiLayerCache({ layers: [holder], coordinator: holder.coordinator, policy: 'always' });
    const b = new MultiLayerCache({ layers: [waiter], coordinator: waiter.coordinator, policy: 'always' });
    a.on('error', () => undefined);
    b.on('error', () => undefined);
    const slow = a.getOrLoad({ q: 'held' }, async () => {
      await sleep(3_000);
      return 'late';
    });
    await sleep(100);
    const t0 = performance.now();
    const pending = b.getOrLoad({ q: 'held' }, async () => 'own');
    await sleep(150);
    server.pause();
    let waited: number;
    try {
      expect((await pending).value).toBe('own');
      waited = performance.now() - t0;
    } finally {
      server.resume();
    }
    console.log('waiter gave up after ms', Math.round(waited));
    expect(waited).toBeLessThan(400 + 600);
    await slow;
    await a.close();
    await b.close();
  }, 30_000);
});
