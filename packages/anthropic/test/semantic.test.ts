// Semantic hits through the adapter, with the real local embedder (USE-lite via
// @strata-cache/embed-use) and the real HNSW-backed semantic layer.
import { MultiLayerCache } from '@strata-cache/core';
import { type UseEmbedder, createUseEmbedder } from '@strata-cache/embed-use';
import { MemoryLayer } from '@strata-cache/layer-memory';
import { SemanticLayer } from '@strata-cache/layer-semantic';
import { type ProviderServer, collect, plain, startAnthropicServer } from '@strata-cache/provider-test-servers';
import { Anthropic } from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getCacheInfo, withCache } from '../src/index.js';

let server: ProviderServer;
let embedder: UseEmbedder;
beforeAll(async () => {
  server = await startAnthropicServer();
  embedder = await createUseEmbedder({ workers: 1 });
}, 120_000);
afterAll(async () => {
  await embedder?.close();
  await server?.close();
});

const msg = (content: string, system: unknown = 'You are a support bot.') => ({
  model: 'claude-sonnet-4-20250514',
  max_tokens: 256,
  temperature: 0,
  system: system as string,
  messages: [{ role: 'user' as const, content }],
});

describe('semantic hits through the Anthropic adapter (real local embedder)', () => {
  it('a paraphrase is served from the semantic layer (JSON and stream); other contexts are not', async () => {
    const semantic = new SemanticLayer({ embedder, threshold: 0.8 });
    const cache = new MultiLayerCache({
      layers: [new MemoryLayer({ name: 'l1' }), { layer: semantic, budgetMs: 10_000 }],
      policy: 'always',
    });
    const client = withCache(new Anthropic({ apiKey: 'sk-ant-test', baseURL: server.baseURL, maxRetries: 0 }), { cache, scope: 'acme' });
    const liveStream = await collect(await client.messages.create({ ...msg('How do I reset my password?'), stream: true }));
    await cache.flush();
    // The completed stream was also stored in its non-stream form.
    const live = await client.messages.create(msg('How do I reset my password?'));
    expect(getCacheInfo(live)).toMatchObject({ hit: true, layer: 'l1' });
    expect(server.count()).toBe(1);
    // The two forms share semantic entries: the question is indexed once (the twin is for exact lookups).
    expect(semantic.stats().indexed).toBe(1);
    server.reset();
    const para = await client.messages.create(msg('How can I reset my password?'));
    expect(plain(para)).toEqual(plain(live));
    expect(getCacheInfo(para)).toMatchObject({ hit: true, layer: 'semantic', similarity: expect.any(Number) });
    const s = client.messages.stream(msg('How can I reset my password?'));
    const events: unknown[] = [];
    s.on('streamEvent', (e) => events.push(plain(e))); // copied: the SDK mutates message_start into its snapshot
    await s.finalMessage();
    expect(events).toEqual(liveStream);
    expect(server.count()).toBe(0);
    await client.messages.create(msg('How can I reset my password?', [{ type: 'text', text: 'You are a support bot.' }]));
    await client.messages.create(msg('Do you ship to Canada?'));
    expect(server.count()).toBe(2);
    await cache.close();
  }, 60_000);

  it("a stored non-stream answer is streamed to a paraphrase asked with stream: true, as the SDK's own events", async () => {
    const cache = new MultiLayerCache({
      layers: [new MemoryLayer({ name: 'l1' }), { layer: new SemanticLayer({ embedder, threshold: 0.8 }), budgetMs: 10_000 }],
      policy: 'always',
    });
    const client = withCache(new Anthropic({ apiKey: 'sk-ant-test', baseURL: server.baseURL, maxRetries: 0 }), { cache, scope: 'acme' });
    const live = await client.messages.create(msg('How do I reset my password?'));
    await cache.flush();
    server.reset();
    const s = client.messages.stream(msg('How can I reset my password?'));
    const texts: string[] = [];
    s.on('text', (t) => texts.push(t));
    const final = await s.finalMessage();
    expect(server.count()).toBe(0);
    expect(getCacheInfo(await s.withResponse().then((r) => r.response))).toMatchObject({ hit: true, layer: 'semantic' });
    // The SDK's stream adds `parsed_output` to the message it assembles.
    const { parsed_output: _, ...assembled } = plain(final) as unknown as Record<string, unknown>;
    expect(assembled).toEqual(plain(live));
    expect(texts.join('')).toBe((live.content[0] as { text: string }).text);
    await cache.close();
  }, 60_000);
});
