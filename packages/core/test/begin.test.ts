import { describe, expect, it } from 'vitest';
import { type Begun, type CacheKey, type LoadCoordinator, type LoadTicket, LoadAbandonedError, MultiLayerCache, StrataError, loaded } from '../src/index.js';
import { TestLayer } from './helpers.js';

const req = (content: string) => ({ model: 'gpt-4o-mini', temperature: 0, stream: true, messages: [{ role: 'user', content }] });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const CHUNKS = Array.from({ length: 12 }, (_, i) => ({ delta: `part ${i} ` }));

/** A streaming upstream: yields CHUNKS with a pause between each; `failAt` makes it die mid-stream. */
async function* upstreamStream(counter: { calls: number }, failAt?: number): AsyncGenerator<{ delta: string }> {
  counter.calls++;
  for (let i = 0; i < CHUNKS.length; i++) {
    await sleep(3);
    if (i === failAt) throw new Error('upstream connection reset');
    yield CHUNKS[i]!;
  }
}

/**
 * What an adapter's stream path does with begin(): replay a hit, follow a joined load live, or
 * run the load — pushing every chunk — and commit the assembled answer (abandon on failure).
 */
async function streamThroughCache(
  cache: MultiLayerCache,
  request: unknown,
  counter: { calls: number },
  failAt?: number,
): Promise<{ kind: Begun<unknown>['kind']; chunks: unknown[] }> {
  const b = await cache.begin<string>(request);
  const got: unknown[] = [];
  if (b.kind === 'hit') return { kind: 'hit', chunks: [...(b.result.entry!.chunks ?? [])] };
  if (b.kind === 'join') {
    for await (const c of b.chunks()) got.push(c);
    return { kind: 'join', chunks: got };
  }
  try {
    for await (const c of upstreamStream(counter, failAt)) {
      b.push(c);
      got.push(c);
    }
    await b.commit(loaded(got.map((c) => (c as { delta: string }).delta).join(''), { usage: { inputTokens: 5, outputTokens: 12 } }));
  } catch (error) {
    b.abandon(error);
    throw error;
  } finally {
    b.abandon(); // a no-op after commit
  }
  return { kind: 'load', chunks: got };
}

