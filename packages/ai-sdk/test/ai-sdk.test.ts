// The middleware through the real AI SDK (`ai`, `@ai-sdk/openai`, `@ai-sdk/anthropic`) against
// local servers speaking the OpenAI and Anthropic wire formats.
import { createAnthropic } from '@ai-sdk/anthropic';
import { createOpenAI } from '@ai-sdk/openai';
import type { LanguageModelV4 } from '@ai-sdk/provider';
import { MultiLayerCache, type MultiLayerCacheOptions, StrataError } from '@strata-cache/core';
import { MemoryLayer } from '@strata-cache/layer-memory';
import {
  type ProviderServer,
  anthropicMessageEvents,
  chatCompletionChunks,
  sse,
  startAnthropicServer,
  startOpenAIServer,
} from '@strata-cache/provider-test-servers';
import { generateObject, generateText, stepCountIs, streamText, tool, wrapLanguageModel } from 'ai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type StrataCacheOptions, getCacheInfo, strataCache } from '../src/index.js';
import { BrokenLayer, JsonLayer, probe, withoutInfo } from './helpers.js';

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

function setup(opts: Partial<StrataCacheOptions> = {}, cacheOpts: Partial<MultiLayerCacheOptions> = {}) {
  const cache = new MultiLayerCache({ layers: [new MemoryLayer()], ...cacheOpts });
  const openai = createOpenAI({ apiKey: 'sk-test-secret', baseURL: oa.baseURL });
  const anthropic = createAnthropic({ apiKey: 'sk-ant-secret', baseURL: an.baseURL + '/v1' });
  const p = probe();
  const wrap = (model: LanguageModelV4, extra: Partial<StrataCacheOptions> = {}) =>
    wrapLanguageModel({ model, middleware: [p.middleware, strataCache({ cache, ...opts, ...extra })] });
  return { cache, openai, anthropic, probe: p, wrap };
}

const weatherTool = (calls: string[]) =>
  tool({
    description: 'Weather in a city',
    inputSchema: z.object({ query: z.string(), unit: z.string() }),
    execute: async ({ query }) => {
      calls.push(query);
      return { forecast: 'sunny', city: query };
    },
  });

