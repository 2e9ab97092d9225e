// Semantic hits through the adapter, with the real local embedder (USE-lite via
// @strata-cache/embed-use) and the real HNSW-backed semantic layer.
import { MultiLayerCache } from '@strata-cache/core';
import { type UseEmbedder, createUseEmbedder } from '@strata-cache/embed-use';
import { MemoryLayer } from '@strata-cache/layer-memory';
import { SemanticLayer } from '@strata-cache/layer-semantic';
import { type ProviderServer, collect, plain, startOpenAIServer } from '@strata-cache/provider-test-servers';
import { OpenAI } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OpenAIEmbedder, getCacheInfo, withCache } from '../src/index.js';

let server: ProviderServer;
let embedder: UseEmbedder;
beforeAll(async () => {
  server = await startOpenAIServer();
  embedder = await createUseEmbedder({ workers: 1 });
}, 120_000);
afterAll(async () => {
  await embedder?.close();
  await server?.close();
});

function setup() {
  const cache = new MultiLayerCache({
    layers: [new MemoryLayer({ name: 'l1' }), { layer: new SemanticLayer({ embedder, threshold: 0.8 }), budgetMs: 10_000 }],
    policy: 'always',
  });
  const bare = new OpenAI({ apiKey: 'sk-test', baseURL: server.baseURL, maxRetries: 0 });
  return { cache, bare, client: withCache(bare, { cache, scope: 'acme' }) };
}

const chat = (content: string, system = 'You are a support bot.') => ({
  model: 'gpt-4o-mini',
  temperature: 0,
  messages: [
    { role: 'system' as const, content: system },
    { role: 'user' as const, content },
  ],
});

