import { describe, expect, it } from 'vitest';
import { InvalidOptionError, MultiLayerCache, type SemanticQuery, type SemanticSearchResult } from '../src/index.js';
import { gatedLoader as gated } from '@strata-cache/test-utils';
import { TestLayer } from './helpers.js';

const chat = (text: string) => ({ model: 'm', temperature: 0, messages: [{ role: 'user', content: text }] });
const tick = () => new Promise((r) => setTimeout(r, 5));

/**
 * A fake semantic layer: `close` pairs texts that match each other. A search finds a stored entry
 * of a close text; when there is none, it names the earlier misses of close texts (`inFlight`)
 * and remembers its own miss — what a layer with recent misses does.
 */
class SimilarLayer extends TestLayer {
  readonly close = new Map<string, string>();
  readonly misses = new Map<string, string>(); // text → key id
  searches = 0;
  constructor() {
    super('sem', { semantic: true, remote: false });
  }
  async search(q: SemanticQuery): Promise<SemanticSearchResult> {
    this.searches++;
    const near = this.close.get(q.text);
    for (const { key, entry } of this.map.values()) {
      if (near !== undefined && entry.semantic?.text === near && key.scopeId === q.key?.scopeId) return { hit: { key, entry, similarity: 0.95, text: near } };
    }
    const named = near !== undefined && this.misses.has(near) ? [{ keyId: this.misses.get(near)!, similarity: 0.95 }] : [];
    if (q.key) this.misses.set(q.text, q.key.id);
    return named.length ? { inFlight: named } : {};
  }
}

function setup(options: ConstructorParameters<typeof MultiLayerCache>[0] extends infer O ? Partial<O> : never = {}) {
  const l1 = new TestLayer('l1', { remote: false });
  const sem = new SimilarLayer();
  sem.close.set('reset my password', 'how do i reset my password');
  sem.close.set('how do i reset my password', 'reset my password');
  const cache = new MultiLayerCache({ layers: [l1, sem], policy: 'always', ...options });
  return { l1, sem, cache };
}

