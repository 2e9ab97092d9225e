// Semantic hits on the last user message, through the real AI SDK, the real local embedder
// (USE-lite via @strata-cache/embed-use) and the HNSW-backed semantic layer.
import { createOpenAI } from '@ai-sdk/openai';
import { MultiLayerCache } from '@strata-cache/core';
import { type UseEmbedder, createUseEmbedder } from '@strata-cache/embed-use';
import { MemoryLayer } from '@strata-cache/layer-memory';
import { SemanticLayer } from '@strata-cache/layer-semantic';
import { type ProviderServer, startOpenAIServer } from '@strata-cache/provider-test-servers';
import { generateText, streamText, wrapLanguageModel } from 'ai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getCacheInfo, strataCache } from '../src/index.js';

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
  });
  const openai = createOpenAI({ apiKey: 'sk-test', baseURL: server.baseURL });
  const model = (tenant: string, semantic: boolean = true) =>
    wrapLanguageModel({ model: openai.chat('gpt-4o-mini'), middleware: strataCache({ cache, scope: tenant, semantic }) });
  return { cache, model };
}

describe('semantic matching on the last user message', () => {
  it('a paraphrase hits; another system prompt, another tenant or another question does not', async () => {
    const { cache, model } = setup();
    server.reset();
    const live = await generateText({ model: model('acme'), system: 'You are a support bot.', prompt: 'How do I reset my password?', temperature: 0 });
    await cache.flush();
    const para = await generateText({ model: model('acme'), system: 'You are a support bot.', prompt: 'How can I reset my password?', temperature: 0 });
    expect(server.count()).toBe(1);
    expect(para.text).toBe(live.text);
    const info = getCacheInfo(para)!;
    expect(info).toMatchObject({ hit: true, layer: 'semantic' });
    expect(info.similarity).toBeGreaterThan(0.8);
    expect(info.similarity).toBeLessThan(1);

    await generateText({ model: model('acme'), system: 'You are a pirate.', prompt: 'How can I reset my password?', temperature: 0 });
    await generateText({ model: model('globex'), system: 'You are a support bot.', prompt: 'How can I reset my password?', temperature: 0 });
    await generateText({ model: model('acme'), system: 'You are a support bot.', prompt: 'What are your opening hours on Sunday?', temperature: 0 });
    // semantic: false → exact keys only
    await generateText({ model: model('acme', false), system: 'You are a support bot.', prompt: 'How can I reset my password?', temperature: 0 });
    expect(server.count()).toBe(5);
    await cache.close();
  }, 60_000);

  it('streams match streams semantically and replay the recorded parts', async () => {
    const { cache, model } = setup();
    server.reset();
    const a = streamText({ model: model('acme'), prompt: 'How do I change my email address?', temperature: 0 });
    const live = await a.text;
    await cache.flush();
    const b = streamText({ model: model('acme'), prompt: 'How can I change my email address?', temperature: 0 });
    expect(await b.text).toBe(live);
    expect(server.count()).toBe(1);
    expect(getCacheInfo(await b.providerMetadata)).toMatchObject({ layer: 'semantic' });
    await cache.close();
  }, 60_000);
});