describe('generateText', () => {
  it('a second identical call makes no upstream call and returns the same result (chat completions)', async () => {
    const { cache, openai, wrap, probe } = setup();
    const model = wrap(openai.chat('gpt-4o-mini'));
    const a = await generateText({ model, prompt: 'How do I reset my password?', temperature: 0 });
    expect(oa.count('/chat/completions')).toBe(1);
    expect(getCacheInfo(a)).toBeUndefined();
    await cache.flush();
    const b = await generateText({ model, prompt: 'How do I reset my password?', temperature: 0 });
    expect(oa.count('/chat/completions')).toBe(1);
    expect(b.text).toBe(a.text);
    expect(b.text).toBe('Echo: How do I reset my password?');
    expect(b.content).toEqual(a.content);
    expect(b.usage).toEqual(a.usage);
    expect(b.finishReason).toBe(a.finishReason);
    expect(b.response.id).toBe(a.response.id);
    expect(b.response.modelId).toBe(a.response.modelId);
    expect(b.response.timestamp).toBeInstanceOf(Date);
    expect(b.response.timestamp.getTime()).toBe(a.response.timestamp.getTime());
    expect(getCacheInfo(b)).toMatchObject({ hit: true, layer: 'memory' });
    // What the middleware handed the SDK: the same result, minus per-call transport details.
    const [miss, hit] = probe.generated as Array<Record<string, any>>;
    expect(withoutInfo(hit)).toEqual({ ...miss, request: undefined, response: { ...miss!['response'], headers: undefined } });
    expect(cache.stats()).toMatchObject({ hits: 1, misses: 1, loaderCalls: 1 });
    expect(cache.stats().tokensSaved.output).toBeGreaterThan(0);
    await cache.close();
  });

  it('caches the Responses API model too, and Anthropic with reasoning', async () => {
    const { cache, openai, anthropic, wrap } = setup();
    const r1 = await generateText({ model: wrap(openai('gpt-4o-mini')), prompt: 'Hello responses', temperature: 0 });
    await cache.flush();
    const r2 = await generateText({ model: wrap(openai('gpt-4o-mini')), prompt: 'Hello responses', temperature: 0 });
    expect(oa.count('/responses')).toBe(1);
    expect(r2.text).toBe(r1.text);
    expect(r2.response.id).toBe('resp_0');

    const thinking = { anthropic: { thinking: { type: 'enabled', budgetTokens: 1024 } } } as const;
    const model = wrap(anthropic('claude-sonnet-4-5'));
    const a1 = await generateText({ model, prompt: 'Think about cats', temperature: 0, providerOptions: thinking });
    await cache.flush();
    const a2 = await generateText({ model, prompt: 'Think about cats', temperature: 0, providerOptions: thinking });
    expect(an.count('/messages')).toBe(1);
    expect(a1.reasoningText).toContain('The user wrote: Think about cats');
    expect(a2.reasoningText).toBe(a1.reasoningText);
    expect(a2.text).toBe(a1.text);
    expect(a2.reasoning).toEqual(a1.reasoning); // signatures included (a later turn sends them back)
    // Without thinking it is another request.
    await generateText({ model, prompt: 'Think about cats', temperature: 0 });
    expect(an.count('/messages')).toBe(2);
    await cache.close();
  });

  it('concurrent identical calls make one upstream call', async () => {
    const slow = await startOpenAIServer({ latencyMs: 150 });
    try {
      const { cache, wrap } = setup();
      const model = wrap(createOpenAI({ apiKey: 'k', baseURL: slow.baseURL }).chat('gpt-4o-mini'));
      const results = await Promise.all(Array.from({ length: 5 }, () => generateText({ model, prompt: 'Same question', temperature: 0 })));
      expect(slow.count('/chat/completions')).toBe(1);
      expect(new Set(results.map((r) => r.text))).toEqual(new Set(['Echo: Same question']));
      expect(cache.stats().coalesced).toBe(4);
      // Each caller got its own object: mutating one result does not touch another.
      (results[1]!.content[0] as { text: string }).text = 'mutated';
      expect((results[2]!.content[0] as { text: string }).text).toBe('Echo: Same question');
      await cache.close();
    } finally {
      await slow.close();
    }
  });

  it('a coalesced caller whose leader aborts still gets its answer', async () => {
    const slow = await startOpenAIServer({ latencyMs: 200 });
    try {
      const { cache, wrap } = setup();
      const model = wrap(createOpenAI({ apiKey: 'k', baseURL: slow.baseURL }).chat('gpt-4o-mini'));
      const leader = new AbortController();
      const first = generateText({ model, prompt: 'Shared', temperature: 0, abortSignal: leader.signal, maxRetries: 0 });
      const second = generateText({ model, prompt: 'Shared', temperature: 0, maxRetries: 0 });
      setTimeout(() => leader.abort(), 50);
      await expect(first).rejects.toThrow();
      expect((await second).text).toBe('Echo: Shared');
      await cache.close();
    } finally {
      await slow.close();
    }
  });

  it('tool loops: every step is cached, tools still run on the replay', async () => {
    const { cache, openai, wrap } = setup();
    const model = wrap(openai.chat('gpt-4o-mini'));
    const calls: string[] = [];
    const run = () => generateText({ model, prompt: 'Weather in Paris?', temperature: 0, tools: { weather: weatherTool(calls) }, stopWhen: stepCountIs(3) });
    const a = await run();
    expect(oa.count('/chat/completions')).toBe(2);
    expect(a.steps).toHaveLength(2);
    expect(a.steps[0]!.toolCalls[0]).toMatchObject({ toolName: 'weather', input: { query: 'Weather in Paris?', unit: 'celsius' } });
    await cache.flush();
    const b = await run();
    expect(oa.count('/chat/completions')).toBe(2);
    expect(b.text).toBe(a.text);
    expect(b.steps.map((s) => s.toolCalls.map((c) => c.toolCallId))).toEqual(a.steps.map((s) => s.toolCalls.map((c) => c.toolCallId)));
    expect(calls).toEqual(['Weather in Paris?', 'Weather in Paris?']);
    expect(b.steps.map((s) => getCacheInfo(s)?.hit)).toEqual([true, true]);
    await cache.close();
  });

  it('generateObject: the second call is a hit with the same object', async () => {
    const { cache, openai, wrap } = setup();
    const model = wrap(openai.chat('gpt-4o-mini'));
    const schema = z.object({ answer: z.string() });
    const a = await generateObject({ model, schema, prompt: 'Give me JSON', temperature: 0 });
    await cache.flush();
    const b = await generateObject({ model, schema, prompt: 'Give me JSON', temperature: 0 });
    expect(oa.count('/chat/completions')).toBe(1);
    expect(a.object).toEqual({ answer: 'Echo: Give me JSON' });
    expect(b.object).toEqual(a.object);
    expect(getCacheInfo(b)).toMatchObject({ hit: true });
    // Another schema (even with the same fields in another order) is another answer.
    await generateObject({ model, schema: z.object({ answer: z.string(), note: z.string().optional() }), prompt: 'Give me JSON', temperature: 0 });
    expect(oa.count('/chat/completions')).toBe(2);
    await cache.close();
  });

  it('results survive a layer that stores JSON (Dates and bytes come back as such)', async () => {
    const json = new JsonLayer();
    const { cache, openai, wrap } = setup({}, { layers: [json] });
    const model = wrap(openai.chat('gpt-4o-mini'));
    const a = await generateText({ model, prompt: 'Round trip', temperature: 0 });
    await cache.flush();
    expect(json.map.size).toBe(1);
    const stored = [...json.map.values()][0]!;
    expect(stored).not.toContain('sk-test-secret');
    expect(stored).not.toContain('org-server-side'); // response headers are not kept
    const b = await generateText({ model, prompt: 'Round trip', temperature: 0 });
    expect(getCacheInfo(b)).toMatchObject({ layer: 'json' });
    expect(b.response.timestamp).toBeInstanceOf(Date);
    expect(b.response.timestamp.toISOString()).toBe(a.response.timestamp.toISOString());
    expect(b.text).toBe(a.text);
    await cache.close();
  });

  it('recorded streams survive a layer that stores JSON too', async () => {
    const json = new JsonLayer();
    const { cache, openai, wrap, probe } = setup({ cacheInfo: false }, { layers: [json] });
    const model = wrap(openai.chat('gpt-4o-mini'));
    for (let i = 0; i < 2; i++) {
      const s = streamText({ model, prompt: 'Round trip stream', temperature: 0 });
      for await (const _ of s.fullStream);
      await cache.flush();
    }
    expect(oa.count()).toBe(1);
    const [live, replayed] = probe.streams;
    expect(live!.find((p) => p.type === 'response-metadata')).toMatchObject({ timestamp: expect.any(Date) });
    expect(replayed).toEqual(live);
    await cache.close();
  });
});

