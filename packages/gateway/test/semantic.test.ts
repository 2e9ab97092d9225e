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

it('a paraphrase asked as a stream is answered from a stored JSON answer, as the API streams it (and the other way round)', async () => {
  const answer = await json(h.post('/v1/chat/completions', chat('How do I cancel my subscription?')));
  await h.gw.cache.flush();
  h.openai.reset();
  const stream = await h.post('/v1/chat/completions', chat('How can I cancel my subscription?', { stream: true, stream_options: { include_usage: true } }));
  expect(stream.headers.get('x-strata-cache')).toBe('semantic');
  expect(stream.headers.get('content-type')).toContain('text/event-stream');
  const events = (await stream.text())
    .split('\n\n')
    .filter((e) => e.startsWith('data: '))
    .map((e) => e.slice(6));
  expect(events.at(-1)).toBe('[DONE]');
  const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
  expect(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('')).toBe(answer.choices[0].message.content);
  expect(chunks.at(-1).usage).toEqual(answer.usage);
  expect(h.openai.count()).toBe(0);
  // A streamed answer (with its usage chunk) serves a non-stream paraphrase.
  await (await h.post('/v1/chat/completions', chat('Do you have a mobile app?', { stream: true, stream_options: { include_usage: true } }))).text();
  await h.gw.cache.flush();
  const para = await h.post('/v1/chat/completions', chat('Is there a mobile app?'));
  expect(para.headers.get('x-strata-cache')).toBe('semantic');
  expect(((await para.json()) as any).choices[0].message.content).toContain('mobile app');
  expect(h.openai.count()).toBe(1);
}, 60_000);
