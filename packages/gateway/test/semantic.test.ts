// L3 from the config: the semantic layer with the local embedder, loaded only when configured.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Harness, KEYS, chat, harness, json } from './helpers.js';

let h: Harness;
beforeAll(async () => {
  // The answer-group rule is off with an explicit threshold unless asked for: asked for here, with its own numbers.
  h = await harness({ cache: { l3: { embedder: 'use', threshold: 0.8, workers: 1, answerGroups: { floor: 0.85, maxMaps: 4 } } } });
}, 120_000);
afterAll(() => h?.close());

it('a paraphrase is answered by the semantic layer, with its similarity; other tenants and the opt-out miss', async () => {
  const first = await h.post('/v1/chat/completions', chat('How do I reset my password?'));
  expect(first.headers.get('x-strata-cache')).toBe('miss');
  const answer = await first.text();
  await h.gw.cache.flush();
  const para = await h.post('/v1/chat/completions', chat('How can I reset my password?'));
  expect(para.headers.get('x-strata-cache')).toBe('semantic');
  expect(para.headers.get('x-strata-layer')).toBe('l3');
  expect(Number(para.headers.get('x-strata-similarity'))).toBeGreaterThan(0.8);
  expect(await para.text()).toBe(answer);
  expect((await h.post('/v1/chat/completions', chat('How can I reset my password?'), KEYS.globex)).headers.get('x-strata-cache')).toBe('miss');
  expect(
    (await h.post('/v1/chat/completions', chat('How do I reset my password, please?'), KEYS.acme, { 'x-strata-semantic': 'off' })).headers.get(
      'x-strata-cache',
    ),
  ).toBe('miss');
  const stats = await json(h.admin('GET', '/admin/stats'));
  expect(stats.layers.l3.entries).toBeGreaterThanOrEqual(1);
  // The rule configured from cache.l3.answerGroups is on (its counters are reported).
  expect(stats.layers.l3.answerGroups).toMatchObject({ maps: expect.any(Number), builds: expect.any(Number), hits: expect.any(Number) });
}, 60_000);
