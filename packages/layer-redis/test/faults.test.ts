import { MultiLayerCache } from '@strata-cache/core';
import { type RedisServerHandle, startRedisServer, uniqueKeyPrefix } from '@strata-cache/test-utils';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisLayer } from '../src/index.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const BUDGET = 50;
// "Bounded", not "fast": generous slack for a shared 2-core machine.
const LATENCY_BOUND = BUDGET + 450;

interface Sample {
  t: number;
  ms: number;
  phase: string;
  status: string;
  layer?: string;
}

/**
 * Faults against redis-servers this file starts itself: kill -9 mid-run, SIGSTOP/SIGCONT,
 * restart on the same port. A steady load runs through MultiLayerCache the whole time.
 */
describe('fail-open under Redis faults (own redis-server)', () => {
  let server: RedisServerHandle;
  let layer: RedisLayer;
  let cache: MultiLayerCache;
  const transitions: string[] = [];

  beforeAll(async () => {
    server = await startRedisServer();
    layer = new RedisLayer({
      url: server.url,
      prefix: uniqueKeyPrefix('faults'),
      timeoutMs: BUDGET,
      breaker: { cooldownMs: 200 },
      onStateChange: (s, cause) => transitions.push(s + (cause ? `(${(cause as Error).message})` : '')),
    });
    await layer.connect();
    cache = new MultiLayerCache({ layers: [{ layer, budgetMs: BUDGET }], policy: 'always' });
    cache.on('error', () => undefined); // counted below through stats
  }, 30_000);

  afterAll(async () => {
    await cache?.close();
    await server?.stop();
  });

  it('zero failed requests, bounded latency, no wrong/stale values, automatic recovery', async () => {
    const KEYS = 60;
    const gen = new Array<number>(KEYS).fill(0);
    // Generation whose invalidation has COMPLETED: a request starting after that must not see older.
    const invalidated = new Array<number>(KEYS).fill(0);
    const samples: Sample[] = [];
    const failures: unknown[] = [];
    const wrong: unknown[] = [];
    let phase = 'healthy';
    let running = true;
    const t0 = performance.now();

    const request = (i: number) => ({ q: 'fault-load', i });
    const worker = async (w: number) => {
      let n = w;
      while (running) {
        const i = n++ % KEYS;
        const expectGen = invalidated[i]!;
        const started = performance.now();
        try {
          const r = await cache.getOrLoad(request(i), async () => {
            // Values big enough to be compressed, with an integrity marker.
            return { i, gen: gen[i], body: `${i}:`.repeat(800) };
          });
          const ms = performance.now() - started;
          samples.push({ t: started - t0, ms, phase, status: r.status, ...(r.layer ? { layer: r.layer } : {}) });
          const v = r.value as { i: number; gen: number; body: string };
          // A value for another key (reply misalignment) or a torn value would show here.
          if (v.i !== i || v.body !== `${i}:`.repeat(800)) wrong.push({ i, v: { i: v.i, gen: v.gen } });
          // After an invalidation that succeeded, the old generation must never come back.
          if (v.gen < expectGen) wrong.push({ i, stale: v.gen, expected: expectGen, phase });
        } catch (error) {
          failures.push(error);
        }
        await sleep(1);
      }
    };
    const workers = Array.from({ length: 8 }, (_, w) => worker(w));

    const waitRecovered = async (label: string) => {
      const deadline = Date.now() + 15_000;
      while (Date.now() < deadline) {
        if (layer.state === 'closed' && samples.slice(-20).some((s) => s.status === 'hit' && s.layer === 'redis' && s.phase === label)) return;
        await sleep(50);
      }
      const c = await layer.getClient();
      throw new Error(
        `no recovery after ${label} (state ${layer.state}, client ${c.status}, ${JSON.stringify(layer.stats())}, transitions ${transitions.slice(-6).join(',')})`,
      );
    };

    await sleep(800);
    expect(samples.some((s) => s.status === 'hit')).toBe(true);

    phase = 'kill9';
    await server.kill9();
    await sleep(1_000);
    phase = 'restart-after-kill';
    await server.restart();
    await waitRecovered('restart-after-kill');

    phase = 'paused';
    server.pause();
    await sleep(1_500);
    phase = 'resumed';
    server.resume();
    await waitRecovered('resumed');

    phase = 'graceful-restart';
    await server.restart();
    await waitRecovered('graceful-restart');

    // Healthy again: bump every key and invalidate it; the old generation must not be served.
    phase = 'invalidated';
    for (let i = 0; i < KEYS; i++) {
      gen[i] = 1;
      await cache.invalidateKey(request(i));
      invalidated[i] = 1;
    }
    await sleep(800);
    running = false;
    await Promise.all(workers);
    await cache.flush();

    const by = (p: string) => samples.filter((s) => s.phase === p);
    const p50 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
    const summary = Object.fromEntries(
      ['healthy', 'kill9', 'restart-after-kill', 'paused', 'resumed', 'graceful-restart', 'invalidated'].map((p) => {
        const ms = by(p).map((s) => s.ms);
        return [p, { n: ms.length, p50: +p50(ms).toFixed(2), max: +Math.max(0, ...ms).toFixed(1) }];
      }),
    );
    console.log('fault run', JSON.stringify({ summary, transitions, stats: layer.stats() }));

    expect(failures).toEqual([]);
    expect(wrong).toEqual([]);
    expect(Math.max(...samples.map((s) => s.ms))).toBeLessThan(LATENCY_BOUND);
    // While Redis is dead or hung, the breaker makes requests cost ~nothing, not the budget each.
    expect(p50(by('kill9').map((s) => s.ms))).toBeLessThan(BUDGET);
    expect(p50(by('paused').map((s) => s.ms))).toBeLessThan(BUDGET);
    expect(by('kill9').length).toBeGreaterThan(20);
    expect(by('paused').length).toBeGreaterThan(20);
    expect(transitions.some((t) => t.startsWith('open'))).toBe(true);
    expect(layer.state).toBe('closed');
    // Recovery is real: the last phase is served from Redis again, with the new generation.
    expect(by('invalidated').some((s) => s.status === 'hit' && s.layer === 'redis')).toBe(true);
  }, 90_000);
});

