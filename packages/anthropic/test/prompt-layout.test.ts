import { InvalidOptionError } from '@strata-cache/core';
import { type ProviderServer, SECRET_KEY, memoryCache, startAnthropicServer } from '@strata-cache/provider-test-servers';
import { Anthropic } from '@anthropic-ai/sdk';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { layoutMessagesPrompt, withCache } from '../src/index.js';

let server: ProviderServer;
beforeAll(async () => {
  server = await startAnthropicServer();
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => server.reset());

const tool = { name: 'order_status', description: 'Status of an order', input_schema: { type: 'object' as const, properties: { id: { type: 'string' } } } };
const history = [
  { role: 'user' as const, content: 'Hi, I have a question about my plan.' },
  { role: 'assistant' as const, content: [{ type: 'text' as const, text: 'Sure, what would you like to know?' }] },
];
const parts = (user: string, context: string[] = ['Customer: Dana, plan Pro, renews 2026-03-01']) => ({
  instructions: ['You are the support assistant of Acme.', 'Answer in two sentences.'],
  tools: [tool],
  history,
  context,
  user,
});

describe('layoutMessagesPrompt', () => {
  it('tools and instructions first with one breakpoint, history with one on its last block, then context and the user turn', () => {
    const l = layoutMessagesPrompt(parts('Can I pause it?'));
    expect(l.system).toEqual([
      { type: 'text', text: 'You are the support assistant of Acme.' },
      { type: 'text', text: 'Answer in two sentences.', cache_control: { type: 'ephemeral' } },
    ]);
    expect(l.tools).toEqual([tool]);
    expect(l.messages).toEqual([
      history[0],
      { role: 'assistant', content: [{ type: 'text', text: 'Sure, what would you like to know?', cache_control: { type: 'ephemeral' } }] },
      { role: 'user', content: [{ type: 'text', text: 'Customer: Dana, plan Pro, renews 2026-03-01' }] },
      { role: 'user', content: 'Can I pause it?' },
    ]);
    // The caller's history is not changed.
    expect(history[1]!.content[0]).not.toHaveProperty('cache_control');
  });

  it('string history content becomes a marked text block; thinking blocks are skipped; ttl; cacheHistory: false', () => {
    const h = [
      {
        role: 'assistant' as const,
        content: [
          { type: 'text', text: 'Answer' },
          { type: 'thinking', thinking: '…', signature: 's' },
        ],
      },
    ];
    const l = layoutMessagesPrompt({ instructions: 'Be brief.', history: h, user: 'Next?' }, { ttl: '1h' });
    expect(l.system).toEqual([{ type: 'text', text: 'Be brief.', cache_control: { type: 'ephemeral', ttl: '1h' } }]);
    expect(l.messages[0]).toEqual({
      role: 'assistant',
      content: [
        { type: 'text', text: 'Answer', cache_control: { type: 'ephemeral', ttl: '1h' } },
        { type: 'thinking', thinking: '…', signature: 's' },
      ],
    });
    const s = layoutMessagesPrompt({ instructions: 'Be brief.', history: [{ role: 'user', content: 'Earlier' }], user: 'Next?' });
    expect(s.messages[0]).toEqual({ role: 'user', content: [{ type: 'text', text: 'Earlier', cache_control: { type: 'ephemeral' } }] });
    const off = layoutMessagesPrompt({ instructions: 'Be brief.', history: [{ role: 'user', content: 'Earlier' }], user: 'Next?' }, { cacheHistory: false });
    expect(off.messages[0]).toEqual({ role: 'user', content: 'Earlier' });
  });

  it('rejects bad options with an InvalidOptionError naming the field', () => {
    expect(() => layoutMessagesPrompt({ instructions: 'a', user: 'x' }, { ttl: '10m' as never })).toThrow(InvalidOptionError);
    expect(() => layoutMessagesPrompt({ instructions: 'a', user: 'x' }, { breakpoints: 3 } as never)).toThrow(/unknown prompt layout option "breakpoints"/);
    expect(() => layoutMessagesPrompt({ user: 'x' } as never)).toThrow(/"instructions"/);
  });
});

describe('through the SDK and the cache', () => {
  it('the layout goes to the API as it is; breakpoints are not part of Strata key; the context is', async () => {
    const { cache } = memoryCache();
    const client = withCache(new Anthropic({ apiKey: SECRET_KEY, baseURL: server.baseURL, maxRetries: 0 }), { cache });
    // temperature 0 (the default policy caches only that); the SDK's types no longer list it.
    const ask = (p: ReturnType<typeof parts>, o = {}) => {
      const body = { model: 'claude-sonnet-4-5', max_tokens: 256, temperature: 0, ...layoutMessagesPrompt(p, o) };
      return client.messages.create(body);
    };
    const first = await ask(parts('Can I pause it?'));
    const sent = server.requests[0]!.body;
    expect(sent.system.at(-1).cache_control).toEqual({ type: 'ephemeral' });
    expect(sent.messages.map((m: { role: string }) => m.role)).toEqual(['user', 'assistant', 'user', 'user']);
    await cache.flush();
    const again = await ask(parts('Can I pause it?'), { ttl: '1h', cacheHistory: false });
    expect(again.content).toEqual(first.content);
    expect(server.count('/messages')).toBe(1);
    await ask(parts('Can I pause it?', ['Customer: Lee, plan Free']));
    expect(server.count('/messages')).toBe(2);
  });
});
