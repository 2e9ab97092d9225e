import { InvalidOptionError, MultiLayerCache, type SemanticGuard, resolveScope } from '@strata-cache/core';
import { MemoryLayer } from '@strata-cache/layer-memory';
import { gatedLoader as gated } from '@strata-cache/test-utils';
import { describe, expect, it } from 'vitest';
import { RecentMisses } from '../src/in-flight.js';
import { SemanticLayer, type SemanticLayerOptions } from '../src/index.js';
import { TableEmbedder, chat, chatItem, normalise } from './helpers.js';

const RESET = 'how do i reset my password';
const RESET_2 = 'how can i reset my password'; // cos 0.958 with RESET
const DELETE = 'how do i delete my account'; // orthogonal to both
const REFUND_30 = 'can i get a refund within 30 days';
const REFUND_60 = 'can i get a refund within 60 days'; // cos 0.995 with REFUND_30, other number

const numbers: SemanticGuard = {
  name: 'numbers',
  check: ({ query, candidate }) =>
    (query.match(/\d+/g) ?? []).join() === (candidate.match(/\d+/g) ?? []).join() ? { accept: true } : { accept: false, reason: 'numbers differ' },
};

function embedder(): TableEmbedder {
  const emb = new TableEmbedder(4);
  emb.table.set(RESET, normalise(Float32Array.from([1, 0, 0, 0])));
  emb.table.set(RESET_2, normalise(Float32Array.from([1, 0.3, 0, 0])));
  emb.table.set(DELETE, normalise(Float32Array.from([0, 0, 0, 1])));
  emb.table.set(REFUND_30, normalise(Float32Array.from([0, 0, 1, 0])));
  emb.table.set(REFUND_60, normalise(Float32Array.from([0, 0, 1, 0.1])));
  return emb;
}

function layerOf(options: Partial<SemanticLayerOptions> = {}) {
  return new SemanticLayer({ embedder: embedder(), threshold: 0.9, guards: [numbers], ...options });
}

const tick = () => new Promise((r) => setTimeout(r, 10));

