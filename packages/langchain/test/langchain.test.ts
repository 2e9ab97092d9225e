// The cache through real LangChain chat models (`ChatOpenAI`, `ChatAnthropic`) against local
// servers speaking the OpenAI and Anthropic wire formats.
import { ChatAnthropic } from '@langchain/anthropic';
import { type AIMessage, HumanMessage, SystemMessage } from '@langchain/core/messages';
import { FakeLLM } from '@langchain/core/utils/testing';
import { ChatOpenAI } from '@langchain/openai';
import { MultiLayerCache, type MultiLayerCacheOptions, StrataError } from '@strata-cache/core';
import { MemoryLayer } from '@strata-cache/layer-memory';
import { RedisLayer } from '@strata-cache/layer-redis';
import { type ProviderServer, json, openAIError, startAnthropicServer, startOpenAIServer } from '@strata-cache/provider-test-servers';
import { redisUrlForTests, uniqueKeyPrefix } from '@strata-cache/test-utils';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { StrataLangChainCache, type StrataLangChainCacheOptions } from '../src/index.js';
import { anyFrozen } from './helpers.js';

let oa: ProviderServer;
let an: ProviderServer;
beforeAll(async () => {
  oa = await startOpenAIServer();
  an = await startAnthropicServer();
});
afterAll(async () => {
  await oa?.close();
  await an?.close();
});
beforeEach(() => {
  oa.reset();
  an.reset();
});

function setup(opts: Partial<StrataLangChainCacheOptions> = {}, cacheOpts: Partial<MultiLayerCacheOptions> = {}) {
  const cache = new MultiLayerCache({ layers: [new MemoryLayer()], ...cacheOpts });
  const lc = new StrataLangChainCache({ cache, ...opts });
  const openai = (extra: Record<string, unknown> = {}, server = oa) =>
    new ChatOpenAI({
      model: 'gpt-4o-mini',
      temperature: 0,
      apiKey: 'sk-test-secret-key',
      maxRetries: 0,
      configuration: { baseURL: server.baseURL },
      cache: lc,
      ...extra,
    });
  const anthropic = (extra: Record<string, unknown> = {}) =>
    new ChatAnthropic({
      model: 'claude-sonnet-4-5',
      temperature: 0,
      apiKey: 'sk-ant-secret-key',
      maxRetries: 0,
      anthropicApiUrl: an.origin,
      cache: lc,
      ...extra,
    });
  return { cache, lc, openai, anthropic };
}