describe('maxmemory + allkeys-lru: an evicted entry is just a miss', () => {
  let server: RedisServerHandle;
  beforeAll(async () => {
    server = await startRedisServer({ args: ['--maxmemory', '3mb', '--maxmemory-policy', 'allkeys-lru'] });
  }, 30_000);
  afterAll(async () => server?.stop());

  it('writes far more than maxmemory; every read is the right value or a miss, never an error', async () => {
    const layer = new RedisLayer({ url: server.url, prefix: uniqueKeyPrefix('lru'), compression: 'none', timeoutMs: 2_000, writeTimeoutMs: 5_000 });
    const cache = new MultiLayerCache({ layers: [{ layer, budgetMs: 1_000 }], policy: 'always', throwOnLayerError: true });
    const N = 400; // × ~20 KB ≈ 8 MB of values into 3 MB
    const body = (i: number) => `${i}|`.padEnd(20_000, String.fromCharCode(97 + (i % 26)));
    for (let i = 0; i < N; i += 20) {
      await Promise.all(Array.from({ length: 20 }, (_, j) => cache.getOrLoad({ lru: i + j }, async () => body(i + j), { ttlMs: 600_000 })));
      await cache.flush();
    }
    const client = await layer.getClient();
    const info = String(await client.info('stats'));
    const evicted = Number(/evicted_keys:(\d+)/.exec(info)?.[1] ?? 0);
    expect(evicted).toBeGreaterThan(0);

    let hits = 0;
    let misses = 0;
    for (let i = 0; i < N; i++) {
      // throwOnLayerError: a layer error would fail this request instead of hiding as a miss.
      const r = await cache.getOrLoad({ lru: i }, async () => body(i), { noStore: true });
      expect(r.value).toBe(body(i));
      if (r.status === 'hit') hits++;
      else misses++;
    }
    expect(hits).toBeGreaterThan(0);
    expect(misses).toBeGreaterThan(0);
    // Tag/scope maintenance keeps working with indexes under eviction pressure.
    // (clear() resolves the number of entries it removed: shared contract rule 3.)
    await expect(layer.clear()).resolves.toBeTypeOf('number');
    await cache.close();
  }, 60_000);
});

describe('fail-open with a caller-supplied ioredis client (default ioredis options)', () => {
  it('kill -9 and SIGSTOP: requests still succeed within the bound, then the layer recovers', async () => {
    const server = await startRedisServer();
    // Default ioredis options: offline queue on, 20 retries per request, auto-resend.
    const client = new Redis(server.url);
    client.on('error', () => undefined);
    const layer = new RedisLayer({ client, prefix: uniqueKeyPrefix('byo'), timeoutMs: BUDGET, breaker: { cooldownMs: 200 } });
    const cache = new MultiLayerCache({ layers: [{ layer, budgetMs: BUDGET }], policy: 'always' });
    cache.on('error', () => undefined);
    const worst: number[] = [];
    const hitFromRedis = async (label: string) => {
      const deadline = Date.now() + 15_000;
      for (;;) {
        const r = await cache.getOrLoad({ q: 'byo' }, async () => 'value');
        if (r.status === 'hit' && r.layer === 'redis') return;
        if (Date.now() > deadline) throw new Error(`no recovery after ${label} (state ${layer.state}, client ${client.status})`);
        await sleep(50);
      }
    };
    const burst = async () => {
      for (let i = 0; i < 40; i++) {
        const t0 = performance.now();
        const r = await cache.getOrLoad({ q: 'byo', i }, async () => `v${i}`);
        worst.push(performance.now() - t0);
        expect(r.value).toBe(`v${i}`);
      }
    };
    try {
      await hitFromRedis('start');
      await server.kill9();
      await burst();
      await server.restart();
      await hitFromRedis('restart');
      server.pause();
      await burst();
      server.resume();
      await hitFromRedis('resume');
      expect(Math.max(...worst)).toBeLessThan(LATENCY_BOUND);
    } finally {
      await cache.close();
      client.disconnect();
      await server.stop();
    }
  }, 60_000);
});