describe('recent misses: a lookup names the similar lookups still loading (inFlight)', () => {
  it('names a miss it would be served from, and stops once that answer is stored', async () => {
    const layer = layerOf();
    const seed = chatItem(DELETE); // the partition holds something: lookups there embed their text
    await layer.set(seed.key, seed.entry);
    const first = chatItem(RESET);
    expect(await layer.search({ ...first.query, key: first.key })).not.toHaveProperty('inFlight');
    const second = chatItem(RESET_2);
    const r = await layer.search({ ...second.query, key: second.key });
    expect(r.hit).toBeUndefined();
    expect(r.inFlight).toHaveLength(1);
    expect(r.inFlight![0]!.keyId).toBe(first.key.id);
    expect(r.inFlight![0]!.similarity).toBeCloseTo(0.958, 3);
    // Once the first answer is stored it is a candidate like any other.
    await layer.set(first.key, first.entry);
    const again = await layer.search({ ...second.query, key: second.key });
    expect(again.hit?.key.id).toBe(first.key.id);
    expect(again.inFlight).toBeUndefined();
    await layer.close();
  });

  it('names nothing below the threshold, past a guard, in another tenant, without a key, or when off', async () => {
    const layer = layerOf();
    const acme = resolveScope('acme');
    const globex = resolveScope('globex');
    for (const scope of [acme, globex]) {
      const seed = chatItem(DELETE, { scope });
      await layer.set(seed.key, seed.entry);
    }
    const ask = (text: string, scope = acme) => {
      const it = chatItem(text, { scope });
      return layer.search({ ...it.query, key: it.key });
    };
    await ask(RESET);
    await ask(REFUND_30);
    expect((await ask(REFUND_60)).inFlight).toBeUndefined(); // numbers differ
    expect((await ask(RESET_2, globex)).inFlight).toBeUndefined(); // other tenant
    const keyless = chatItem(RESET_2, { scope: acme }).query;
    expect((await layer.search(keyless)).inFlight).toBeUndefined(); // no key: nothing named nor remembered
    await layer.close();

    const off = layerOf({ inFlight: false });
    const seed = chatItem(DELETE);
    await off.set(seed.key, seed.entry);
    const a = chatItem(RESET);
    const b = chatItem(RESET_2);
    await off.search({ ...a.query, key: a.key });
    expect((await off.search({ ...b.query, key: b.key })).inFlight).toBeUndefined();
    await off.close();
  });

  it('forgets misses older than windowMs, and keeps at most maxMisses', async () => {
    const layer = layerOf({ inFlight: { windowMs: 30, maxMisses: 1 } });
    const seed = chatItem(DELETE);
    await layer.set(seed.key, seed.entry);
    const a = chatItem(RESET);
    const b = chatItem(RESET_2);
    await layer.search({ ...a.query, key: a.key });
    await new Promise((r) => setTimeout(r, 40));
    expect((await layer.search({ ...b.query, key: b.key })).inFlight).toBeUndefined();
    // b is remembered now; a new miss of another question pushes it out (maxMisses 1).
    const c = chatItem(REFUND_30);
    await layer.search({ ...c.query, key: c.key });
    expect((await layer.search({ ...a.query, key: a.key })).inFlight).toBeUndefined();
    await layer.close();
  });

  it('with calibration: names what the calibrator would serve a new entry from — the same question in other framing from the start', async () => {
    const emb = embedder();
    const FRAMED = 'Hi, how do I reset my password?';
    emb.table.set(FRAMED, normalise(Float32Array.from([1, 0.1, 0, 0]))); // cos 0.995 with RESET
    const layer = new SemanticLayer({ embedder: emb, guards: [numbers], calibration: true });
    const seed = chatItem(DELETE);
    await layer.set(seed.key, seed.entry);
    const first = chatItem(RESET);
    await layer.search({ ...first.query, key: first.key });
    expect(layer.stats().calibration?.clearBoundary.lowest).toBeUndefined(); // a new calibrator serves no clear match yet
    const framed = chatItem(FRAMED);
    expect((await layer.search({ ...framed.query, key: framed.key })).inFlight?.map((m) => m.keyId)).toEqual([first.key.id]);
    const reworded = chatItem(RESET_2); // cos 0.958, other words: not until the calibrator serves such matches
    expect((await layer.search({ ...reworded.query, key: reworded.key })).inFlight ?? []).toEqual([]);
    await layer.close();
  });

  it('compares a lookup with the 256 most recent misses of its partition, newest first', () => {
    const misses = new RecentMisses(1_000, 60_000);
    const v = (x: number) => normalise(Float32Array.from([1, x, 0, 0]));
    const now = Date.now();
    misses.remember('p', { keyId: 'oldest', scopeId: 's', text: 'oldest', vector: v(0), at: now });
    for (let i = 0; i < 256; i++) misses.remember('p', { keyId: `k${i}`, scopeId: 's', text: `t${i}`, vector: v(5), at: now });
    const query = { keyId: 'q', scopeId: 's', text: 'q', vector: v(0) };
    expect(misses.match('p', query, (sim) => sim >= 0.99, [], now)).toEqual([]); // the only close one is 257th from the end
    misses.remember('p', { keyId: 'newest', scopeId: 's', text: 'newest', vector: v(0.01), at: now });
    expect(misses.match('p', query, (sim) => sim >= 0.99, [], now).map((m) => m.keyId)).toEqual(['newest']);
    expect(misses.count).toBe(258);
    misses.written('newest');
    expect(misses.count).toBe(257);
  });

  it('validates the option', () => {
    expect(() => layerOf({ inFlight: true as never })).toThrow(InvalidOptionError);
    expect(() => layerOf({ inFlight: { maxMisses: 0 } })).toThrow(/inFlight\.maxMisses/);
    expect(() => layerOf({ inFlight: { windowMs: -1 } })).toThrow(/inFlight\.windowMs/);
    expect(() => layerOf({ inFlight: { nope: 1 } as never })).toThrow(/unknown option "inFlight\.nope"/);
  });
});

describe('MultiLayerCache + SemanticLayer: a paraphrase asked while the first answer loads', () => {
  function stack(options: Partial<SemanticLayerOptions> = {}) {
    const layer = layerOf(options);
    const cache = new MultiLayerCache({ layers: [new MemoryLayer(), { layer, budgetMs: 5_000 }], policy: 'always' });
    return { layer, cache };
  }

  it('waits for it and is served its answer: one upstream call for both', async () => {
    const { cache } = stack();
    await cache.getOrLoad(chat(DELETE), async () => 'Settings → Delete account.');
    const first = gated('Use the reset link.');
    const a = cache.getOrLoad<string>(chat(RESET), first.loader);
    await tick();
    let own = 0;
    const b = cache.getOrLoad<string>(chat(RESET_2), async () => {
      own++;
      return 'second call';
    });
    await tick();
    first.release();
    const [ra, rb] = await Promise.all([a, b]);
    expect(ra).toMatchObject({ status: 'miss', value: 'Use the reset link.' });
    expect(rb).toMatchObject({ status: 'hit', layer: 'semantic', value: 'Use the reset link.', matchedText: RESET });
    expect(own).toBe(0);
    expect(cache.stats().joinedSimilar).toEqual({ waited: 1, served: 1 });
    await cache.close();
  });

  it('a look-alike asked meanwhile does not wait and gets its own answer', async () => {
    const { cache } = stack();
    await cache.getOrLoad(chat(DELETE), async () => 'Settings → Delete account.');
    const first = gated('Yes, within 30 days.');
    const a = cache.getOrLoad<string>(chat(REFUND_30), first.loader);
    await tick();
    const b = await cache.getOrLoad<string>(chat(REFUND_60), async () => 'No: 30 days at most.');
    expect(b).toMatchObject({ status: 'miss', value: 'No: 30 days at most.' });
    expect(cache.stats().joinedSimilar.waited).toBe(0);
    first.release();
    await a;
    await cache.close();
  });
});
