import { describe, expect, it } from 'vitest';
import {
  InvalidOptionError,
  LatencyRecorder,
  LayerTimeoutError,
  LocalInvalidationBus,
  MultiLayerCache,
  StrataError,
  costUsd,
  loaded,
  projectMonthlySavings,
} from '../src/index.js';
import { TestLayer } from './helpers.js';

const req = (content: string, extra: Record<string, unknown> = {}) => ({
  model: 'gpt-4o-mini',
  temperature: 0,
  messages: [{ role: 'user', content }],
  ...extra,
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('MultiLayerCache read-through', () => {
  it('misses once, writes every layer, then hits the first layer', async () => {
    const l1 = new TestLayer('l1');
    const l2 = new TestLayer('l2');
    const cache = new MultiLayerCache({ layers: [l1, l2] });
    let calls = 0;
    const r1 = await cache.getOrLoad(req('hi'), async () => `answer ${++calls}`);
    await cache.flush();
    expect(r1).toMatchObject({ status: 'miss', value: 'answer 1', stored: true });
    expect(l1.map.size).toBe(1);
    expect(l2.map.size).toBe(1);
    const r2 = await cache.getOrLoad(req('hi'), async () => `answer ${++calls}`);
    expect(r2).toMatchObject({ status: 'hit', layer: 'l1', value: 'answer 1' });
    expect(calls).toBe(1);
  });

  it('backfills upper layers from a lower hit, keeping createdAt so only the remaining TTL is left', async () => {
    let now = 1_000_000;
    const l1 = new TestLayer('l1');
    const l2 = new TestLayer('l2');
    const cache = new MultiLayerCache({ layers: [l1, l2], now: () => now, defaultTtlMs: 10_000 });
    await cache.getOrLoad(req('q'), async () => 'v');
    await cache.flush();
    l1.map.clear();
    now += 4_000;
    const r = await cache.getOrLoad(req('q'), async () => 'other');
    await cache.flush();
    expect(r).toMatchObject({ status: 'hit', layer: 'l2', ageMs: 4_000 });
    const backfilled = [...l1.map.values()][0]!.entry;
    expect(backfilled.createdAt).toBe(1_000_000);
    expect(backfilled.ttlMs).toBe(10_000); // expires at createdAt + ttl: 6 s left, not a fresh 10 s
    now += 6_001;
    expect((await cache.getOrLoad(req('q'), async () => 'fresh')).value).toBe('fresh');
  });

  it('never serves an expired entry', async () => {
    let now = 0;
    const l1 = new TestLayer('l1');
    const cache = new MultiLayerCache({ layers: [l1], now: () => now, defaultTtlMs: 1_000 });
    await cache.getOrLoad(req('q'), async () => 'old');
    await cache.flush();
    now = 1_000;
    expect((await cache.getOrLoad(req('q'), async () => 'new')).value).toBe('new');
  });
});

describe('coalescing', () => {
  it('1,000 concurrent identical misses make exactly one loader call and all get its result', async () => {
    const cache = new MultiLayerCache({ layers: [new TestLayer('l1')] });
    let calls = 0;
    const loader = async () => {
      calls++;
      await sleep(30);
      return { answer: 42 };
    };
    const results = await Promise.all(Array.from({ length: 1_000 }, () => cache.getOrLoad(req('same'), loader)));
    expect(calls).toBe(1);
    expect(results.every((r) => (r.value as { answer: number }).answer === 42)).toBe(true);
    expect(results.filter((r) => r.coalesced).length).toBe(999);
    expect(cache.stats().coalesced).toBe(999);
  });

  it('shares the loader error with every waiter and stores nothing', async () => {
    const l1 = new TestLayer('l1');
    const cache = new MultiLayerCache({ layers: [l1] });
    let calls = 0;
    const loader = async () => {
      calls++;
      await sleep(10);
      throw new Error('upstream 500');
    };
    const settled = await Promise.allSettled(Array.from({ length: 50 }, () => cache.getOrLoad(req('boom'), loader)));
    expect(calls).toBe(1);
    expect(settled.every((s) => s.status === 'rejected' && (s.reason as Error).message === 'upstream 500')).toBe(true);
    await cache.flush();
    expect(l1.map.size).toBe(0);
    // The failure is not remembered either: the next call tries again.
    await expect(cache.getOrLoad(req('boom'), async () => 'ok')).resolves.toMatchObject({ value: 'ok' });
  });

  it('different requests do not coalesce', async () => {
    const cache = new MultiLayerCache({ layers: [new TestLayer('l1')] });
    let calls = 0;
    await Promise.all([1, 2, 3].map((i) => cache.getOrLoad(req(`q${i}`), async () => ++calls)));
    expect(calls).toBe(3);
  });
});

describe('fail-open and time budgets', () => {
  for (const mode of ['throw', 'reject', 'hang'] as const) {
    it(`a layer that ${mode}s is a miss plus an error event; the request succeeds within its budget`, async () => {
      const bad = new TestLayer('bad');
      bad.mode = mode;
      const good = new TestLayer('good');
      // flush() waits for writes still in flight up to closeTimeoutMs: a hung layer holds it that long.
      const cache = new MultiLayerCache({ layers: [{ layer: bad, budgetMs: 40 }, good], closeTimeoutMs: 200 });
      const errors: Array<{ error: StrataError; layer?: string }> = [];
      cache.on('error', (e) => errors.push(e));
      const t0 = performance.now();
      const r = await cache.getOrLoad(req(`fail-${mode}`), async () => 'from upstream');
      const elapsed = performance.now() - t0;
      expect(r.value).toBe('from upstream');
      expect(elapsed).toBeLessThan(40 * 2 + 400); // bounded, with slack for a noisy machine
      await cache.flush();
      expect(errors.length).toBeGreaterThan(0);
      expect(errors[0]!.layer).toBe('bad');
      expect(StrataError.isInstance(errors[0]!.error)).toBe(true);
      if (mode === 'hang') expect(errors[0]!.error).toBeInstanceOf(LayerTimeoutError);
      expect(cache.stats().layers['bad']!.errors).toBeGreaterThan(0);
      // The healthy layer got the write and serves the next request.
      expect((await cache.getOrLoad(req(`fail-${mode}`), async () => 'again')).layer).toBe('good');
    });
  }

  it('a hanging layer never stalls 100 concurrent requests beyond the budget', async () => {
    const bad = new TestLayer('bad');
    bad.mode = 'hang';
    const cache = new MultiLayerCache({ layers: [{ layer: bad, budgetMs: 30 }] });
    const t0 = performance.now();
    const rs = await Promise.all(Array.from({ length: 100 }, (_, i) => cache.getOrLoad(req(`h${i}`), async () => i)));
    expect(rs.map((r) => r.value)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(performance.now() - t0).toBeLessThan(30 * 2 + 1_000);
  });

  it('does not throw when nobody listens for error events', async () => {
    const bad = new TestLayer('bad');
    bad.mode = 'throw';
    const cache = new MultiLayerCache({ layers: [bad] });
    await expect(cache.getOrLoad(req('x'), async () => 1)).resolves.toMatchObject({ value: 1 });
  });

  it('throwOnLayerError opts into failing loudly', async () => {
    const bad = new TestLayer('bad');
    bad.mode = 'reject';
    const cache = new MultiLayerCache({ layers: [bad], throwOnLayerError: true });
    await expect(cache.getOrLoad(req('x'), async () => 1)).rejects.toThrow(/rejected/);
  });
});

describe('what gets stored', () => {
  it('never stores an incomplete result', async () => {
    const l1 = new TestLayer('l1');
    const cache = new MultiLayerCache({ layers: [l1] });
    const r = await cache.getOrLoad(req('partial'), async () => loaded('half an ans', { complete: false }));
    await cache.flush();
    expect(r).toMatchObject({ value: 'half an ans', stored: false });
    expect(l1.map.size).toBe(0);
  });

  it('default policy caches deterministic requests only', async () => {
    const l1 = new TestLayer('l1');
    const cache = new MultiLayerCache({ layers: [l1] });
    const creative = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'write a poem' }] };
    expect((await cache.getOrLoad(creative, async () => 'poem')).status).toBe('bypass');
    expect((await cache.getOrLoad({ ...creative, seed: 7 }, async () => 'poem')).status).toBe('miss');
    expect((await cache.getOrLoad({ ...creative, temperature: 0 }, async () => 'poem')).status).toBe('miss');
    const always = new MultiLayerCache({ layers: [new TestLayer('l1')], policy: 'always' });
    expect((await always.getOrLoad(creative, async () => 'poem')).status).toBe('miss');
    const custom = new MultiLayerCache({ layers: [new TestLayer('l1')], policy: () => ({ write: false }) });
    expect((await custom.getOrLoad(req('x'), async () => 1)).stored).toBe(false);
  });

  it('honours bypass, forceRefresh, noStore, ttlMs, tags and scope per call', async () => {
    const l1 = new TestLayer('l1');
    const cache = new MultiLayerCache({ layers: [l1] });
    await cache.getOrLoad(req('a'), async () => 'v1', { tags: ['topic:a'], ttlMs: 5_000 });
    await cache.flush();
    const stored = [...l1.map.values()][0]!.entry;
    expect(stored.tags).toEqual(['topic:a']);
    expect(stored.ttlMs).toBe(5_000);
    expect((await cache.getOrLoad(req('a'), async () => 'x', { bypass: true })).status).toBe('bypass');
    const refreshed = await cache.getOrLoad(req('a'), async () => 'v2', { forceRefresh: true });
    await cache.flush();
    expect(refreshed.status).toBe('miss');
    expect((await cache.getOrLoad(req('a'), async () => 'x')).value).toBe('v2');
    await cache.getOrLoad(req('b'), async () => 'nostore', { noStore: true });
    await cache.flush();
    expect((await cache.getOrLoad(req('b'), async () => 'loaded again')).value).toBe('loaded again');
    expect((await cache.getOrLoad(req('a'), async () => 'other tenant', { scope: 'globex' })).value).toBe('other tenant');
  });

  it('wrap() memoises any async function', async () => {
    const cache = new MultiLayerCache({ layers: [new TestLayer('l1')] });
    let calls = 0;
    const retrieveAndAnswer = cache.wrap(async (q: string, k: number) => `${q}:${k}:${++calls}`, { name: 'rag' });
    expect(await retrieveAndAnswer('q', 3)).toBe('q:3:1');
    expect(await retrieveAndAnswer('q', 3)).toBe('q:3:1');
    expect(await retrieveAndAnswer('q', 4)).toBe('q:4:2');
    expect(() => cache.wrap(async () => 1)).toThrow(InvalidOptionError);
  });

  it('rejects unknown or bad options clearly', () => {
    expect(() => new MultiLayerCache({ layers: [], ttl: 5 } as never)).toThrow(/unknown MultiLayerCache option "ttl"/);
    expect(() => new MultiLayerCache({ layers: [{}] } as never)).toThrow(/layers\[0\]/);
    expect(() => new MultiLayerCache({ layers: [], budgetMs: -1 })).toThrow(/budgetMs/);
    const a = new TestLayer('same');
    const b = new TestLayer('same');
    expect(() => new MultiLayerCache({ layers: [a, b] })).toThrow(/two layers are named "same"/);
    const old = Object.assign(new TestLayer('old'), { specificationVersion: 'v0' });
    expect(() => new MultiLayerCache({ layers: [old as never] })).toThrow(/contract v0/);
  });
});