describe('begin(): two-phase read-through for streams', () => {
  it('10 concurrent identical stream begins → 1 upstream stream, 10 identical complete chunk sequences, then a hit', async () => {
    const l1 = new TestLayer('l1', { remote: false });
    const cache = new MultiLayerCache({ layers: [l1] });
    const counter = { calls: 0 };
    const results = await Promise.all(Array.from({ length: 10 }, () => streamThroughCache(cache, req('tell me a story'), counter)));
    expect(counter.calls).toBe(1);
    expect(results.filter((r) => r.kind === 'load')).toHaveLength(1);
    expect(results.filter((r) => r.kind === 'join')).toHaveLength(9);
    for (const r of results) expect(r.chunks).toEqual(CHUNKS);
    await cache.flush();
    const stored = [...l1.map.values()][0]!.entry;
    expect(stored.chunks).toEqual(CHUNKS); // pushed chunks become the entry's chunks
    expect(stored.value).toBe(CHUNKS.map((c) => c.delta).join(''));
    const again = await streamThroughCache(cache, req('tell me a story'), counter);
    expect(again).toEqual({ kind: 'hit', chunks: CHUNKS });
    expect(counter.calls).toBe(1);
    expect(cache.stats()).toMatchObject({ requests: 11, misses: 10, hits: 1, coalesced: 9, loaderCalls: 1 });
  });

  it('a joiner arriving mid-stream gets the chunks already pushed, then the rest live', async () => {
    const cache = new MultiLayerCache({ layers: [new TestLayer('l1')] });
    const lead = await cache.begin(req('q'));
    if (lead.kind !== 'load') throw new Error('expected to load');
    lead.push('a');
    lead.push('b');
    const join = await cache.begin(req('q'));
    if (join.kind !== 'join') throw new Error('expected to join');
    const seen: unknown[] = [];
    const following = (async () => {
      for await (const c of join.chunks()) seen.push(c);
    })();
    await sleep(5);
    expect(seen).toEqual(['a', 'b']);
    lead.push('c');
    await sleep(1);
    expect(seen).toEqual(['a', 'b', 'c']);
    const r = await lead.commit('abc');
    await following;
    expect(seen).toEqual(['a', 'b', 'c']);
    expect(r).toMatchObject({ status: 'miss', stored: true, value: 'abc' });
    expect(await join.result).toMatchObject({ value: 'abc', coalesced: true });
  });

  it('an error mid-stream reaches every joiner and is never stored; the next request loads afresh', async () => {
    const l1 = new TestLayer('l1');
    const cache = new MultiLayerCache({ layers: [l1] });
    const counter = { calls: 0 };
    const settled = await Promise.allSettled(Array.from({ length: 5 }, () => streamThroughCache(cache, req('doomed'), counter, 6)));
    expect(counter.calls).toBe(1);
    for (const s of settled) {
      expect(s.status).toBe('rejected');
      expect(((s as PromiseRejectedResult).reason as Error).message).toBe('upstream connection reset');
    }
    await cache.flush();
    expect(l1.map.size).toBe(0);
    expect(cache.stats().loaderErrors).toBe(1);
    const fresh = await streamThroughCache(cache, req('doomed'), counter);
    expect(fresh.kind).toBe('load');
    expect(fresh.chunks).toEqual(CHUNKS);
  });

  it('an abandoned load (no reason) stores nothing; joiners that got nothing yet are told to begin again', async () => {
    const l1 = new TestLayer('l1');
    const cache = new MultiLayerCache({ layers: [l1] });
    const lead = await cache.begin(req('x'));
    const join = await cache.begin(req('x'));
    if (lead.kind !== 'load' || join.kind !== 'join') throw new Error('unexpected kinds');
    const iterating = join.chunks().next();
    lead.abandon();
    const error = await iterating.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LoadAbandonedError);
    expect(LoadAbandonedError.isInstance(error)).toBe(true);
    expect((error as LoadAbandonedError).started).toBe(false);
    await expect(join.result).rejects.toMatchObject({ code: 'STRATA_ABANDONED' });
    await cache.flush();
    expect(l1.map.size).toBe(0);
    // begin again: the abandoned flight is gone, this caller loads.
    const retry = await cache.begin(req('x'));
    expect(retry.kind).toBe('load');
    if (retry.kind === 'load') await retry.commit('ok');
    // getOrLoad callers that joined an abandoned load retry by themselves.
    const lead2 = await cache.begin(req('y'));
    if (lead2.kind !== 'load') throw new Error('expected to load');
    const joiner = cache.getOrLoad(req('y'), async () => 'loaded by the joiner');
    await sleep(1);
    lead2.abandon();
    expect(await joiner).toMatchObject({ value: 'loaded by the joiner', status: 'miss' });
  });

  it('commit() twice is refused; abandon() after commit is a no-op; push() after settling throws', async () => {
    const cache = new MultiLayerCache({ layers: [new TestLayer('l1')] });
    const b = await cache.begin(req('once'));
    if (b.kind !== 'load') throw new Error('expected to load');
    await b.commit('v');
    expect(b.settled).toBe(true);
    b.abandon();
    await expect(b.commit('again')).rejects.toThrow(/after the load was committed or abandoned/);
    expect(() => b.push('late')).toThrow(StrataError);
  });

  it('a load that began before an invalidation is returned but never stored (also through begin)', async () => {
    const l1 = new TestLayer('l1');
    const cache = new MultiLayerCache({ layers: [l1] });
    const b = await cache.begin(req('price?'));
    if (b.kind !== 'load') throw new Error('expected to load');
    await cache.invalidateTag('pricing');
    const after = await cache.begin(req('price?'));
    expect(after.kind).toBe('load'); // does not join the older load
    const r = await b.commit(loaded('$10', { tags: ['pricing'] }));
    expect(r).toMatchObject({ value: '$10', stored: false });
    if (after.kind === 'load') after.abandon();
    expect(typeof b.epoch).toBe('number');
  });

  it('bypassed requests load without coalescing or storing', async () => {
    const l1 = new TestLayer('l1');
    const cache = new MultiLayerCache({ layers: [l1], warnOnPolicySkip: false });
    const creative = { model: 'm', messages: [{ role: 'user', content: 'poem' }] };
    const a = await cache.begin(creative);
    const b = await cache.begin(creative);
    expect([a.kind, b.kind]).toEqual(['load', 'load']);
    if (a.kind !== 'load') throw new Error('expected to load');
    expect(a.status).toBe('bypass');
    expect(a.willStore).toBe(false);
    expect(await a.commit('roses')).toMatchObject({ status: 'bypass', stored: false });
    if (b.kind === 'load') b.abandon();
    await cache.flush();
    expect(l1.map.size).toBe(0);
  });

  it("uses the coordinator by construction: another process's answer arrives as a hit, with its chunks, for every caller", async () => {
    const entry = { value: 'from another process', chunks: ['x', 'y'], createdAt: Date.now(), ttlMs: 60_000, tags: [] };
    const begun: CacheKey[] = [];
    const coordinator: LoadCoordinator = {
      begin: async (key): Promise<LoadTicket> => {
        begun.push(key);
        await sleep(10);
        return { kind: 'hit', entry, layer: 'l2' };
      },
    };
    const l1 = new TestLayer('l1');
    const l2 = new TestLayer('l2');
    const cache = new MultiLayerCache({ layers: [l1, l2], coordinator });
    const [first, second] = await Promise.all([cache.begin(req('z')), cache.begin(req('z'))]);
    expect(begun).toHaveLength(1);
    expect(first!.kind).toBe('hit');
    expect(second!.kind).toBe('join');
    if (second!.kind === 'join') {
      const seen: unknown[] = [];
      for await (const c of second!.chunks()) seen.push(c);
      expect(seen).toEqual(['x', 'y']);
      expect(await second!.result).toMatchObject({ status: 'hit', value: 'from another process' });
    }
    await cache.flush();
    expect(l1.map.size).toBe(1); // backfilled above the layer it came from
  });

  it('a load ticket is released after the committed writes landed', async () => {
    const done: boolean[] = [];
    const coordinator: LoadCoordinator = { begin: async () => ({ kind: 'load', done: ({ stored }) => void done.push(stored) }) };
    const cache = new MultiLayerCache({ layers: [new TestLayer('l1')], coordinator });
    const b = await cache.begin(req('w'));
    if (b.kind !== 'load') throw new Error('expected to load');
    await b.commit('v');
    await cache.flush();
    expect(done).toEqual([true]);
  });
});

