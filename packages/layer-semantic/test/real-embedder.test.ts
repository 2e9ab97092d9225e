import { MultiLayerCache, resolveScope } from '@strata-cache/core';
import { type UseEmbedder, createUseEmbedder } from '@strata-cache/embed-use';
import { runLayerComplianceSuite } from '@strata-cache/layer-test-suite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SemanticLayer } from '../src/index.js';
import { chat } from './helpers.js';

// The real local encoder (USE-lite from the npm package, wasm backend, worker threads).
let embedder: UseEmbedder;
const shared = createUseEmbedder({ workers: 2 });

runLayerComplianceSuite({
  name: 'semantic (real USE-lite embedder)',
  create: async () => new SemanticLayer({ embedder: await shared }),
});

describe('SemanticLayer + USE-lite through MultiLayerCache', () => {
  let layer: SemanticLayer;
  beforeAll(async () => {
    embedder = await shared;
    // The mechanics (partitions, metadata, overrides) on an open setting: a plain threshold, no
    // guards or selector. The strict default setting is measured in default-setting.test.ts.
    layer = new SemanticLayer({ embedder, threshold: 0.8, guards: [], selector: false });
  });
  afterAll(async () => {
    await layer?.close();
    await embedder?.close();
  });

  it('answers a paraphrase from the cache, with similarity, matched text and age', async () => {
    const scope = resolveScope({ tenant: 'real', namespace: 'paraphrase' });
    const cache = new MultiLayerCache({ layers: [{ layer, budgetMs: 5_000 }], policy: 'always', scope });
    let calls = 0;
    const load = async () => `answer ${++calls}`;
    const first = await cache.getOrLoad(chat('How do I reset my password?'), load);
    await cache.flush();
    expect(first.status).toBe('miss');
    const second = await cache.getOrLoad(chat('I forgot my password, how can I change it?'), load);
    expect(second.status).toBe('hit');
    expect(second.value).toBe('answer 1');
    expect(second.similarity).toBeGreaterThan(0.85);
    expect(second.similarity).toBeLessThan(0.99);
    expect(second.matchedText).toBe('How do I reset my password?');
    expect(second.ageMs).toBeGreaterThanOrEqual(0);
    const unrelated = await cache.getOrLoad(chat('What is the capital of France?'), load);
    expect(unrelated.status).toBe('miss');
    expect(calls).toBe(2);
  });

  it('never serves a question in a script the model never learned to another one (exact key only)', async () => {
    const scope = resolveScope({ tenant: 'real', namespace: 'script' });
    const cache = new MultiLayerCache({ layers: [{ layer, budgetMs: 5_000 }], policy: 'always', scope });
    let calls = 0;
    const load = async () => `answer ${++calls}`;
    const house = 'Какая примерно масса будет у деревянного домика?';
    const sets = 'Сколькими способами можно разбить набор из 12 объектов на две части?';
    // What an open threshold would do without the check: the two vectors are nearly the same.
    const [u, v] = await embedder.embed([house, sets]);
    expect(u!.reduce((s, x, i) => s + x * v![i]!, 0)).toBeGreaterThan(0.9);
    const before = layer.stats().unrepresentable;
    expect((await cache.getOrLoad(chat(house), load)).status).toBe('miss');
    await cache.flush();
    expect((await cache.getOrLoad(chat(sets), load)).status).toBe('miss');
    await cache.flush();
    expect((await cache.getOrLoad(chat(house), load)).status).toBe('hit');
    expect(calls).toBe(2);
    expect(layer.stats().unrepresentable).toBeGreaterThan(before);
  });

  it('never matches across a different system prompt, even for the same question', async () => {
    const scope = resolveScope({ tenant: 'real', namespace: 'partition' });
    const cache = new MultiLayerCache({ layers: [{ layer, budgetMs: 5_000 }], policy: 'always', scope });
    let calls = 0;
    await cache.getOrLoad(chat('Summarise our refund policy.', 'You are a support bot.'), async () => `a${++calls}`);
    await cache.flush();
    const other = await cache.getOrLoad(chat('Summarise our refund policy.', 'You are a pirate.'), async () => `a${++calls}`);
    expect(other.status).toBe('miss');
    const same = await cache.getOrLoad(chat('Please summarise the refund policy.', 'You are a support bot.'), async () => `a${++calls}`);
    expect(same.status).toBe('hit');
  });

  it('honours a per-request threshold override (semantic: { threshold })', async () => {
    const scope = resolveScope({ tenant: 'real', namespace: 'threshold' });
    const cache = new MultiLayerCache({ layers: [{ layer, budgetMs: 5_000 }], policy: 'always', scope });
    await cache.getOrLoad(chat('How do I reset my password?'), async () => 'x');
    await cache.flush();
    const strict = await cache.getOrLoad(chat('I forgot my password, how can I change it?'), async () => 'y', { semantic: { threshold: 0.99 } });
    expect(strict.status).toBe('miss');
  });
});