describe('invalidation', () => {
  it('invalidateTag removes tagged entries; bumpScopeVersion makes the whole scope unreachable', async () => {
    const l1 = new TestLayer('l1');
    const cache = new MultiLayerCache({ layers: [l1] });
    await cache.getOrLoad(req('price?'), async () => '$10', { tags: ['topic:pricing'] });
    await cache.getOrLoad(req('hours?'), async () => '9-5');
    await cache.flush();
    const purged = await cache.invalidateTag('topic:pricing');
    expect(purged.layers['l1']).toBe(1);
    expect((await cache.getOrLoad(req('price?'), async () => '$12')).value).toBe('$12');
    expect((await cache.getOrLoad(req('hours?'), async () => 'x')).status).toBe('hit');
    const { version } = await cache.bumpScopeVersion();
    expect(version).toBe(1);
    expect((await cache.getOrLoad(req('hours?'), async () => '8-6')).value).toBe('8-6');
  });

  it('a slow loader finishing after an invalidation does not bring the purged answer back', async () => {
    const l1 = new TestLayer('l1');
    const cache = new MultiLayerCache({ layers: [l1] });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const pending = cache.getOrLoad(
      req('price?'),
      async () => {
        await gate;
        return '$10 (old price)';
      },
      { tags: ['topic:pricing'] },
    );
    await sleep(5);
    await cache.invalidateTag('topic:pricing');
    release();
    const r = await pending;
    await cache.flush();
    expect(r.value).toBe('$10 (old price)'); // the caller that asked before still gets its answer
    expect(r.stored).toBe(false);
    expect(l1.map.size).toBe(0);
  });

  it("fans out over a bus: an invalidation in one cache purges the other cache's in-process layer", async () => {
    const bus = new LocalInvalidationBus();
    const l1a = new TestLayer('l1', { remote: false });
    const l1b = new TestLayer('l1', { remote: false });
    const a = new MultiLayerCache({ layers: [l1a], bus });
    const b = new MultiLayerCache({ layers: [l1b], bus });
    await Promise.all([a.ready(), b.ready()]);
    await b.getOrLoad(req('price?'), async () => '$10', { tags: ['topic:pricing'] });
    await b.getOrLoad(req('hours?'), async () => '9-5');
    await b.flush();
    const seen: string[] = [];
    b.on('invalidate', (e) => seen.push(e.origin));
    await a.invalidateTag('topic:pricing');
    await b.flush();
    expect(l1b.map.size).toBe(1);
    expect(seen).toEqual(['remote']);
    await a.bumpScopeVersion();
    await b.flush();
    expect(b.resolveScope().version).toBe(1);
    expect((await b.getOrLoad(req('hours?'), async () => '8-6')).value).toBe('8-6');
  });
});

