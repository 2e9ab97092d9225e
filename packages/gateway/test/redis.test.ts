// L2 shared by several gateway instances, and Redis failing under load: paused (SIGSTOP), then
// killed (-9) and restarted while requests keep coming — every request still answered.
import { type RedisServerHandle, startRedisServer } from '@strata-cache/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, KEYS, chat, harness, json } from './helpers.js';

let redis: RedisServerHandle;
beforeAll(async () => {
  redis = await startRedisServer();
});
afterAll(async () => {
  redis.resume();
  await redis.stop();
});

const l2 = (prefix: string, extra: Record<string, unknown> = {}) => ({ l2: { url: redis.url, prefix, ...extra } });

describe('several instances share L2', () => {
  it('an answer cached by one instance is a hit on another; purges and version bumps reach both, also after a restart', async () => {
    const a = await harness({ cache: { ...l2('shared-a'), l1: { maxEntries: 1000 } } });
    const b = await harness({ cache: { ...l2('shared-a'), l1: { maxEntries: 1000 } } }, {}, a);
    let c: Harness | undefined;
    try {
      // All instances call the same upstream (the upstream's URL is part of every key).
      const body = chat('shared');
      expect((await a.post('/v1/chat/completions', body, KEYS.acme, { 'x-strata-tags': 'faq' })).headers.get('x-strata-cache')).toBe('miss');
      await a.gw.cache.flush();
      const fromB = await b.post('/v1/chat/completions', body);
      expect(fromB.headers.get('x-strata-cache')).toBe('hit');
      expect(fromB.headers.get('x-strata-layer')).toBe('l2');
      expect((await b.post('/v1/chat/completions', body)).headers.get('x-strata-layer')).toBe('l1'); // backfilled
      // Another tenant on another instance: a miss.
      expect((await b.post('/v1/chat/completions', body, KEYS.globex)).headers.get('x-strata-cache')).toBe('miss');

      // A tag purge on a reaches b's L1 through the bus.
      const purged = await json(a.admin('POST', '/admin/purge', { tag: 'faq', tenant: 'acme' }));
      expect(purged.total).toBeGreaterThanOrEqual(1);
      await waitFor(
        async () => (await b.post('/v1/chat/completions', body, KEYS.acme, { 'x-strata-cache': 'no-store' })).headers.get('x-strata-cache') === 'miss',
      );

      // A version bump: kept in Redis, so an instance started later uses it too.
      await a.post('/v1/chat/completions', body);
      await a.gw.cache.flush();
      const bumped = await json(a.admin('POST', '/admin/bump', { tenant: 'acme' }));
      expect(bumped.bumped[0]).toMatchObject({ tenant: 'acme', namespace: 'default', version: 1, persisted: true });
      c = await harness({ cache: { ...l2('shared-a') } }, {}, a);
      expect((await c.post('/v1/chat/completions', body)).headers.get('x-strata-cache')).toBe('miss');
    } finally {
      await Promise.all([b.close(), c?.close()]);
      await a.close();
    }
  });
});

describe('Redis failing under load', () => {
  it('SIGSTOP, then kill -9 and a restart: no request fails', async () => {
    // L2 only (no L1), so every request goes to Redis first; half the requests repeat, half are new.
    const h = await harness({ cache: { ...l2('faults', { timeoutMs: 50, budgetMs: 60 }), l1: false } });
    try {
      let sent = 0;
      let failed = 0;
      const failures: string[] = [];
      const phases: Record<string, number> = {};
      let phase = 'healthy';
      let stop = false;
      const worker = async (w: number) => {
        for (let i = 0; !stop; i++) {
          const body = chat(i % 2 === 0 ? `repeat ${i % 20}` : `fresh ${w}-${i}`);
          sent++;
          phases[phase] = (phases[phase] ?? 0) + 1;
          try {
            const r = await h.post('/v1/chat/completions', body);
            const text = await r.text();
            if (r.status !== 200 || !text.includes('Echo:')) {
              failed++;
              failures.push(`${r.status} ${text.slice(0, 100)}`);
            }
          } catch (error) {
            failed++;
            failures.push(String(error));
          }
        }
      };
      const workers = Array.from({ length: 16 }, (_, w) => worker(w));
      const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
      await sleep(1000);
      phase = 'paused';
      redis.pause();
      await sleep(1500);
      redis.resume();
      phase = 'resumed';
      await sleep(1000);
      phase = 'killed';
      await redis.kill9();
      await sleep(1500);
      phase = 'restarted';
      await redis.restart();
      await sleep(1500);
      stop = true;
      await Promise.all(workers);
      expect(failures).toEqual([]);
      expect(failed).toBe(0);
      // Requests kept flowing in every phase.
      for (const p of ['healthy', 'paused', 'resumed', 'killed', 'restarted']) expect(phases[p] ?? 0).toBeGreaterThan(10);
      expect(sent).toBeGreaterThan(100);
      const stats = h.gw.cache.stats();
      expect(stats.layers['l2']!.errors + stats.layers['l2']!.timeouts).toBeGreaterThan(0); // Redis really failed
      // Readiness never depended on Redis.
      expect((await fetch(h.gw.url + '/readyz')).status).toBe(200);
    } finally {
      await h.close();
    }
  }, 60_000);
});

async function waitFor(check: () => Promise<boolean>, ms = 3000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}