describe('StrataLangChainCache with ChatOpenAI and ChatAnthropic', () => {
  it('ChatOpenAI: a second identical call makes no upstream call and returns the same message', async () => {
    const { cache, openai } = setup();
    const model = openai();
    const messages = [new SystemMessage('You are a support bot.'), new HumanMessage('How do I reset my password?')];
    const a = await model.invoke(messages);
    await cache.flush();
    const b = await model.invoke(messages);
    expect(oa.count('/chat/completions')).toBe(1);
    expect(b.content).toBe(a.content);
    expect(b.content).toBe('Echo: How do I reset my password?');
    expect(b.id).toBe(a.id);
    expect(b.response_metadata).toEqual(a.response_metadata);
    expect(cache.stats()).toMatchObject({ hits: 1, misses: 1 });
    expect(cache.stats().tokensSaved.input).toBeGreaterThan(0);
    await cache.close();
  });

  it('ChatAnthropic: a second identical call makes no upstream call and returns the same message', async () => {
    const { cache, anthropic } = setup();
    const model = anthropic();
    const a = await model.invoke('What is the capital of France?');
    await cache.flush();
    const b = await model.invoke('What is the capital of France?');
    expect(an.count('/messages')).toBe(1);
    expect(b.content).toEqual(a.content);
    expect(b.response_metadata['id']).toBe(a.response_metadata['id']);
    // Another model setting is another key.
    await anthropic({ maxTokens: 100 }).invoke('What is the capital of France?');
    expect(an.count('/messages')).toBe(2);
    await cache.close();
  });

  it('hits are fresh mutable objects, although the memory layer stores frozen entries', async () => {
    const { cache, lc, openai } = setup();
    const model = openai();
    await model.invoke('Mutate me');
    await cache.flush();
    const prompt = 'Human: Mutate me';
    const llm = (model as unknown as { _getSerializedCacheKeyParametersForCall(o: object): string })._getSerializedCacheKeyParametersForCall({});
    const g1 = (await lc.lookup(prompt, llm))!;
    expect(g1).toHaveLength(1);
    expect(anyFrozen(g1)).toBe(false);
    (g1[0] as { text: string }).text = 'changed';
    (g1[0] as unknown as { message: AIMessage }).message.response_metadata['model_name'] = 'changed';
    const g2 = (await lc.lookup(prompt, llm))!;
    expect(g2[0]!.text).toBe('Echo: Mutate me');
    expect((g2[0] as unknown as { message: AIMessage }).message.response_metadata['model_name']).toBe('gpt-4o-mini');
    // LangChain itself writes usage_metadata and generationInfo into hits: repeated hits work.
    for (let i = 0; i < 3; i++) expect((await model.invoke('Mutate me')).content).toBe('Echo: Mutate me');
    expect(oa.count()).toBe(1);
    await cache.close();
  });

  it('tool calls come back from the cache as tool calls', async () => {
    const { cache, openai } = setup();
    const model = openai().bindTools([
      {
        type: 'function',
        function: {
          name: 'weather',
          description: 'Weather',
          parameters: { type: 'object', properties: { query: { type: 'string' }, unit: { type: 'string' } } },
        },
      },
    ]);
    const a = await model.invoke('Weather in Rome?');
    await cache.flush();
    const b = await model.invoke('Weather in Rome?');
    expect(oa.count()).toBe(1);
    expect(a.tool_calls?.[0]).toMatchObject({ name: 'weather', args: { query: 'Weather in Rome?', unit: 'celsius' } });
    expect(b.tool_calls).toEqual(a.tool_calls);
    // Without tools it is another request.
    await openai().invoke('Weather in Rome?');
    expect(oa.count()).toBe(2);
    await cache.close();
  });

  it('concurrent identical calls make one upstream call', async () => {
    const slow = await startOpenAIServer({ latencyMs: 150 });
    try {
      const { cache, openai } = setup();
      const model = openai({}, slow);
      const results = await Promise.all(Array.from({ length: 5 }, () => model.invoke('Same question')));
      expect(slow.count()).toBe(1);
      expect(new Set(results.map((r) => r.content))).toEqual(new Set(['Echo: Same question']));
      expect(cache.stats().coalesced).toBe(4);
      results[0]!.response_metadata['x'] = 1;
      expect(results[1]!.response_metadata['x']).toBeUndefined();
      await cache.close();
    } finally {
      await slow.close();
    }
  });

  it('the same prompt twice in one batch does not wait for itself', async () => {
    const { cache, openai } = setup({ coalesce: { waitMs: 5_000 } });
    const model = openai();
    const started = Date.now();
    const out = await model.generate([[new HumanMessage('Batch twin')], [new HumanMessage('Batch twin')]]);
    expect(Date.now() - started).toBeLessThan(4_000); // not the 5 s wait: the two lookups did not wait on each other
    expect(out.generations.map((g) => g[0]!.text)).toEqual(['Echo: Batch twin', 'Echo: Batch twin']);
    await cache.flush();
    await model.invoke('Batch twin');
    expect(oa.count()).toBe(2);
    await cache.close();
  });

  it('when the first call fails, waiting callers call the model themselves after waitMs', async () => {
    const slow = await startOpenAIServer({ latencyMs: 100 });
    try {
      const { cache, openai } = setup({ coalesce: { waitMs: 400 } });
      const model = openai({}, slow);
      slow.enqueue(json(openAIError('boom'), { status: 500, delayMs: 100 }));
      const first = model.invoke('Fragile').then(
        () => 'answered',
        (error: Error) => error.message,
      );
      await new Promise((r) => setTimeout(r, 20));
      const second = model.invoke('Fragile');
      expect(await first).toMatch(/boom/);
      expect((await second).content).toBe('Echo: Fragile');
      expect(slow.count()).toBe(2);
      await cache.flush();
      await model.invoke('Fragile');
      expect(slow.count()).toBe(2);
      await cache.close();
    } finally {
      await slow.close();
    }
  });

  it('coalesce: false — every concurrent miss calls the model, answers still stored', async () => {
    const slow = await startOpenAIServer({ latencyMs: 100 });
    try {
      const { cache, openai } = setup({ coalesce: false });
      const model = openai({}, slow);
      await Promise.all([model.invoke('No wait'), model.invoke('No wait')]);
      expect(slow.count()).toBe(2);
      await cache.flush();
      await model.invoke('No wait');
      expect(slow.count()).toBe(2);
      await cache.close();
    } finally {
      await slow.close();
    }
  });

  it('prompts with images are never cached (LangChain renders every image as "[image]")', async () => {
    const { cache, openai } = setup();
    const model = openai();
    const withImage = (url: string) => [
      new HumanMessage({
        content: [
          { type: 'text', text: 'What is in this picture?' },
          { type: 'image_url', image_url: { url } },
        ],
      }),
    ];
    await model.invoke(withImage('https://example.test/cat.png'));
    await cache.flush();
    await model.invoke(withImage('https://example.test/dog.png'));
    expect(oa.count()).toBe(2);
    expect(cache.stats().requests).toBe(0);
    await cache.close();
  });

  it('text LLMs (BaseLLM) are cached too, generations without messages', async () => {
    class CountingLLM extends FakeLLM {
      calls = 0;
      override async _call(prompt: string, options: this['ParsedCallOptions']): Promise<string> {
        this.calls++;
        return super._call(prompt, options);
      }
    }
    const { cache, lc } = setup({}, { policy: 'always' });
    const llm = new CountingLLM({ cache: lc });
    const a = await llm.invoke('Complete this sentence');
    await cache.flush();
    const b = await llm.invoke('Complete this sentence');
    expect(llm.calls).toBe(1);
    expect(b).toBe(a);
    expect(cache.stats().hits).toBe(1);
    await cache.close();
  });

  it('tenants never share entries', async () => {
    let tenant = 'acme';
    const { cache, openai } = setup({ scope: () => tenant });
    const model = openai();
    await model.invoke('Tenant question');
    await cache.flush();
    await model.invoke('Tenant question');
    expect(oa.count()).toBe(1);
    tenant = 'globex';
    await model.invoke('Tenant question');
    expect(oa.count()).toBe(2);
    await cache.close();
  });

  it('follows the cache policy: without temperature 0 or a seed nothing is cached by default', async () => {
    const { cache, openai } = setup();
    const model = openai({ temperature: 0.7 });
    await model.invoke('Creative');
    await cache.flush();
    await model.invoke('Creative');
    expect(oa.count()).toBe(2);
    await cache.close();
  });

  it('a failing layer is a miss, never a failed call', async () => {
    const dead = new RedisLayer({ url: 'redis://127.0.0.1:1', connectTimeoutMs: 50, timeoutMs: 20 });
    const { cache, openai } = setup({}, { layers: [dead] });
    const errors: unknown[] = [];
    cache.on('error', (e) => errors.push(e));
    const model = openai();
    expect((await model.invoke('Still works')).content).toBe('Echo: Still works');
    expect((await model.invoke('Still works')).content).toBe('Echo: Still works');
    expect(errors.length).toBeGreaterThan(0);
    await cache.close();
  });

  it('rejects bad options with a StrataError naming the option', () => {
    const cache = new MultiLayerCache({ layers: [new MemoryLayer()] });
    expect(() => new StrataLangChainCache({ cache, ttl: 1 } as never)).toThrow(/unknown option "ttl"/);
    expect(() => new StrataLangChainCache({} as never)).toThrow(/option "cache"/);
    expect(() => new StrataLangChainCache({ cache, coalesce: { waitMs: -1 } })).toThrow(/coalesce/);
    try {
      new StrataLangChainCache({ cache, tags: [''] });
    } catch (e) {
      expect(StrataError.isInstance(e)).toBe(true);
      expect((e as StrataError).field).toBe('tags');
    }
  });
});