describe('scopes', () => {
  it('one scope object per tenant, namespace and version, whether the caller reuses its scope object or builds one per call', async () => {
    const cache = new MultiLayerCache({ layers: [new TestLayer('l1', { remote: false })] });
    const mine = { tenant: 'acme', namespace: 'bot' };
    const a = cache.resolveScope(mine);
    expect(cache.resolveScope(mine)).toBe(a);
    expect(cache.resolveScope({ tenant: 'acme', namespace: 'bot' })).toBe(a);
    expect(cache.resolveScope({ tenant: 'acme', namespace: 'bot', version: 0 })).toBe(a);
    expect(Object.isFrozen(a)).toBe(true);
    expect(cache.resolveScope('acme')).toBe(cache.resolveScope({ tenant: 'acme' }));
    // A caller's scope object changed after use is resolved again: never the old tenant.
    mine.tenant = 'globex';
    expect(cache.resolveScope(mine)).toEqual({ tenant: 'globex', namespace: 'bot', version: 0 });
    const r1 = await cache.getOrLoad(req('q'), async () => 'for globex', { scope: mine });
    mine.tenant = 'acme';
    const r2 = await cache.getOrLoad(req('q'), async () => 'for acme', { scope: mine });
    expect([r1.value, r2.value, r2.status]).toEqual(['for globex', 'for acme', 'miss']);
    // Parts that would collide if joined with a separator stay apart.
    const x = cache.resolveScope({ tenant: 'a\u0000b', namespace: 'c' });
    const y = cache.resolveScope({ tenant: 'a', namespace: 'b\u0000c' });
    expect(x).not.toBe(y);
    expect(cache.keyFor(req('q'), { scope: { tenant: 'a\u0000b', namespace: 'c' } }).id).not.toBe(
      cache.keyFor(req('q'), { scope: { tenant: 'a', namespace: 'b\u0000c' } }).id,
    );
    // A bumped version is a scope of its own.
    await cache.bumpScopeVersion({ tenant: 'acme', namespace: 'bot' });
    const bumped = cache.resolveScope({ tenant: 'acme', namespace: 'bot' });
    expect(bumped.version).toBe(1);
    expect(cache.resolveScope({ tenant: 'acme', namespace: 'bot' })).toBe(bumped);
    await cache.close();
  });
});

