// Semantic hits on the last human turn, through ChatOpenAI, the real local embedder (USE-lite
// via @strata-cache/embed-use) and the HNSW-backed semantic layer.
import { HumanMessage, SystemMessage } from '@langchain/core/messages';
import { ChatOpenAI } from '@langchain/openai';
import { MultiLayerCache } from '@strata-cache/core';
import { type UseEmbedder, createUseEmbedder } from '@strata-cache/embed-use';
import { MemoryLayer } from '@strata-cache/layer-memory';
import { SemanticLayer } from '@strata-cache/layer-semantic';
import { type ProviderServer, startOpenAIServer } from '@strata-cache/provider-test-servers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StrataLangChainCache } from '../src/index.js';

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

describe('semantic matching through the layer stack', () => {
  it('a paraphrase hits; another system prompt, tenant, model or question does not', async () => {
    const cache = new MultiLayerCache({
      layers: [new MemoryLayer({ name: 'l1' }), { layer: new SemanticLayer({ embedder, threshold: 0.8 }), budgetMs: 10_000 }],
    });
    const model = (tenant: string, model = 'gpt-4o-mini') =>
      new ChatOpenAI({
        model,
        temperature: 0,
        apiKey: 'sk-test',
        maxRetries: 0,
        configuration: { baseURL: server.baseURL },
        cache: new StrataLangChainCache({ cache, scope: tenant }),
      });
    const ask = (m: ChatOpenAI, system: string, question: string) => m.invoke([new SystemMessage(system), new HumanMessage(question)]);
    const hits: Array<{ layer: string; similarity?: number }> = [];
    cache.on('hit', (h) => hits.push(h));

    const live = await ask(model('acme'), 'You are a support bot.', 'How do I reset my password?');
    await cache.flush();
    const para = await ask(model('acme'), 'You are a support bot.', 'How can I reset my password?');
    expect(server.count()).toBe(1);
    expect(para.content).toBe(live.content);
    expect(hits[0]).toMatchObject({ layer: 'semantic' });
    expect(hits[0]!.similarity).toBeGreaterThan(0.8);
    expect(hits[0]!.similarity).toBeLessThan(1);

    await ask(model('acme'), 'You are a pirate.', 'How can I reset my password?');
    await ask(model('globex'), 'You are a support bot.', 'How can I reset my password?');
    await ask(model('acme', 'gpt-4.1-mini'), 'You are a support bot.', 'How can I reset my password?');
    await ask(model('acme'), 'You are a support bot.', 'What are your opening hours on Sunday?');
    expect(server.count()).toBe(5);
    await cache.close();
  }, 60_000);
});
