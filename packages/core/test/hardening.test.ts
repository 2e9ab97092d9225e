import { describe, expect, it, vi } from 'vitest';
import {
  type CacheEntry,
  type CacheKey,
  DecodeError,
  InvalidOptionError,
  InvalidRequestError,
  LayerError,
  LayerTimeoutError,
  type LayerContext,
  MissingDependencyError,
  MultiLayerCache,
  StrataError,
  loaded,
} from '../src/index.js';
import { TagScopeIndex, isCacheEntry } from '../src/layer-kit.js';
import { TestLayer } from './helpers.js';

const req = (content: string) => ({ model: 'gpt-4o-mini', temperature: 0, messages: [{ role: 'user', content }] });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("per-call options are validated like the constructor's", () => {
  const cache = new MultiLayerCache({ layers: [new TestLayer('l1')] });
  const load = async () => 'v';
  const cases: Array<[string, () => Promise<unknown> | unknown, string]> = [
    ['getOrLoad ttlMs NaN', () => cache.getOrLoad(req('a'), load, { ttlMs: Number.NaN }), 'ttlMs'],
    ['getOrLoad ttlMs Infinity', () => cache.getOrLoad(req('a'), load, { ttlMs: Number.POSITIVE_INFINITY }), 'ttlMs'],
    ['getOrLoad tags string', () => cache.getOrLoad(req('a'), load, { tags: 'abc' as never }), 'tags'],
    ['getOrLoad typo ttl', () => cache.getOrLoad(req('a'), load, { ttl: 5 } as never), 'ttl'],
    ['lookup typo', () => cache.lookup(req('a'), { tag: ['x'] } as never), 'tag'],
    ['lookup bypass not boolean', () => cache.lookup(req('a'), { bypass: 'yes' } as never), 'bypass'],
    ['begin semantic threshold', () => cache.begin(req('a'), { semantic: { threshold: 7 } }), 'semantic.threshold'],
    ['store ttlMs negative', () => cache.store(req('a'), 'v', { ttlMs: -1 }), 'ttlMs'],
    ['store sinceEpoch', () => cache.store(req('a'), 'v', { sinceEpoch: -3 }), 'sinceEpoch'],
    ['wrap tags', () => cache.wrap(load, { name: 'f', tags: [''] }), 'tags'],
    ['wrap profile is not a wrap option', () => cache.wrap(load, { name: 'f', profile: {} } as never), 'profile'],
    ['invalidateKey typo', () => cache.invalidateKey(req('a'), { scop: 'x' } as never), 'scop'],
    ['invalidateTag typo', () => cache.invalidateTag('t', { tenant: 'x' } as never), 'tenant'],
    ['loaded ttlMs NaN', () => loaded('v', { ttlMs: Number.NaN }), 'ttlMs'],
    ['loaded tags string', () => loaded('v', { tags: 'abc' as never }), 'tags'],
  ];
  for (const [name, run, field] of cases) {
    it(name, async () => {
      let error: unknown;
      try {
        await run();
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(InvalidOptionError);
      expect((error as InvalidOptionError).field).toBe(field);
      expect((error as Error).message).toContain(`"${field}"`);
    });
  }

  it('nothing was stored by the refused calls, and valid options still work', async () => {
    const l1 = new TestLayer('l1');
    const c = new MultiLayerCache({ layers: [l1] });
    await expect(c.getOrLoad(req('a'), load, { tags: 'abc' as never })).rejects.toThrow(InvalidOptionError);
    await c.flush();
    expect(l1.map.size).toBe(0);
    expect(await c.getOrLoad(req('a'), load, { ttlMs: 1_000, tags: ['t'], semantic: false })).toMatchObject({ status: 'miss' });
  });
});

describe('constructor', () => {
  it('refuses layers: [] and a bad closeTimeoutMs', () => {
    expect(() => new MultiLayerCache({ layers: [] })).toThrow(/"layers" is empty/);
    expect(() => new MultiLayerCache({ layers: [new TestLayer('l1')], closeTimeoutMs: 0 })).toThrow(/closeTimeoutMs/);
  });
});

describe('StrataError.isInstance: one marker per class, across copies', () => {
  it('is true only for the class and its subclasses', () => {
    const option = new InvalidOptionError('x');
    const timeout = new LayerTimeoutError('l', 'get', 5);
    expect(LayerTimeoutError.isInstance(option)).toBe(false);
    expect(LayerTimeoutError.isInstance(timeout)).toBe(true);
    expect(InvalidOptionError.isInstance(option)).toBe(true);
    expect(StrataError.isInstance(option)).toBe(true);
    expect(StrataError.isInstance(new Error('plain'))).toBe(false);
    expect(DecodeError.isInstance(new LayerError('l', 'get', 'x'))).toBe(false);
    class RedisDown extends LayerError {}
    const sub = new RedisDown('redis', 'get', 'down');
    expect(LayerError.isInstance(sub)).toBe(true);
    expect(RedisDown.isInstance(sub)).toBe(true);
    expect(RedisDown.isInstance(new LayerError('l', 'get', 'x'))).toBe(false);
    expect(MissingDependencyError.isInstance(sub)).toBe(false);
  });

  it('recognises an error built by another copy of core (markers live in the global registry)', () => {
    // What a duplicate install's error looks like: a different class, the same registered markers.
    const foreign = Object.assign(new Error('from another copy'), {
      [Symbol.for('strata-cache.error')]: true,
      [Symbol.for('strata-cache.error:StrataError')]: true,
      [Symbol.for('strata-cache.error:InvalidOptionError')]: true,
    });
    expect(InvalidOptionError.isInstance(foreign)).toBe(true);
    expect(StrataError.isInstance(foreign)).toBe(true);
    expect(LayerTimeoutError.isInstance(foreign)).toBe(false);
  });
});

describe('entries a layer returns are checked', () => {
  const good: CacheEntry = { value: 'v', createdAt: 1, tags: ['a'] };
  it('isCacheEntry refuses malformed tags, a non-finite createdAt and a bad TTL', () => {
    expect(isCacheEntry(good)).toBe(true);
    expect(isCacheEntry({ ...good, tags: 'abc' })).toBe(false);
    expect(isCacheEntry({ ...good, tags: [1, 2] })).toBe(false);
    expect(isCacheEntry({ ...good, createdAt: Number.POSITIVE_INFINITY })).toBe(false);
    expect(isCacheEntry({ ...good, createdAt: Number.NaN })).toBe(false);
    expect(isCacheEntry({ ...good, ttlMs: Number.NaN })).toBe(false);
    expect(isCacheEntry({ ...good, ttlMs: -5 })).toBe(false);
    expect(isCacheEntry({ createdAt: 1, tags: [] })).toBe(false);
  });

  it('a malformed entry from a layer is a miss plus a DecodeError event, never served', async () => {
    const l1 = new TestLayer('l1');
    const cache = new MultiLayerCache({ layers: [l1] });
    await cache.getOrLoad(req('q'), async () => 'real');
    await cache.flush();
    const [id, stored] = [...l1.map.entries()][0]!;
    l1.map.set(id, { key: stored.key, entry: { ...stored.entry, createdAt: Number.POSITIVE_INFINITY, tags: ['ok'] } });
    const errors: StrataError[] = [];
    cache.on('error', (e) => errors.push(e.error));
    const r = await cache.getOrLoad(req('q'), async () => 'reloaded');
    expect(r).toMatchObject({ status: 'miss', value: 'reloaded' });
    expect(errors.some((e) => DecodeError.isInstance(e))).toBe(true);
  });
});

describe('misses explain themselves', () => {
  it('CacheResult.rejected is filled on a miss, with the same list the reject event carries', async () => {
    const sem = new TestLayer('sem', { semantic: true, remote: false });
    const nearest = { similarity: 0.81, text: 'how do I reset my password', guard: 'threshold' };
    (sem as unknown as { search: unknown }).search = async () => ({ rejected: [nearest] });
    const cache = new MultiLayerCache({ layers: [sem] });
    const events: unknown[] = [];
    cache.on('reject', (e) => events.push(e.rejected));
    const misses: unknown[] = [];
    cache.on('miss', (e) => misses.push(e.rejected));
    const r = await cache.getOrLoad(req('I forgot my password'), async () => 'answer');
    expect(r.status).toBe('miss');
    expect(r.rejected).toEqual([nearest]);
    expect(events).toEqual([[nearest]]);
    expect(misses).toEqual([[nearest]]);
    const b = await cache.begin(req('password help?'));
    expect(b.kind === 'load' && b.rejected).toEqual([nearest]);
    if (b.kind === 'load') b.abandon();
  });
});

describe('policy skips are counted and reported once per reason', () => {
  it('stats().policySkips by reason; one policySkip event and one process warning per reason', async () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      const cache = new MultiLayerCache({
        layers: [new TestLayer('l1')],
        plugins: [
          { name: 'no-images', onRequest: (c) => ((c.request as { img?: boolean }).img ? { read: false, write: false, reason: 'image input' } : undefined) },
        ],
      });
      const seen: string[] = [];
      cache.on('policySkip', (e) => seen.push(e.reason));
      const creative = (n: number) => ({ model: 'm', messages: [{ role: 'user', content: `poem ${n}` }] });
      for (let i = 0; i < 3; i++) expect((await cache.getOrLoad(creative(i), async () => 'p')).status).toBe('bypass');
      await cache.getOrLoad({ ...req('x'), img: true }, async () => 'i');
      await cache.getOrLoad({ ...req('y'), img: true }, async () => 'i');
      await cache.getOrLoad(req('z'), async () => 'cached', { bypass: true }); // the caller's choice, not the policy's
      expect(cache.stats().policySkips).toEqual({ 'non-deterministic': 3, 'image input': 2 });
      expect(cache.stats().bypassed).toBe(6);
      expect(seen).toEqual(['non-deterministic', 'image input']);
      expect(warn).toHaveBeenCalledTimes(2);
      expect(String(warn.mock.calls[0]![0])).toMatch(/temperature 0 or a seed/);
      const quiet = new MultiLayerCache({ layers: [new TestLayer('l1')], warnOnPolicySkip: false });
      await quiet.getOrLoad(creative(9), async () => 'p');
      expect(warn).toHaveBeenCalledTimes(2);
      expect(quiet.stats().policySkips).toEqual({ 'non-deterministic': 1 });
    } finally {
      warn.mockRestore();
    }
  });
});

