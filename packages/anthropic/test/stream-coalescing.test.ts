import { type ProviderServer, SECRET_KEY, collect, memoryCache, plain, startAnthropicServer } from '@strata-cache/provider-test-servers';
import { Anthropic } from '@anthropic-ai/sdk';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { withCache } from '../src/index.js';

let server: ProviderServer;
beforeAll(async () => {
  // Slow enough that all ten requests are in flight before the first stream ends.
  server = await startAnthropicServer({ latencyMs: 50, intervalMs: 10 });
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => server.reset());

// Waits for core's two-phase read-through: MultiLayerCache.begin(request, options) → a hit, or a
// pending load that is committed or abandoned and whose live chunks identical concurrent callers
// follow. Until @strata-cache/http's streamThrough is switched to it, each of these streams is its
// own upstream call (lookup + store). Switch this on with that change.
describe('identical concurrent streaming misses share one upstream stream', () => {
  it.skip('messages: 10 concurrent identical streams → 1 upstream call, 10 identical complete streams', async () => {
    const { cache } = memoryCache();
    const client = withCache(new Anthropic({ apiKey: SECRET_KEY, baseURL: server.baseURL, maxRetries: 0 }), { cache });
    const req = { model: 'claude-sonnet-4-5', max_tokens: 256, temperature: 0, messages: [{ role: 'user' as const, content: 'ten at once, please' }], stream: true as const };
    const streams = await Promise.all(Array.from({ length: 10 }, async () => plain(await collect(await client.messages.create(req)))));
    expect(server.count('/messages')).toBe(1);
    expect(streams[0]!.at(-1)!.type).toBe('message_stop');
    for (const s of streams) expect(s).toEqual(streams[0]);
  });
});