describe('joinSimilar: a semantic miss waits for a similar load in flight', () => {
  it('waits for the load the layer names, searches again and serves its answer: one upstream call', async () => {
    const { sem, cache } = setup();
    const first = gated('Use the reset link.');
    const a = cache.getOrLoad<string>(chat('how do i reset my password'), first.loader);
    await tick();
    let secondCalls = 0;
    const b = cache.getOrLoad<string>(chat('reset my password'), async () => {
      secondCalls++;
      return 'second answer';
    });
    await tick();
    expect(secondCalls).toBe(0); // waiting for the first load
    first.release();
    const [ra, rb] = await Promise.all([a, b]);
    expect(ra).toMatchObject({ status: 'miss', value: 'Use the reset link.' });
    expect(rb).toMatchObject({
      status: 'hit',
      value: 'Use the reset link.',
      layer: 'sem',
      similarity: 0.95,
      matchedText: 'how do i reset my password',
      joinedSimilar: true,
    });
    expect(ra.joinedSimilar).toBeUndefined();
    expect(secondCalls).toBe(0);
    expect(first.calls).toBe(1);
    expect(sem.searches).toBe(3); // a's, b's, and b's again after the wait
    expect(cache.stats()).toMatchObject({ hits: 1, misses: 1, loaderCalls: 1, joinedSimilar: { waited: 1, served: 1 } });
    await cache.close();
  });

  it('begin() waits the same way and resolves the hit', async () => {
    const { cache } = setup();
    const first = gated('Use the reset link.');
    const a = cache.getOrLoad<string>(chat('how do i reset my password'), first.loader);
    await tick();
    const b = cache.begin<string>(chat('reset my password'));
    await tick();
    first.release();
    await a;
    const begun = await b;
    expect(begun.kind).toBe('hit');
    expect(begun.kind === 'hit' && begun.result.value).toBe('Use the reset link.');
    expect(begun.kind === 'hit' && begun.result.joinedSimilar).toBe(true);
    await cache.close();
  });

  it('loads its own answer when the awaited load fails, or when nothing servable was stored', async () => {
    const { cache } = setup();
    const first = gated('never');
    const a = cache.getOrLoad<string>(chat('how do i reset my password'), first.loader);
    await tick();
    const b = cache.getOrLoad<string>(chat('reset my password'), async () => 'own answer');
    await tick();
    first.fail(new Error('upstream down'));
    await expect(a).rejects.toThrow('upstream down');
    expect(await b).toMatchObject({ status: 'miss', value: 'own answer' });
    expect(cache.stats().joinedSimilar).toEqual({ waited: 1, served: 0 });

    // A load that does not store (noStore) is not waited for.
    const c = gated('not stored');
    const pc = cache.getOrLoad<string>(chat('how do i reset my password'), c.loader, { noStore: true, forceRefresh: true });
    await tick();
    const d = await cache.getOrLoad<string>(chat('reset my password'), async () => 'own again', { forceRefresh: false });
    expect(d.value).not.toBe('not stored');
    c.release();
    await pc;
    await cache.close();
  });

  it('waits at most joinSimilar.maxWaitMs, then loads', async () => {
    const { cache } = setup({ joinSimilar: { maxWaitMs: 30 } });
    const first = gated('late answer');
    const a = cache.getOrLoad<string>(chat('how do i reset my password'), first.loader);
    await tick();
    const t0 = Date.now();
    const b = await cache.getOrLoad<string>(chat('reset my password'), async () => 'own answer');
    expect(b).toMatchObject({ status: 'miss', value: 'own answer' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(25);
    expect(cache.stats().joinedSimilar).toEqual({ waited: 1, served: 0 });
    first.release();
    await a;
    await cache.close();
  });

  it('does not wait with joinSimilar: false, nor for a load that began before an invalidation', async () => {
    const off = setup({ joinSimilar: false });
    const first = gated('A');
    const a = off.cache.getOrLoad<string>(chat('how do i reset my password'), first.loader);
    await tick();
    expect(await off.cache.getOrLoad<string>(chat('reset my password'), async () => 'own')).toMatchObject({ status: 'miss', value: 'own' });
    first.release();
    await a;
    expect(off.cache.stats().joinedSimilar.waited).toBe(0);
    await off.cache.close();

    const { cache } = setup();
    const f2 = gated('from before the purge');
    const a2 = cache.getOrLoad<string>(chat('how do i reset my password'), f2.loader);
    await tick();
    await cache.clear();
    expect(await cache.getOrLoad<string>(chat('reset my password'), async () => 'fresh')).toMatchObject({ status: 'miss', value: 'fresh' });
    expect(cache.stats().joinedSimilar.waited).toBe(0);
    f2.release();
    await a2;
    await cache.close();
  });

  it("never serves another tenant's answer, even when a layer names another tenant's load", async () => {
    const { cache } = setup();
    const first = gated("acme's answer");
    const a = cache.getOrLoad<string>(chat('how do i reset my password'), first.loader, { scope: { tenant: 'acme' } });
    await tick();
    // This fake layer names misses by text alone (a real one keeps tenants in separate partitions).
    const b = cache.getOrLoad<string>(chat('reset my password'), async () => "globex's answer", { scope: { tenant: 'globex' } });
    await tick();
    first.release();
    await a;
    expect(await b).toMatchObject({ status: 'miss', value: "globex's answer" });
    expect(cache.stats().joinedSimilar).toEqual({ waited: 1, served: 0 });
    await cache.close();
  });

  it('validates the option', () => {
    const layers = [new TestLayer('l1', { remote: false })];
    expect(() => new MultiLayerCache({ layers, joinSimilar: true as never })).toThrow(InvalidOptionError);
    expect(() => new MultiLayerCache({ layers, joinSimilar: { maxWaitMs: 0 } })).toThrow(/joinSimilar\.maxWaitMs/);
    expect(() => new MultiLayerCache({ layers, joinSimilar: { wait: 1 } as never })).toThrow(/unknown joinSimilar option "wait"/);
    expect(() => new MultiLayerCache({ layers, joinSimilar: { maxWaitMs: 500 } })).not.toThrow();
  });
});
