import { describe, expect, it } from 'vitest';
import { MultiLayerCache, loaded } from '../src/index.js';
import { TestLayer } from './helpers.js';

describe('coalescing across an invalidation', () => {
  it('a request arriving after an invalidation does not join a load that started before it', async () => {
    const cache = new MultiLayerCache({ layers: [new TestLayer('l1')], policy: 'always' });
    let price = 1;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const request = { model: 'm', messages: [{ role: 'user', content: 'price?' }] };
    const slow = cache.getOrLoad(request, async () => {
      const seen = price;
      await gate;
      return loaded(seen, { tags: ['pricing'] });
    });
    await new Promise((r) => setTimeout(r, 5));
    price = 2;
    await cache.invalidateTag('pricing');
    const after = cache.getOrLoad(request, async () => price);
    release();
    expect((await slow).value).toBe(1);
    const r = await after;
    expect(r.value).toBe(2);
    expect(r.coalesced).toBeUndefined();
  });

  it('without an invalidation in between, identical misses still share one load', async () => {
    const cache = new MultiLayerCache({ layers: [new TestLayer('l1')], policy: 'always' });
    let calls = 0;
    const load = async () => {
      calls++;
      await new Promise((r) => setTimeout(r, 10));
      return calls;
    };
    const rs = await Promise.all([1, 2, 3].map(() => cache.getOrLoad({ q: 1 }, load)));
    expect(calls).toBe(1);
    expect(rs.filter((r) => r.coalesced)).toHaveLength(2);
  });
});

describe('coalescing onto a flight that another process answered', () => {
  it('counts the joiner as a hit, like the caller it joined', async () => {
    const entry = { value: 'from another process', createdAt: Date.now(), tags: [], usage: { inputTokens: 10, outputTokens: 5 }, model: 'gpt-4o' };
    const cache = new MultiLayerCache({
      layers: [new TestLayer('l1')],
      policy: 'always',
      coordinator: { begin: () => new Promise((r) => setTimeout(() => r({ kind: 'hit', entry, layer: 'remote' }), 20)) },
    });
    let calls = 0;
    const rs = await Promise.all([1, 2].map(() => cache.getOrLoad({ q: 1 }, () => ++calls)));
    expect(calls).toBe(0);
    expect(rs.map((r) => r.status)).toEqual(['hit', 'hit']);
    const s = cache.stats();
    expect(s.hits).toBe(2);
    expect(s.misses).toBe(0);
    expect(s.hits + s.misses).toBe(s.requests);
  });
});

describe('store(…, { sinceEpoch }) after an invalidation', () => {
  it('drops a result recorded before an invalidation even when no loader was in flight (a streamed answer)', async () => {
    const cache = new MultiLayerCache({ layers: [new TestLayer('l1')], policy: 'always' });
    const request = { model: 'm', messages: [{ role: 'user', content: 'price?' }] };
    const since = cache.currentEpoch; // the adapter starts recording a stream
    await cache.invalidateTag('pricing'); // prices change while it streams
    expect(await cache.store(request, loaded('old price', { tags: ['pricing'] }), { sinceEpoch: since })).toBe(false);
    expect(await cache.store(request, loaded('other topic', { tags: ['faq'] }), { sinceEpoch: since })).toBe(true);
  });

  it('drops it when the log no longer reaches back that far, and keeps the log bounded', async () => {
    const cache = new MultiLayerCache({ layers: [new TestLayer('l1')], policy: 'always' });
    const since = cache.currentEpoch;
    for (let i = 0; i < 5000; i++) await cache.invalidateTag('t' + i);
    expect((cache as unknown as { invalidations: { size: number } }).invalidations.size).toBeLessThanOrEqual(2048);
    expect(await cache.store({ q: 1 }, loaded(1, { tags: ['unrelated'] }), { sinceEpoch: since })).toBe(false);
    expect(await cache.store({ q: 1 }, loaded(1, { tags: ['unrelated'] }), { sinceEpoch: cache.currentEpoch })).toBe(true);
  });
});
