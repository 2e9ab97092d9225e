import { InvalidOptionError } from '@strata-cache/core';
import { type ProviderServer, SECRET_KEY, memoryCache, startOpenAIServer } from '@strata-cache/provider-test-servers';
import { OpenAI } from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { layoutChatPrompt, layoutResponsesPrompt, withCache } from '../src/index.js';

let server: ProviderServer;
beforeAll(async () => {
  server = await startOpenAIServer();
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => server.reset());

const tool = {
  type: 'function' as const,
  function: { name: 'order_status', description: 'Status of an order', parameters: { type: 'object', properties: { id: { type: 'string' } } } },
};
const history = [
  { role: 'user' as const, content: 'Hi, I have a question about my plan.' },
  { role: 'assistant' as const, content: 'Sure, what would you like to know?' },
];
const parts = (user: string, context: string[] = ['Customer: Dana, plan Pro, renews 2026-03-01']) => ({
  instructions: ['You are the support assistant of Acme.', 'Answer in two sentences.'],
  tools: [tool],
  history,
  context,
  user,
});

describe('layoutChatPrompt', () => {
  it('orders instructions, history, context, user turn; tools and a prompt_cache_key alongside', () => {
    const l = layoutChatPrompt(parts('Can I pause it?'));
    expect(l.messages).toEqual([
      { role: 'system', content: 'You are the support assistant of Acme.\n\nAnswer in two sentences.' },
      ...history,
      { role: 'system', content: 'Customer: Dana, plan Pro, renews 2026-03-01' },
      { role: 'user', content: 'Can I pause it?' },
    ]);
    expect(l.tools).toEqual([tool]);
    expect(l.prompt_cache_key).toMatch(/^strata-[\w-]{22}$/);
  });

  it('the cache key follows the static prefix only: same for other context and questions, other for other instructions or tools', () => {
    const a = layoutChatPrompt(parts('Can I pause it?')).prompt_cache_key;
    expect(layoutChatPrompt(parts('How do I cancel?', ['Customer: Lee, plan Free'])).prompt_cache_key).toBe(a);
    expect(layoutChatPrompt({ ...parts('Can I pause it?'), instructions: 'Another assistant.' }).prompt_cache_key).not.toBe(a);
    expect(layoutChatPrompt({ ...parts('Can I pause it?'), tools: [] }).prompt_cache_key).not.toBe(a);
    expect(layoutChatPrompt(parts('x'), { cacheKey: 'support-v3' }).prompt_cache_key).toBe('support-v3');
    expect('prompt_cache_key' in layoutChatPrompt(parts('x'), { cacheKey: false })).toBe(false);
  });

  it('no context, no history, no tools: instructions and the user turn; role developer on request', () => {
    const l = layoutChatPrompt({ instructions: 'Be brief.', user: 'Hello' }, { role: 'developer' });
    expect(l.messages).toEqual([
      { role: 'developer', content: 'Be brief.' },
      { role: 'user', content: 'Hello' },
    ]);
    expect('tools' in l).toBe(false);
  });

  it('rejects bad parts and options with an InvalidOptionError naming the field', () => {
    const bad = (fn: () => unknown, field: string) => {
      try {
        fn();
        expect.unreachable();
      } catch (error) {
        expect(error).toBeInstanceOf(InvalidOptionError);
        expect((error as InvalidOptionError).field).toBe(field);
      }
    };
    bad(() => layoutChatPrompt({ instructions: '', user: 'x' }), 'instructions');
    bad(() => layoutChatPrompt({ instructions: 'a', user: '' }), 'user');
    bad(() => layoutChatPrompt({ instructions: 'a', user: 'x', context: 3 as never }), 'context');
    bad(() => layoutChatPrompt({ instructions: 'a', user: 'x', system: 'typo' } as never), 'system');
    bad(() => layoutChatPrompt({ instructions: 'a', user: 'x' }, { cacheKey: '' }), 'cacheKey');
    bad(() => layoutChatPrompt({ instructions: 'a', user: 'x' }, { role: 'user' as never }), 'role');
  });
});

describe('layoutResponsesPrompt', () => {
  it('instructions apart, then history, context and the user turn as input', () => {
    const l = layoutResponsesPrompt(parts('Can I pause it?'));
    expect(l.instructions).toBe('You are the support assistant of Acme.\n\nAnswer in two sentences.');
    expect(l.input).toEqual([
      ...history,
      { role: 'system', content: 'Customer: Dana, plan Pro, renews 2026-03-01' },
      { role: 'user', content: 'Can I pause it?' },
    ]);
    expect(l.prompt_cache_key).toBe(layoutChatPrompt(parts('other')).prompt_cache_key);
  });
});

describe('through the SDK and the cache', () => {
  it('the layout goes to the API as it is; prompt_cache_key is not part of Strata key; the context is', async () => {
    const { cache } = memoryCache();
    const client = withCache(new OpenAI({ apiKey: SECRET_KEY, baseURL: server.baseURL, maxRetries: 0 }), { cache });
    const first = await client.chat.completions.create({ model: 'gpt-4o-mini', temperature: 0, ...layoutChatPrompt(parts('Can I pause it?')) });
    expect(server.requests[0]!.body.messages.map((m: { role: string }) => m.role)).toEqual(['system', 'user', 'assistant', 'system', 'user']);
    expect(server.requests[0]!.body.prompt_cache_key).toMatch(/^strata-/);
    await cache.flush();
    const again = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      temperature: 0,
      ...layoutChatPrompt(parts('Can I pause it?'), { cacheKey: 'another-routing-key' }),
    });
    expect(again.choices[0]!.message.content).toBe(first.choices[0]!.message.content);
    expect(server.count('/chat/completions')).toBe(1);
    await client.chat.completions.create({ model: 'gpt-4o-mini', temperature: 0, ...layoutChatPrompt(parts('Can I pause it?', ['Customer: Lee, plan Free'])) });
    expect(server.count('/chat/completions')).toBe(2);
    const responsesTool = {
      type: 'function' as const,
      name: 'order_status',
      description: 'Status of an order',
      parameters: tool.function.parameters,
      strict: false,
    };
    const r = await client.responses.create({
      model: 'gpt-4o-mini',
      temperature: 0,
      ...layoutResponsesPrompt({ ...parts('Can I pause it?'), tools: [responsesTool] }),
    });
    expect(r.status).toBe('completed');
    expect(server.requests.at(-1)!.body.instructions).toContain('You are the support assistant of Acme.');
  });
});