describe('statistics', () => {
  it('prices hits of dated model names by the longest prefix, hit after hit, and counts unpriced ones each time', async () => {
    const cache = new MultiLayerCache({
      layers: [new TestLayer('l1')],
      prices: { 'gpt-4o': { input: 5, output: 10 }, 'gpt-4o-mini': { input: 1, output: 2 } },
    });
    const usage = { inputTokens: 100, outputTokens: 10 };
    for (const model of ['gpt-4o-mini-2024-07-18', 'other-model']) {
      const load = async () => loaded('answer', { usage, model });
      await cache.getOrLoad(req('q', { model }), load);
      await cache.flush();
      for (let i = 0; i < 3; i++) await cache.getOrLoad(req('q', { model }), load);
    }
    const s = cache.stats();
    expect(s.usdSaved).toBeCloseTo((3 * (100 * 1 + 10 * 2)) / 1e6, 12);
    expect(s.upstreamUsd).toBeCloseTo((100 * 1 + 10 * 2) / 1e6, 12);
    expect(s.unpricedHits).toBe(3);
  });

  it("prices only by the table's own entries (a model named like an Object method is unpriced) and prices long names that are not remembered", async () => {
    const long = `gpt-4o-${'x'.repeat(300)}`;
    const cache = new MultiLayerCache({ layers: [new TestLayer('l1')], prices: { 'gpt-4o': { input: 5, output: 10 } } });
    const usage = { inputTokens: 100, outputTokens: 10 };
    for (const model of ['constructor', 'toString', long]) {
      const load = async () => loaded('answer', { usage, model });
      await cache.getOrLoad(req('q', { model }), load);
      await cache.flush();
      for (let i = 0; i < 2; i++) await cache.getOrLoad(req('q', { model }), load);
    }
    const s = cache.stats();
    expect(s.unpricedHits).toBe(4);
    expect(Number.isFinite(s.usdSaved)).toBe(true);
    expect(s.usdSaved).toBeCloseTo((2 * (100 * 5 + 10 * 10)) / 1e6, 12);
  });

  it('counts hits, misses, tokens and USD saved from the price table', async () => {
    const cache = new MultiLayerCache({ layers: [new TestLayer('l1')], prices: { 'my-model': { input: 1, output: 2 } } });
    const usage = { inputTokens: 1_000, outputTokens: 500 };
    const load = async () => loaded('answer', { usage, model: 'my-model' });
    await cache.getOrLoad(req('q', { model: 'my-model' }), load);
    await cache.flush();
    for (let i = 0; i < 3; i++) await cache.getOrLoad(req('q', { model: 'my-model' }), load);
    const s = cache.stats();
    expect(s).toMatchObject({ requests: 4, hits: 3, misses: 1, hitRate: 0.75, loaderCalls: 1 });
    expect(s.tokensSaved).toEqual({ input: 3_000, output: 1_500 });
    expect(s.usdSaved).toBeCloseTo((3 * (1_000 * 1 + 500 * 2)) / 1e6, 12);
    expect(s.layers['l1']!.hits).toBe(3);
    expect(s.layers['l1']!.p50Ms).toBeTypeOf('number');
    const p = cache.monthlyProjection(10_000);
    expect(p.usd).toBeCloseTo(projectMonthlySavings({ dailyRequests: 10_000, hitRate: 0.75, tokensPerRequest: 1_500, pricePerMillion: 2_000 / 1_500 }), 9);
    // The seed formula with the figures written out: 10,000 × 0.75 × 1,500/1e6 × $1.333/M × 30 days.
    expect(p).toMatchObject({ hitRate: 0.75, tokensPerRequest: 1_500 });
    expect(p.pricePerMillion).toBeCloseTo(2_000 / 1_500, 12);
    expect(p.usd).toBeCloseTo(450, 9);
    expect(projectMonthlySavings({ dailyRequests: 50_000, hitRate: 0.4, tokensPerRequest: 1_000, pricePerMillion: 2.5 })).toBeCloseTo(1_500, 9);
  });

  it('reports per-layer latency p50 and p95 from what each lookup took', async () => {
    const layer = new TestLayer('l1');
    const cache = new MultiLayerCache({ layers: [{ layer, budgetMs: 1_000 }], policy: 'always' });
    await cache.getOrLoad(req('q'), async () => 'a');
    await cache.flush();
    // 21 lookups (the miss, then 20 hits), two of them slow: p50 stays fast, p95 sees a slow read.
    layer.slowMs = 60;
    for (let i = 0; i < 20; i++) {
      layer.mode = i === 5 || i === 15 ? 'slow' : 'ok';
      expect((await cache.getOrLoad(req('q'), async () => 'b')).status).toBe('hit');
    }
    const l = cache.stats().layers['l1']!;
    expect(l.p50Ms!).toBeLessThan(20);
    expect(l.p95Ms!).toBeGreaterThanOrEqual(55);
    expect(l.p95Ms!).toBeGreaterThan(l.p50Ms!);
  });

  it('LatencyRecorder: nearest-rank quantiles over a bounded ring of recent samples', () => {
    const r = new LatencyRecorder(100);
    expect(r.quantile(0.5)).toBeUndefined();
    for (let i = 100; i >= 1; i--) r.record(i);
    expect(r.quantile(0.5)).toBe(50);
    expect(r.quantile(0.95)).toBe(95);
    expect(r.quantile(1)).toBe(100);
    for (let i = 0; i < 100; i++) r.record(1_000 + i); // the old samples roll out
    expect(r.size).toBe(100);
    expect(r.quantile(0.5)).toBe(1_049);
  });

  it('accounts provider prompt caching separately and never double-counts it', async () => {
    const cache = new MultiLayerCache({ layers: [new TestLayer('l1')], prices: { m: { input: 2, output: 8, cachedInput: 0.5 } } });
    const usage = { inputTokens: 1_000, outputTokens: 100, cachedInputTokens: 800 };
    await cache.getOrLoad(req('q', { model: 'm' }), async () => loaded('a', { usage, model: 'm' }));
    await cache.flush();
    await cache.getOrLoad(req('q', { model: 'm' }), async () => 'x');
    const s = cache.stats();
    // Saved by Strata on the hit = what the call actually cost (cached tokens at the cached price).
    expect(s.usdSaved).toBeCloseTo((200 * 2 + 800 * 0.5 + 100 * 8) / 1e6, 12);
    expect(s.usdSaved).toBeCloseTo(costUsd(usage, { input: 2, output: 8, cachedInput: 0.5 }), 12);
    expect(s.providerCacheUsdSaved).toBeCloseTo((800 * (2 - 0.5)) / 1e6, 12);
    expect(s.providerCachedTokens).toBe(800);
  });
});

