// What enters the key and what may be cached at all: JSON-Schema property order and the
// extended-thinking rule.
import { type ProviderServer, SECRET_KEY, memoryCache, startAnthropicServer, warningsDuring } from '@strata-cache/provider-test-servers';
import { Anthropic } from '@anthropic-ai/sdk';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { anthropicMessagesProfile, getCacheInfo, withCache } from '../src/index.js';

let server: ProviderServer;
beforeAll(async () => {
  server = await startAnthropicServer();
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => server.reset());

function setup(options: { reasoningModels?: string[] } = {}, policy: 'always' | 'deterministic' = 'always') {
  const { cache } = memoryCache({ policy });
  const client = withCache(new Anthropic({ apiKey: SECRET_KEY, baseURL: server.baseURL, maxRetries: 0 }), { cache, ...options });
  return { cache, client };
}

const msg = (content: string, extra: object = {}) => ({
  model: 'claude-sonnet-4-5',
  max_tokens: 2048,
  temperature: 0,
  messages: [{ role: 'user' as const, content }],
  ...extra,
});
const thinking = (content: string, model: string) => ({
  model,
  max_tokens: 2048,
  thinking: { type: 'enabled' as const, budget_tokens: 1024 },
  messages: [{ role: 'user' as const, content }],
});

const reasoningWarnings = (fn: () => Promise<unknown>) => warningsDuring('STRATA_REASONING_NOT_CACHED', fn);

describe('JSON-Schema property order is part of the key', () => {
  const schema = (order: string[]) => ({
    type: 'object' as const,
    properties: Object.fromEntries(order.map((k) => [k, { type: 'string' }])),
    required: [...order].sort(),
  });

  it('tool input schemas and output formats that differ only in property order do not share an entry', async () => {
    const { client, cache } = setup();
    const tool = (order: string[]) => ({ name: 'save_person', description: 'Save a person', input_schema: schema(order) });
    await client.messages.create(msg('Save Ada', { tools: [tool(['name', 'born'])] }));
    await cache.flush();
    await client.messages.create(msg('Save Ada', { tools: [tool(['born', 'name'])] }));
    expect(server.count('/messages')).toBe(2);
    await cache.flush();
    const again = await client.messages.create(msg('Save Ada', { tools: [tool(['name', 'born'])] }));
    expect(getCacheInfo(again)?.hit).toBe(true);

    const format = (order: string[]) => ({ output_config: { format: { type: 'json_schema' as const, schema: schema(order) } } });
    await client.messages.create(msg('Describe Ada', format(['name', 'born'])));
    await cache.flush();
    await client.messages.create(msg('Describe Ada', format(['born', 'name'])));
    expect(server.count('/messages')).toBe(4);
  });
});

describe('extended thinking under the deterministic policy', () => {
  it('is not cached by default, and says so once per model with the option that opts it in', async () => {
    const { client, cache } = setup({}, 'deterministic');
    const warnings = await reasoningWarnings(async () => {
      for (let i = 0; i < 2; i++) {
        const { response } = await client.messages.create(thinking('Plan a trip', 'claude-thinking-test-a')).withResponse();
        expect(getCacheInfo(response)).toEqual({ hit: false, status: 'bypass' });
        await cache.flush();
      }
    });
    expect(server.count('/messages')).toBe(2);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.message).toContain("reasoningModels: ['claude-thinking-test-a']");
  });

  it('an opted-in model family is cached; other families, and sampled requests without thinking, are not', async () => {
    const { client, cache } = setup({ reasoningModels: ['claude-sonnet-4'] }, 'deterministic');
    for (let i = 0; i < 2; i++) {
      await client.messages.create(thinking('Plan a trip', 'claude-sonnet-4-5'));
      await client.messages.create(thinking('Plan a trip', 'claude-thinking-test-b'));
      await client.messages.create(msg('Plan a trip', { temperature: 0.5 }));
      await cache.flush();
    }
    expect(server.count('/messages')).toBe(1 + 2 + 2);
    expect(anthropicMessagesProfile.isDeterministic!({ model: 'claude-sonnet-4-5', temperature: 0, messages: [] })).toBe(true);
  });
});
