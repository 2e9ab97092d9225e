import { type ProviderServer, SECRET_KEY, collect, memoryCache, plain, startOpenAIServer } from '@strata-cache/provider-test-servers';
import { OpenAI } from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { withCache } from '../src/index.js';

let server: ProviderServer;
beforeAll(async () => {
  // Slow enough that all ten requests are in flight before the first stream ends.
  server = await startOpenAIServer({ latencyMs: 50, intervalMs: 10 });
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => server.reset());

function setup() {
  const { cache } = memoryCache();
  return withCache(new OpenAI({ apiKey: SECRET_KEY, baseURL: server.baseURL, maxRetries: 0 }), { cache });
}

// Waits for core's two-phase read-through: MultiLayerCache.begin(request, options) → a hit, or a
// pending load that is committed or abandoned and whose live chunks identical concurrent callers
// follow. Until @strata-cache/http's streamThrough is switched to it, each of these streams is its
// own upstream call (lookup + store). Switch these on with that change.
describe('identical concurrent streaming misses share one upstream stream', () => {
  it.skip('chat.completions: 10 concurrent identical streams → 1 upstream call, 10 identical complete streams', async () => {
    const client = setup();
    const req = { model: 'gpt-4o-mini', temperature: 0, messages: [{ role: 'user' as const, content: 'ten at once, please' }], stream: true as const };
    const streams = await Promise.all(Array.from({ length: 10 }, async () => plain(await collect(await client.chat.completions.create(req)))));
    expect(server.count('/chat/completions')).toBe(1);
    expect(streams[0]!.at(-1)!.choices[0]!.finish_reason).toBe('stop');
    for (const s of streams) expect(s).toEqual(streams[0]);
  });

  it.skip('responses: 10 concurrent identical streams → 1 upstream call, 10 identical complete streams', async () => {
    const client = setup();
    const req = { model: 'gpt-4o-mini', temperature: 0, input: 'ten at once, please', stream: true as const };
    const streams = await Promise.all(Array.from({ length: 10 }, async () => plain(await collect(await client.responses.create(req)))));
    expect(server.count('/responses')).toBe(1);
    expect(streams[0]!.at(-1)!.type).toBe('response.completed');
    for (const s of streams) expect(s).toEqual(streams[0]);
  });
});