describe('with Redis (entries as JSON in a shared layer)', () => {
  let redis: Redis;
  let url: string;
  beforeAll(async () => {
    url = await redisUrlForTests();
    redis = new Redis(url);
  }, 30_000);
  afterAll(async () => {
    await redis?.quit();
  });

  it('no API key reaches the store, and rotating the key keeps the cache', async () => {
    const prefix = uniqueKeyPrefix('langchain');
    const layer = new RedisLayer({ url, prefix, compression: 'none' }); // plain JSON, so the check below sees everything
    await layer.connect();
    const { cache, openai } = setup({}, { layers: [layer] });
    const a = await openai().invoke('Where is my order?');
    await cache.flush();
    const b = await openai({ apiKey: 'sk-rotated-other-key' }).invoke('Where is my order?');
    expect(oa.count()).toBe(1);
    expect(b.content).toBe(a.content);
    const keys = await redis.keys(`${prefix}*`);
    expect(keys.length).toBeGreaterThan(0);
    let dump = keys.join('\n');
    for (const k of keys) {
      const type = await redis.type(k);
      if (type === 'string') dump += (await redis.getBuffer(k))?.toString('latin1') ?? '';
      else if (type === 'hash') dump += JSON.stringify(await redis.hgetall(k));
      else if (type === 'set') dump += (await redis.smembers(k)).join(',');
    }
    expect(dump).not.toContain('sk-test-secret-key');
    expect(dump).not.toContain('sk-rotated');
    await cache.close();
    if (keys.length) await redis.del(...keys);
  });
});