describe('begin(): a pending load dropped without being settled', () => {
  it('is released once garbage-collected: joiners get LoadAbandonedError and can load, with an error event', async () => {
    const { setFlagsFromString } = await import('node:v8');
    const { runInNewContext } = await import('node:vm');
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const cache = new MultiLayerCache({ layers: [new TestLayer('l1')] });
    const errors: string[] = [];
    cache.on('error', (e) => errors.push(e.error.code));
    await (async () => {
      const dropped = await cache.begin(req('forgotten'));
      expect(dropped.kind).toBe('load'); // ...and never committed nor abandoned
    })();
    const joiner = await cache.begin(req('forgotten'));
    if (joiner.kind !== 'join') throw new Error('expected to join');
    const outcome = joiner.result.then(
      () => 'resolved',
      (e: unknown) => e,
    );
    for (let i = 0; i < 50 && errors.length === 0; i++) {
      gc();
      await sleep(10);
    }
    const error = await outcome;
    expect(error).toBeInstanceOf(LoadAbandonedError);
    expect((error as LoadAbandonedError).started).toBe(false);
    expect(errors).toContain('STRATA_ABANDONED');
    const again = await cache.begin(req('forgotten'));
    expect(again.kind).toBe('load');
    if (again.kind === 'load') await again.commit('finally');
  });
});