describe('semantic hits through the OpenAI adapter (real local embedder)', () => {
  it('a paraphrase is served from the semantic layer; other contexts and tenants are not', async () => {
    const { cache, client, bare } = setup();
    const live = await client.chat.completions.create(chat('How do I reset my password?'));
    await cache.flush();
    server.reset();
    const para = await client.chat.completions.create(chat('How can I reset my password?'));
    expect(server.count()).toBe(0);
    expect(plain(para)).toEqual(plain(live));
    const info = getCacheInfo(para)!;
    expect(info).toMatchObject({ hit: true, layer: 'semantic' });
    expect(info.similarity).toBeGreaterThan(0.8);
    expect(info.similarity).toBeLessThan(1);

    // Unrelated question, another system prompt, another tenant: all go upstream.
    await client.chat.completions.create(chat('What are your opening hours on Sunday?'));
    await client.chat.completions.create(chat('How can I reset my password?', 'You are a pirate.'));
    await withCache(bare, { cache, scope: 'globex' }).chat.completions.create(chat('How can I reset my password?'));
    expect(server.count()).toBe(3);
    await cache.close();
  }, 60_000);

  it('streams match streams semantically and replay chunk for chunk', async () => {
    const { cache, client } = setup();
    const live = await collect(await client.chat.completions.create({ ...chat('How do I reset my password?'), stream: true }));
    await cache.flush();
    server.reset();
    const { data, response } = await client.chat.completions.create({ ...chat('How can I reset my password?'), stream: true }).withResponse();
    const replay = await collect(data);
    expect(server.count()).toBe(0);
    expect(replay).toEqual(live);
    expect(getCacheInfo(response)).toMatchObject({ hit: true, layer: 'semantic' });
    // A non-stream request is never answered from a stream entry.
    await client.chat.completions.create(chat('How can I reset my password?'));
    expect(server.count()).toBe(1);
    await cache.close();
  }, 60_000);

  it('with a usage chunk, stream and non-stream requests answer each other (a stored answer streamed, a stream served whole)', async () => {
    const { cache, client } = setup();
    const text = (chunks: any[]) => chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
    const withUsage = { stream: true as const, stream_options: { include_usage: true } };
    const live = await client.chat.completions.create(chat('How do I reset my password?'));
    await cache.flush();
    server.reset();
    const { data, response } = await client.chat.completions.create({ ...chat('How can I reset my password?'), ...withUsage }).withResponse();
    const chunks: any[] = await collect(data);
    expect(server.count()).toBe(0);
    expect(getCacheInfo(response)).toMatchObject({ hit: true, layer: 'semantic' });
    expect(text(chunks)).toBe(live.choices[0]!.message.content);
    expect(chunks.find((c) => c.choices[0]?.finish_reason)?.choices[0].finish_reason).toBe(live.choices[0]!.finish_reason);
    expect(chunks.at(-1).usage).toEqual(live.usage);
    expect(chunks.at(-1).id).toBe(live.id);
    // Without a usage chunk a stream is its own form (its assembled answer is not the body): a miss.
    await collect(await client.chat.completions.create({ ...chat('How can I reset my password?'), stream: true }));
    expect(server.count()).toBe(1);

    // The other way round, in another context: a stream stored, a non-stream paraphrase served from it.
    const other = 'You answer questions about accounts.';
    const streamed: any[] = await collect(await client.chat.completions.create({ ...chat('How do I reset my password?', other), ...withUsage }));
    await cache.flush();
    server.reset();
    const para = await client.chat.completions.create(chat('How can I reset my password?', other));
    expect(getCacheInfo(para)).toMatchObject({ hit: true, layer: 'semantic' });
    expect(para.choices[0]!.message.content).toBe(text(streamed));
    expect(para.usage).toEqual(streamed.at(-1).usage);
    // And the identical non-stream request from the stream's exact twin.
    const same = await client.chat.completions.create(chat('How do I reset my password?', other));
    expect(getCacheInfo(same)).toMatchObject({ hit: true, layer: 'l1' });
    expect(server.count()).toBe(0);
    await cache.close();
  }, 60_000);

  it('Responses API: a stored response is streamed to a paraphrase asked with stream: true, and the SDK stream helper assembles it', async () => {
    const { cache, client } = setup();
    const ask = (input: string) => ({ model: 'gpt-4o-mini', temperature: 0, instructions: 'You are a support bot.', input });
    const live = await client.responses.create(ask('How do I reset my password?'));
    await cache.flush();
    server.reset();
    const { data, response } = await client.responses.create({ ...ask('How can I reset my password?'), stream: true }).withResponse();
    const events: any[] = await collect(data);
    expect(server.count()).toBe(0);
    expect(getCacheInfo(response)).toMatchObject({ hit: true, layer: 'semantic' });
    // The wire response without what only non-stream bodies carry (`billing`) and what the SDK adds (`output_text`).
    const { billing: _, output_text: __, ...streamed } = plain(live) as unknown as Record<string, unknown>;
    expect(events.at(-1)).toMatchObject({ type: 'response.completed', response: streamed });
    const helper = client.responses.stream(ask('How can I reset my password?'));
    const deltas: string[] = [];
    helper.on('response.output_text.delta', (e) => deltas.push(e.delta));
    const final = await helper.finalResponse();
    const message = final.output[0];
    expect(message?.type === 'message' && message.content[0]?.type === 'output_text' ? message.content[0].text : undefined).toBe(live.output_text);
    expect(deltas.join('')).toBe(live.output_text);
    expect(server.count()).toBe(0);
    await cache.close();
  }, 60_000);

  it('OpenAIEmbedder drives the semantic layer (embeddings from the OpenAI-compatible server)', async () => {
    const openaiEmbedder = new OpenAIEmbedder({ clientOptions: { apiKey: 'sk-test', baseURL: server.baseURL }, dimensions: 256 });
    const cache = new MultiLayerCache({
      layers: [new MemoryLayer({ name: 'l1' }), { layer: new SemanticLayer({ embedder: openaiEmbedder, threshold: 0.8 }), budgetMs: 10_000 }],
      policy: 'always',
    });
    const client = withCache(new OpenAI({ apiKey: 'sk-test', baseURL: server.baseURL, maxRetries: 0 }), { cache });
    const live = await client.chat.completions.create(chat('reset my account password now please'));
    await cache.flush();
    server.reset();
    // The test server's embeddings are bag-of-words: the same words in another order are a near match.
    const hit = await client.chat.completions.create(chat('please reset my account password now'));
    expect(server.count('/chat/completions')).toBe(0);
    expect(server.count('/embeddings')).toBeGreaterThan(0);
    expect(plain(hit)).toEqual(plain(live));
    expect(getCacheInfo(hit)).toMatchObject({ hit: true, layer: 'semantic' });
    await cache.close();
  }, 60_000);
});