describe('clear() reports what the layers removed', () => {
  it('counts per layer', async () => {
    const l1 = new TestLayer('l1');
    const cache = new MultiLayerCache({ layers: [l1] });
    for (const q of ['a', 'b', 'c']) await cache.getOrLoad(req(q), async () => q);
    await cache.flush();
    expect((await cache.clear()).layers).toEqual({ l1: 3 });
  });
});

describe('writes in flight and shutdown', () => {
  it('close() waits for a write that outlives its budget; stored is true only once a write landed', async () => {
    const remote = new TestLayer('remote');
    remote.mode = 'slow';
    remote.slowMs = 150; // far beyond the 20 ms budget: the request does not wait, close() does
    const cache = new MultiLayerCache({ layers: [{ layer: remote, budgetMs: 20 }] });
    const r = await cache.getOrLoad(req('big'), async () => 'x'.repeat(1_000));
    expect(r.stored).toBe(false); // the only layer had not acknowledged within its budget
    await cache.close();
    expect(remote.map.size).toBe(1); // ...but it landed before close() resolved
    await expect(cache.getOrLoad(req('big'), async () => 'y')).rejects.toMatchObject({ code: 'STRATA_CLOSED' });
    await cache.close(); // a second close is a no-op
  });

  it('close() gives up after closeTimeoutMs and aborts what is still queued', async () => {
    const remote = new TestLayer('remote');
    let signal: AbortSignal | undefined;
    remote.set = (_key: CacheKey, _entry: CacheEntry, ctx?: LayerContext) => {
      signal = ctx?.signal;
      return new Promise<void>(() => {});
    };
    const cache = new MultiLayerCache({ layers: [{ layer: remote, budgetMs: 10 }], closeTimeoutMs: 50 });
    await cache.getOrLoad(req('never lands'), async () => 'v');
    const t0 = performance.now();
    await cache.close();
    expect(performance.now() - t0).toBeLessThan(2_000);
    expect(signal?.aborted).toBe(true);
  });

  it('stored is true at once when an in-process layer took the write', async () => {
    const l1 = new TestLayer('l1', { remote: false });
    (l1 as unknown as { set: unknown }).set = (key: CacheKey, entry: CacheEntry) => void l1.map.set(key.id, { key, entry });
    const slow = new TestLayer('slow');
    slow.mode = 'hang';
    const cache = new MultiLayerCache({ layers: [l1, { layer: slow, budgetMs: 10 }], closeTimeoutMs: 20 });
    expect((await cache.getOrLoad(req('q'), async () => 'v')).stored).toBe(true);
  });
});