describe('streamText', () => {
  async function drain(result: { fullStream: AsyncIterable<unknown> }) {
    const parts: unknown[] = [];
    for await (const p of result.fullStream) parts.push(p);
    return parts;
  }

  it('replays the recorded parts chunk for chunk, and the SDK rebuilds the same result', async () => {
    const { cache, openai, wrap, probe } = setup({ cacheInfo: false });
    const model = wrap(openai.chat('gpt-4o-mini'));
    const a = streamText({ model, prompt: 'Stream me a sentence please', temperature: 0 });
    await drain(a);
    await cache.flush();
    const b = streamText({ model, prompt: 'Stream me a sentence please', temperature: 0 });
    await drain(b);
    expect(oa.count('/chat/completions')).toBe(1);
    const [live, replayed] = probe.streams;
    expect(live!.filter((p) => p.type === 'text-delta').length).toBeGreaterThan(3);
    expect(replayed).toEqual(live); // same parts, same order, same ids, Dates included
    expect(await b.text).toBe(await a.text);
    expect(await b.usage).toEqual(await a.usage);
    expect(await b.finishReason).toBe(await a.finishReason);
    expect((await b.response).id).toBe((await a.response).id);
    await cache.close();
  });

  it('with cache info, only the finish part differs (providerMetadata.strata)', async () => {
    const { cache, openai, wrap, probe } = setup();
    const model = wrap(openai.chat('gpt-4o-mini'));
    await drain(streamText({ model, prompt: 'Info please', temperature: 0 }));
    await cache.flush();
    const b = streamText({ model, prompt: 'Info please', temperature: 0 });
    await drain(b);
    const [live, replayed] = probe.streams;
    expect(replayed!.map(withoutInfo)).toEqual(live);
    expect(getCacheInfo(replayed!.find((p) => p.type === 'finish') as never)).toMatchObject({ hit: true, layer: 'memory' });
    expect(getCacheInfo(await b.providerMetadata)).toMatchObject({ hit: true });
    await cache.close();
  });

  it('replays reasoning and tool calls (Anthropic thinking + tool_use stream)', async () => {
    const { cache, anthropic, wrap, probe } = setup({ cacheInfo: false });
    const model = wrap(anthropic('claude-sonnet-4-5'));
    const calls: string[] = [];
    const run = () =>
      streamText({
        model,
        prompt: 'Weather in Oslo?',
        temperature: 0,
        tools: { weather: weatherTool(calls) },
        stopWhen: stepCountIs(3),
        providerOptions: { anthropic: { thinking: { type: 'enabled', budgetTokens: 1024 } } },
      });
    const a = run();
    await drain(a);
    expect(an.count('/messages')).toBe(2);
    await cache.flush();
    const b = run();
    await drain(b);
    expect(an.count('/messages')).toBe(2);
    expect(probe.streams).toHaveLength(4);
    expect(probe.streams[2]).toEqual(probe.streams[0]);
    expect(probe.streams[3]).toEqual(probe.streams[1]);
    const types = new Set(probe.streams[0]!.map((p) => p.type));
    for (const t of ['reasoning-start', 'reasoning-delta', 'reasoning-end', 'tool-input-start', 'tool-input-delta', 'tool-call', 'finish'])
      expect(types).toContain(t);
    expect(await b.text).toBe(await a.text);
    expect(await b.reasoningText).toBe(await a.reasoningText);
    expect((await b.steps)[0]!.toolCalls).toEqual((await a.steps)[0]!.toolCalls);
    expect(calls).toEqual(['Weather in Oslo?', 'Weather in Oslo?']);
    await cache.close();
  });

  it('a stream that errors midway is not stored', async () => {
    const { cache, openai, wrap } = setup();
    const model = wrap(openai.chat('gpt-4o-mini'));
    const req = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Break me' }] };
    oa.enqueue(sse(chatCompletionChunks(req, 0), { intervalMs: 10, cutAfter: { events: 4, how: 'destroy' } }));
    const a = streamText({ model, prompt: 'Break me', temperature: 0, maxRetries: 0, onError: () => undefined });
    let failed = false;
    try {
      const parts = (await drain(a)) as Array<{ type: string }>;
      failed = parts.some((p) => p.type === 'error');
    } catch {
      failed = true;
    }
    expect(failed).toBe(true);
    await cache.flush();
    const b = streamText({ model, prompt: 'Break me', temperature: 0 });
    await drain(b);
    expect(oa.count('/chat/completions')).toBe(2); // the broken stream was not replayed
    expect(await b.text).toBe('Echo: Break me');
    await cache.flush();
    await drain(streamText({ model, prompt: 'Break me', temperature: 0 }));
    expect(oa.count('/chat/completions')).toBe(2); // the complete one was
    await cache.close();
  });

  it('a stream carrying an error event (provider overloaded mid-answer) is not stored — OpenAI and Anthropic', async () => {
    const { cache, openai, anthropic, wrap } = setup();
    const errors: unknown[] = [];
    const oModel = wrap(openai.chat('gpt-4o-mini'));
    const oEvents = chatCompletionChunks({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Overload me' }] }, 0);
    oa.enqueue(sse([...oEvents.slice(0, 3), { data: { error: { message: 'overloaded', type: 'server_error', code: null, param: null } } }]));
    await drain(streamText({ model: oModel, prompt: 'Overload me', temperature: 0, maxRetries: 0, onError: (e) => void errors.push(e) }));
    await cache.flush();
    const again = streamText({ model: oModel, prompt: 'Overload me', temperature: 0 });
    await drain(again);
    expect(await again.text).toBe('Echo: Overload me');
    expect(oa.count('/chat/completions')).toBe(2);

    const aModel = wrap(anthropic('claude-sonnet-4-5'));
    const aEvents = anthropicMessageEvents({ model: 'claude-sonnet-4-5', messages: [{ role: 'user', content: 'Overload me' }] }, 0);
    an.enqueue(sse([...aEvents.slice(0, 5), { event: 'error', data: { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } } }]));
    await drain(streamText({ model: aModel, prompt: 'Overload me', temperature: 0, maxRetries: 0, onError: (e) => void errors.push(e) }));
    await cache.flush();
    await drain(streamText({ model: aModel, prompt: 'Overload me', temperature: 0 }));
    expect(an.count('/messages')).toBe(2);
    expect(errors).toHaveLength(2);
    await cache.close();
  });

  it('a stream that ends without finishing (truncated) is not stored', async () => {
    const { cache, openai, wrap } = setup();
    const model = wrap(openai.chat('gpt-4o-mini'));
    const req = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Cut me' }] };
    oa.enqueue(sse(chatCompletionChunks(req, 0), { cutAfter: { events: 3, how: 'end' } }));
    await drain(streamText({ model, prompt: 'Cut me', temperature: 0, onError: () => undefined }));
    await cache.flush();
    await drain(streamText({ model, prompt: 'Cut me', temperature: 0 }));
    expect(oa.count('/chat/completions')).toBe(2);
    await cache.close();
  });

  it('a stream the caller aborts is not stored', async () => {
    const slow = await startOpenAIServer({ intervalMs: 30 });
    try {
      const { cache, wrap } = setup();
      const model = wrap(createOpenAI({ apiKey: 'k', baseURL: slow.baseURL }).chat('gpt-4o-mini'));
      const ac = new AbortController();
      const a = streamText({ model, prompt: 'one two three four five six seven', temperature: 0, abortSignal: ac.signal, onError: () => undefined });
      let seen = 0;
      for await (const p of a.fullStream) {
        if (p.type === 'text-delta' && ++seen === 2) ac.abort();
      }
      await cache.flush();
      await drain(streamText({ model, prompt: 'one two three four five six seven', temperature: 0 }));
      expect(slow.count('/chat/completions')).toBe(2);
      await cache.close();
    } finally {
      await slow.close();
    }
  });

  it('concurrent identical streams make one upstream call; every caller gets the same parts, live', async () => {
    const slow = await startOpenAIServer({ intervalMs: 20 });
    try {
      const { cache, wrap, probe } = setup({ cacheInfo: false });
      const model = wrap(createOpenAI({ apiKey: 'k', baseURL: slow.baseURL }).chat('gpt-4o-mini'));
      const results = await Promise.all(
        Array.from({ length: 4 }, () => streamText({ model, prompt: 'Shared stream here', temperature: 0 })).map(async (r) => (await drain(r), r.text)),
      );
      expect(slow.count('/chat/completions')).toBe(1);
      expect(new Set(results)).toEqual(new Set(['Echo: Shared stream here']));
      expect(probe.streams).toHaveLength(4);
      expect(probe.streams[0]!.filter((p) => p.type === 'text-delta').length).toBeGreaterThan(2);
      for (const s of probe.streams.slice(1)) expect(s).toEqual(probe.streams[0]);
      expect(cache.stats().coalesced).toBe(3);
      await cache.flush();
      await drain(streamText({ model, prompt: 'Shared stream here', temperature: 0 }));
      expect(slow.count('/chat/completions')).toBe(1);
      await cache.close();
    } finally {
      await slow.close();
    }
  });

  it('the first caller aborting does not cut the others: the model stream goes on for them and is stored', async () => {
    const slow = await startOpenAIServer({ intervalMs: 20 });
    try {
      const { cache, wrap } = setup({ cacheInfo: false });
      const model = wrap(createOpenAI({ apiKey: 'k', baseURL: slow.baseURL }).chat('gpt-4o-mini'));
      const prompt = 'one two three four five six seven';
      const ac = new AbortController();
      const first = streamText({ model, prompt, temperature: 0, abortSignal: ac.signal, onError: () => undefined });
      const others = Array.from({ length: 2 }, () => streamText({ model, prompt, temperature: 0 }));
      let seen = 0;
      for await (const p of first.fullStream) {
        if (p.type === 'text-delta' && ++seen === 2) ac.abort();
      }
      for (const o of others) await drain(o);
      expect(await Promise.all(others.map((o) => o.text))).toEqual([`Echo: ${prompt}`, `Echo: ${prompt}`]);
      expect(slow.count('/chat/completions')).toBe(1);
      await cache.flush();
      await drain(streamText({ model, prompt, temperature: 0 }));
      expect(slow.count('/chat/completions')).toBe(1);
      await cache.close();
    } finally {
      await slow.close();
    }
  });
});

describe('keys and scopes', () => {
  it('tenants never share entries', async () => {
    const { cache, openai, wrap } = setup({ scope: ({ params }) => (params.providerOptions?.['app'] as { tenant?: string } | undefined)?.tenant });
    const model = wrap(openai.chat('gpt-4o-mini'));
    const ask = (tenant: string) => generateText({ model, prompt: 'Tenant question', temperature: 0, providerOptions: { app: { tenant } } });
    await ask('acme');
    await cache.flush();
    await ask('acme');
    expect(oa.count()).toBe(1);
    const g = await ask('globex');
    expect(oa.count()).toBe(2);
    expect(getCacheInfo(g)).toBeUndefined();
    // Per call, through providerOptions.strata.scope
    await cache.flush();
    const h = await generateText({
      model,
      prompt: 'Tenant question',
      temperature: 0,
      providerOptions: { strata: { scope: 'globex' }, app: { tenant: 'globex' } },
    });
    expect(getCacheInfo(h)).toMatchObject({ hit: true });
    await generateText({ model, prompt: 'Tenant question', temperature: 0, providerOptions: { strata: { scope: 'initech' }, app: { tenant: 'globex' } } });
    expect(oa.count()).toBe(3);
    await cache.close();
  });

  it('headers, abort signals and monitoring ids do not change the key; answer-changing settings do', async () => {
    const { cache, openai, wrap } = setup();
    const model = wrap(openai.chat('gpt-4o-mini'));
    const base = { model, prompt: 'Key question', temperature: 0 } as const;
    await generateText(base);
    await cache.flush();
    await generateText({
      ...base,
      headers: { 'x-trace-id': 'abc' },
      abortSignal: new AbortController().signal,
      providerOptions: { openai: { user: 'u-1', metadata: { a: '1' } } },
    });
    expect(oa.count()).toBe(1);
    await generateText({ ...base, temperature: 0, maxOutputTokens: 50 });
    await generateText({ ...base, system: 'Be brief.' });
    await generateText({ ...base, seed: 7 });
    await generateText({ ...base, headers: { 'OpenAI-Beta': 'assistants=v2' } });
    await generateText({ ...base, model: wrap(openai.chat('gpt-4.1-mini')) });
    expect(oa.count()).toBe(6);
    await cache.close();
  });

  it('tool schemas differing only in property order are different keys', async () => {
    const { cache, openai, wrap } = setup();
    const model = wrap(openai.chat('gpt-4o-mini'));
    const t = (shape: z.ZodRawShape) => ({ lookup: tool({ inputSchema: z.object(shape), execute: async () => 'ok' }) });
    await generateText({ model, prompt: 'Order', temperature: 0, tools: t({ query: z.string(), unit: z.string() }) });
    await cache.flush();
    await generateText({ model, prompt: 'Order', temperature: 0, tools: t({ query: z.string(), unit: z.string() }) });
    expect(oa.count()).toBe(1);
    await generateText({ model, prompt: 'Order', temperature: 0, tools: t({ unit: z.string(), query: z.string() }) });
    expect(oa.count()).toBe(2);
    await cache.close();
  });

  it('follows the cache policy: a call without temperature 0 or a seed is not cached by default', async () => {
    const { cache, openai, wrap } = setup();
    const model = wrap(openai.chat('gpt-4o-mini'));
    await generateText({ model, prompt: 'Creative' });
    await generateText({ model, prompt: 'Creative' });
    expect(oa.count()).toBe(2);
    const always = setup({}, { policy: 'always' });
    const m2 = always.wrap(openai.chat('gpt-4o-mini'));
    await generateText({ model: m2, prompt: 'Creative' });
    await always.cache.flush();
    await generateText({ model: m2, prompt: 'Creative' });
    expect(oa.count()).toBe(3);
    await cache.close();
    await always.cache.close();
  });

  it('per-call options: bypass, forceRefresh, noStore, tags', async () => {
    const { cache, openai, wrap } = setup();
    const model = wrap(openai.chat('gpt-4o-mini'));
    const ask = (strata: Record<string, unknown> = {}) =>
      generateText({ model, prompt: 'Per call', temperature: 0, providerOptions: { strata: strata as never } });
    await ask({ noStore: true });
    await cache.flush();
    await ask({ tags: ['faq'] });
    await cache.flush();
    expect(oa.count()).toBe(2);
    await ask();
    expect(oa.count()).toBe(2);
    await ask({ bypass: true });
    await ask({ forceRefresh: true, tags: ['faq'] });
    expect(oa.count()).toBe(4);
    await cache.flush();
    await cache.invalidateTag('faq');
    await ask();
    expect(oa.count()).toBe(5);
    await expect(ask({ ttl: 5 })).rejects.toThrow(/unknown option providerOptions\.strata\.ttl/);
    await cache.close();
  });

  it('a failing layer is a miss, never a failed call', async () => {
    const { cache, openai, wrap } = setup({}, { layers: [new BrokenLayer()] });
    const errors: unknown[] = [];
    cache.on('error', (e) => errors.push(e));
    const model = wrap(openai.chat('gpt-4o-mini'));
    const a = await generateText({ model, prompt: 'Still works', temperature: 0 });
    expect(a.text).toBe('Echo: Still works');
    const s = streamText({ model, prompt: 'Still streams', temperature: 0 });
    expect(await s.text).toBe('Echo: Still streams');
    expect(errors.length).toBeGreaterThan(0);
    await cache.close();
  });

  it('a call the cache cannot key, or a closed cache, goes straight to the model', async () => {
    const { cache, openai, wrap } = setup();
    const errors: Array<{ operation: string; error: StrataError }> = [];
    cache.on('error', (e) => errors.push(e));
    const model = wrap(openai.chat('gpt-4o-mini'));
    class Opaque {}
    const odd = { myapp: { marker: new Opaque() } } as never;
    const a = await generateText({ model, prompt: 'Odd options', temperature: 0, providerOptions: odd });
    expect(a.text).toBe('Echo: Odd options');
    expect(errors[0]).toMatchObject({ operation: 'getOrLoad' });
    expect(errors[0]!.error.code).toBe('STRATA_INVALID_REQUEST');
    await cache.close();
    const b = await generateText({ model, prompt: 'After close', temperature: 0 });
    expect(b.text).toBe('Echo: After close');
    const s = streamText({ model, prompt: 'After close', temperature: 0 });
    expect(await s.text).toBe('Echo: After close');
    expect(errors.map((e) => e.error.code)).toContain('STRATA_CLOSED');
  });

  it('rejects bad options with a StrataError naming the option', () => {
    const cache = new MultiLayerCache({ layers: [new MemoryLayer()] });
    expect(() => strataCache({ cache, ttl: 5 } as never)).toThrow(/unknown option "ttl"/);
    expect(() => strataCache({} as never)).toThrow(/option "cache"/);
    expect(() => strataCache({ cache, semantic: { threshold: 2 } })).toThrow(/semantic/);
    try {
      strataCache({ cache, tags: [''] });
    } catch (e) {
      expect(StrataError.isInstance(e)).toBe(true);
      expect((e as StrataError).field).toBe('tags');
    }
  });
});