describe('semantic hits and backfill', () => {
  /** A fake semantic layer: answers any search in the scope with its one stored entry. */
  const semanticLayer = () => {
    const l = new TestLayer('sem', { semantic: true, remote: false });
    const stored: Array<{ key: import('../src/index.js').CacheKey; entry: import('../src/index.js').CacheEntry }> = [];
    const orig = l.set.bind(l);
    l.set = async (key, entry) => {
      stored.push({ key, entry });
      return orig(key, entry);
    };
    (l as unknown as { search: unknown }).search = async () => (stored.length ? { hit: { ...stored[0]!, similarity: 0.97, text: 'stored question' } } : {});
    return l;
  };

  it('does not copy a semantic hit into upper layers by default; opt in with backfillSemanticHits', async () => {
    for (const opt of [false, true]) {
      const l1 = new TestLayer('l1', { remote: false });
      const sem = semanticLayer();
      const cache = new MultiLayerCache({ layers: [l1, sem], backfillSemanticHits: opt });
      await cache.getOrLoad(req('How do I reset my password?'), async () => 'reset answer');
      await cache.flush();
      l1.map.clear();
      const r = await cache.getOrLoad(req('password reset, how?'), async () => 'not called');
      await cache.flush();
      expect(r).toMatchObject({ status: 'hit', layer: 'sem', similarity: 0.97, value: 'reset answer' });
      expect(l1.map.size).toBe(opt ? 1 : 0);
    }
  });
});