describe('deadlines and abort signals', () => {
  it('a remote read gets a deadline and a signal that aborts when its budget runs out; sync layers get no context', async () => {
    const seen: Array<LayerContext | undefined> = [];
    const l1 = new TestLayer('l1', { remote: false });
    (l1 as unknown as { get: unknown }).get = (_k: CacheKey, ctx?: LayerContext) => void seen.push(ctx);
    const remote = new TestLayer('remote');
    remote.get = (_k: CacheKey, ctx?: LayerContext) => {
      seen.push(ctx);
      return new Promise(() => {});
    };
    const cache = new MultiLayerCache({ layers: [l1, { layer: remote, budgetMs: 20 }], closeTimeoutMs: 20 });
    const before = Date.now();
    await cache.lookup(req('q'));
    expect(seen[0]).toBeUndefined();
    const ctx = seen[1]!;
    expect(ctx.deadline).toBeGreaterThanOrEqual(before + 20);
    expect(ctx.signal?.aborted).toBe(true);
    expect(ctx.signal?.reason).toBeInstanceOf(LayerTimeoutError);
  });

  it('reads that start together share one signal; a later read gets a fresh one, untouched by the earlier ones timing out', async () => {
    const seen: LayerContext[] = [];
    const remote = new TestLayer('remote');
    remote.get = (k: CacheKey, ctx?: LayerContext) => {
      seen.push(ctx!);
      // 'fast' answers at once; the rest never answer.
      return k.id === fastId ? Promise.resolve(undefined) : new Promise(() => {});
    };
    const cache = new MultiLayerCache({ layers: [{ layer: remote, budgetMs: 30 }], closeTimeoutMs: 20 });
    const fastId = cache.keyFor(req('fast')).id;
    const warnings: Error[] = [];
    const onWarning = (w: Error) => void warnings.push(w);
    process.on('warning', onWarning);
    try {
      // A burst of reads in one turn: more than the 10 listeners Node warns about on one signal.
      const burst = [req('fast'), ...Array.from({ length: 12 }, (_, i) => req(`slow ${i}`))].map((r) => cache.lookup(r));
      for (const ctx of seen) ctx.signal!.addEventListener('abort', () => undefined, { once: true });
      expect(new Set(seen.map((c) => c.signal)).size).toBe(1);
      await sleep(10);
      const later = cache.lookup(req('slow later'));
      const laterCtx = seen.at(-1)!;
      const laterSignal = laterCtx.signal!;
      expect(laterSignal).not.toBe(seen[0]!.signal);
      expect(laterSignal.aborted).toBe(false);
      let laterAbortedAt = Number.NaN;
      laterSignal.addEventListener('abort', () => (laterAbortedAt = Date.now()), { once: true });
      expect(await Promise.all(burst)).toEqual(Array.from({ length: 13 }, () => undefined));
      expect(seen[0]!.signal!.aborted).toBe(true);
      expect(seen[0]!.signal!.reason).toBeInstanceOf(LayerTimeoutError);
      // The later read started in a later turn: its own budget, its own signal, aborted at its own
      // deadline and not when the burst's ran out. (Checked against the deadlines, not against
      // the clock: a stalled machine fires both timers late, never early.)
      expect(laterCtx.deadline).toBeGreaterThan(seen[0]!.deadline!);
      expect(await later).toBeUndefined();
      expect(laterSignal.aborted).toBe(true);
      expect(laterSignal.reason).toBeInstanceOf(LayerTimeoutError);
      // Timers may fire up to 1 ms before Date.now() reaches their due time (rounding).
      expect(laterAbortedAt).toBeGreaterThanOrEqual(laterCtx.deadline! - 1);
      await sleep(0);
      expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
    expect(cache.stats().layers.remote?.timeouts).toBe(13);
  });
});

describe('the rest of the contract is used', () => {
  it('lookupMany: getMany on batch layers, one setMany backfill, one deleteMany for expired entries', async () => {
    let now = 1_000_000;
    const l1 = new TestLayer('l1', { remote: false });
    const l2 = new TestLayer('l2', { batch: true });
    const calls: string[] = [];
    Object.assign(l2, {
      getMany: async (keys: readonly CacheKey[]) => {
        calls.push(`getMany:${keys.length}`);
        return keys.map((k) => l2.map.get(k.id)?.entry);
      },
      setMany: async () => void calls.push('setMany'),
      deleteMany: async (keys: readonly CacheKey[]) => {
        calls.push(`deleteMany:${keys.length}`);
        return keys.filter((k) => l2.map.delete(k.id)).length;
      },
    });
    Object.assign(l1, {
      getMany: undefined,
    });
    const cache = new MultiLayerCache({ layers: [l1, l2], now: () => now, defaultTtlMs: 10_000 });
    await cache.getOrLoad(req('a'), async () => 'A');
    await cache.getOrLoad(req('b'), async () => 'B', { ttlMs: 100 });
    await cache.flush();
    l1.map.clear();
    now += 1_000; // b expired
    const hits = await cache.lookupMany([req('a'), req('b'), req('c')]);
    await cache.flush();
    expect(hits.map((h) => h?.entry.value)).toEqual(['A', undefined, undefined]);
    expect(calls).toEqual(['getMany:3', 'deleteMany:1']);
    expect(l1.map.size).toBe(1); // l1 is not a batch layer: one set per hit
    expect(l2.map.size).toBe(1);
  });

  it('tag and version purges reach only layers that declare capabilities.tags; nativeTtl layers are not asked to delete expired entries', async () => {
    let now = 1_000;
    const tagged = new TestLayer('tagged');
    const plain = new TestLayer('plain', { tags: false, nativeTtl: true });
    let plainTagCalls = 0;
    let plainDeletes = 0;
    plain.deleteByTag = async () => ++plainTagCalls;
    const origDelete = plain.delete.bind(plain);
    plain.delete = async (k) => {
      plainDeletes++;
      return origDelete(k);
    };
    const cache = new MultiLayerCache({ layers: [plain, tagged], now: () => now });
    await cache.getOrLoad(req('q'), async () => 'v', { tags: ['t'], ttlMs: 10 });
    await cache.flush();
    const r = await cache.invalidateTag('t');
    expect(plainTagCalls).toBe(0);
    expect(r.layers).toEqual({ plain: 0, tagged: 1 });
    now += 100;
    await cache.lookup(req('q'));
    await cache.flush();
    expect(plainDeletes).toBe(0);
  });
});

describe('typed errors for requests that cannot be keyed', () => {
  it('a 5,000-level-deep request is an InvalidRequestError from getOrLoad', async () => {
    let deep: unknown = 'x';
    for (let i = 0; i < 5_000; i++) deep = { a: deep };
    const cache = new MultiLayerCache({ layers: [new TestLayer('l1')], policy: 'always' });
    await expect(cache.getOrLoad(deep, async () => 1)).rejects.toBeInstanceOf(InvalidRequestError);
    await sleep(0);
  });
});

describe('TagScopeIndex (implementer API)', () => {
  it('holds current tags only, answers by tag and scope, and forgets removed entries', () => {
    const idx = new TagScopeIndex();
    const a = { tenant: 'a', namespace: 'n' };
    const b = { tenant: 'b', namespace: 'n' };
    idx.add('k1', a, ['old', 'shared']);
    idx.add('k2', b, ['shared']);
    idx.add('k1', a, ['new', 'shared']); // re-tag
    expect(idx.withTag('old')).toEqual([]);
    expect(idx.withTag('new')).toEqual(['k1']);
    expect(idx.withTag('shared').sort()).toEqual(['k1', 'k2']);
    expect(idx.withTag('shared', b)).toEqual(['k2']);
    expect(idx.inScope(a)).toEqual(['k1']);
    expect(idx.tagsOf('k1')).toEqual(['new', 'shared']);
    expect(idx.remove('k1')).toBe(true);
    expect(idx.remove('k1')).toBe(false);
    idx.remove('k2');
    expect(idx.counts).toEqual({ tags: 0, scopes: 0 });
    expect(idx.size).toBe(0);
  });
});
