// What enters the key and what may be cached at all: JSON-Schema property order, Responses
// server-side state (`conversation`, `store`, stored prompts) and the reasoning-model rule.
import { type ProviderServer, SECRET_KEY, collect, memoryCache, startOpenAIServer, stored, warningsDuring } from '@strata-cache/provider-test-servers';
import { OpenAI } from 'openai';
import { VERSION } from 'openai/version';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { getCacheInfo, openaiChatProfile, uncachedRequests, withCache } from '../src/index.js';

let server: ProviderServer;
beforeAll(async () => {
  server = await startOpenAIServer();
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => server.reset());

function setup(options: { reasoningModels?: string[] } = {}, policy: 'always' | 'deterministic' = 'always') {
  const { cache, layer } = memoryCache({ policy });
  const client = withCache(new OpenAI({ apiKey: SECRET_KEY, baseURL: server.baseURL, maxRetries: 0 }), { cache, ...options });
  return { cache, layer, client };
}

const chat = (content: string, extra: object = {}) => ({ model: 'gpt-4o-mini', temperature: 0, messages: [{ role: 'user' as const, content }], ...extra });

const reasoningWarnings = (fn: () => Promise<unknown>) => warningsDuring('STRATA_REASONING_NOT_CACHED', fn);

describe(`JSON-Schema property order is part of the key (openai ${VERSION})`, () => {
  const schema = (order: string[]) => ({
    type: 'object',
    properties: Object.fromEntries(order.map((k) => [k, { type: 'string' }])),
    required: [...order].sort(),
    additionalProperties: false,
  });

  it('structured-output schemas that differ only in property order do not share an entry', async () => {
    const { client, cache } = setup();
    const format = (order: string[]) => ({ type: 'json_schema' as const, json_schema: { name: 'person', strict: true, schema: schema(order) } });
    await client.chat.completions.create(chat('Describe Ada', { response_format: format(['name', 'born']) }));
    await cache.flush();
    await client.chat.completions.create(chat('Describe Ada', { response_format: format(['born', 'name']) }));
    expect(server.count('/chat/completions')).toBe(2);
    await cache.flush();
    // The same order again is a hit; key order elsewhere in the body still does not matter.
    const again = await client.chat.completions.create({
      messages: [{ role: 'user' as const, content: 'Describe Ada' }],
      temperature: 0,
      model: 'gpt-4o-mini',
      response_format: format(['name', 'born']),
    });
    expect(getCacheInfo(again)?.hit).toBe(true);
    expect(server.count('/chat/completions')).toBe(2);
  });

  it('nested schemas, tool parameters and Responses text formats count their order too', async () => {
    const { client, cache } = setup();
    const nested = (inner: string[]) => ({ type: 'object', properties: { person: schema(inner), note: { type: 'string' } } });
    const tool = (params: object) => ({ type: 'function' as const, function: { name: 'save', parameters: params } });
    await client.chat.completions.create(chat('Save Ada', { tools: [tool(nested(['name', 'born']))] }));
    await cache.flush();
    await client.chat.completions.create(chat('Save Ada', { tools: [tool(nested(['born', 'name']))] }));
    expect(server.count('/chat/completions')).toBe(2);

    const text = (order: string[]) => ({ format: { type: 'json_schema' as const, name: 'person', strict: true, schema: schema(order) } });
    await client.responses.create({ model: 'gpt-4o-mini', temperature: 0, input: 'Describe Ada', text: text(['name', 'born']) });
    await cache.flush();
    await client.responses.create({ model: 'gpt-4o-mini', temperature: 0, input: 'Describe Ada', text: text(['born', 'name']) });
    await client.responses.create({ model: 'gpt-4o-mini', temperature: 0, input: 'Describe Ada', text: text(['name', 'born']) });
    expect(server.count('/responses')).toBe(2);
  });
});

describe('Responses server-side state', () => {
  const req = { model: 'gpt-4o-mini', temperature: 0, input: 'Continue the plan.' };

  it('requests that continue a conversation are never cached, and are counted', async () => {
    const { client, cache, layer } = setup();
    await client.responses.create({ ...req, conversation: 'conv_123' });
    await cache.flush();
    await client.responses.create({ ...req, conversation: 'conv_123' });
    expect(server.count('/responses')).toBe(2);
    await client.responses.create({ ...req, conversation: { id: 'conv_123' } });
    await collect(await client.responses.create({ ...req, conversation: 'conv_123', stream: true }));
    await cache.flush();
    expect(server.count('/responses')).toBe(4);
    expect(stored(layer)).toHaveLength(0);
    expect(uncachedRequests(client)).toEqual({ conversation: 4 });
  });

  it('a stored prompt without a version follows the server and is not cached; with a version it is', async () => {
    const { client, cache } = setup();
    await client.responses.create({ ...req, prompt: { id: 'pmpt_1' } });
    await cache.flush();
    await client.responses.create({ ...req, prompt: { id: 'pmpt_1' } });
    expect(server.count('/responses')).toBe(2);
    await client.responses.create({ ...req, prompt: { id: 'pmpt_1', version: '3' } });
    await cache.flush();
    await client.responses.create({ ...req, prompt: { id: 'pmpt_1', version: '3' } });
    expect(server.count('/responses')).toBe(3);
    expect(uncachedRequests(client)).toEqual({ 'prompt-without-version': 2 });
  });

  it('an answer given with store: false never serves a request that expects a stored response', async () => {
    const { client, cache } = setup();
    const unstored = await client.responses.create({ ...req, store: false });
    await cache.flush();
    const storedAnswer = await client.responses.create({ ...req, store: true });
    expect(storedAnswer.id).not.toBe(unstored.id);
    expect(server.count('/responses')).toBe(2);
    await cache.flush();
    // `store` absent means true: it shares the stored answer; store: false keeps its own.
    expect((await client.responses.create(req)).id).toBe(storedAnswer.id);
    expect((await client.responses.create({ ...req, store: false })).id).toBe(unstored.id);
    // The same holds for a stream and for the non-stream twin it leaves behind.
    await collect(await client.responses.create({ ...req, input: 'Streamed', store: false, stream: true }));
    await cache.flush();
    await client.responses.create({ ...req, input: 'Streamed', store: true });
    expect(server.count('/responses')).toBe(4);
  });
});

describe('reasoning models under the deterministic policy', () => {
  it('are not cached by default, and say so once per model with the option that opts them in', async () => {
    const { client, cache } = setup({}, 'deterministic');
    const warnings = await reasoningWarnings(async () => {
      for (let i = 0; i < 2; i++) {
        const { response } = await client.responses.create({ model: 'gpt-5-test-a', input: 'Plan a trip', reasoning: { effort: 'low' } }).withResponse();
        expect(getCacheInfo(response)).toEqual({ hit: false, status: 'bypass' });
        await cache.flush();
      }
    });
    expect(server.count('/responses')).toBe(2);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.message).toContain('gpt-5-test-a');
    expect(warnings[0]!.message).toContain("reasoningModels: ['gpt-5-test-a']");
  });

  it('an opted-in model family is cached (Responses and Chat); other families and sampled requests are not', async () => {
    const { client, cache } = setup({ reasoningModels: ['gpt-5', 'o4-mini'] }, 'deterministic');
    const warnings = await reasoningWarnings(async () => {
      for (let i = 0; i < 2; i++) {
        await client.responses.create({ model: 'gpt-5-mini', input: 'Plan a trip' });
        await client.chat.completions.create({ model: 'o4-mini', reasoning_effort: 'low', messages: [{ role: 'user', content: 'Plan a trip' }] });
        await client.responses.create({ model: 'o3-test-b', input: 'Plan a trip' });
        await client.chat.completions.create({ model: 'gpt-4o', temperature: 0.7, messages: [{ role: 'user', content: 'Plan a trip' }] });
        await cache.flush();
      }
    });
    expect(server.count('/responses')).toBe(1 + 2);
    expect(server.count('/chat/completions')).toBe(1 + 2);
    // Only the reasoning model that was not opted in warns (a sampled gpt-4o request is the ordinary rule).
    expect(warnings.map((w) => w.message.includes('o3-test-b'))).toEqual([true]);
  });

  it('the exported profile applies the same rule', () => {
    expect(openaiChatProfile.isDeterministic!({ model: 'gpt-4o', temperature: 0, messages: [] })).toBe(true);
    expect(openaiChatProfile.isDeterministic!({ model: 'o4-mini-test-c', seed: 7, messages: [] })).toBe(true);
    expect(() => withCache(new OpenAI({ apiKey: 'x' }), { cache: memoryCache().cache, reasoningModels: 'gpt-5' as never })).toThrow(/reasoningModels/);
  });
});
