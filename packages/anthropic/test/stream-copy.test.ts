// The non-stream copy of a completed stream must be the message the API would have returned:
// what the SDK's own message stream accumulates from the same events.
import { type ProviderServer, SECRET_KEY, collect, memoryCache, plain, sse, startAnthropicServer, stored } from '@strata-cache/provider-test-servers';
import { Anthropic } from '@anthropic-ai/sdk';
import { VERSION } from '@anthropic-ai/sdk/version';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { assembleMessage, getCacheInfo, withCache } from '../src/index.js';

let server: ProviderServer;
beforeAll(async () => {
  server = await startAnthropicServer();
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => server.reset());

function setup() {
  const { cache, layer } = memoryCache();
  const client = withCache(new Anthropic({ apiKey: SECRET_KEY, baseURL: server.baseURL, maxRetries: 0 }), { cache });
  return { cache, layer, client };
}

const ev = (type: string, payload: object = {}) => ({ event: type, data: { type, ...payload } });
const usage = { input_tokens: 120, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 1 };
const start = (model: string) =>
  ev('message_start', { message: { id: 'msg_live', type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null, usage } });
const text = (index: number, words: string[]) => [
  ev('content_block_start', { index, content_block: { type: 'text', text: '', citations: null } }),
  ...words.map((w) => ev('content_block_delta', { index, delta: { type: 'text_delta', text: w } })),
  ev('content_block_stop', { index }),
];

const req = (content: string) => ({
  model: 'claude-opus-4-7',
  max_tokens: 512,
  temperature: 0,
  messages: [{ role: 'user' as const, content }],
  betas: ['compact-2026-01-12', 'context-management-2025-06-27'],
});

describe(`the non-stream copy of a stream (@anthropic-ai/sdk ${VERSION})`, () => {
  it('keeps a compaction block, context_management and the answering model, as the SDK accumulates them', async () => {
    const { client, cache, layer } = setup();
    const applied = { applied_edits: [{ type: 'clear_tool_uses_20250919', cleared_tool_uses: 2, cleared_input_tokens: 900 }] };
    server.enqueue(
      sse([
        start('claude-opus-4-7'),
        ev('content_block_start', {
          index: 0,
          content_block: { type: 'fallback', from: { model: 'claude-opus-4-7' }, to: { model: 'claude-sonnet-4-5-20250929' }, trigger: { type: 'overloaded' } },
        }),
        ev('content_block_stop', { index: 0 }),
        ev('content_block_start', { index: 1, content_block: { type: 'compaction', content: null, encrypted_content: null } }),
        ev('content_block_delta', {
          index: 1,
          delta: { type: 'compaction_delta', content: 'Summary: the user is planning a trip to Lisbon.', encrypted_content: 'enc_abc' },
        }),
        ev('content_block_stop', { index: 1 }),
        ...text(2, ['Lisbon ', 'in ', 'May.']),
        ev('message_delta', {
          delta: { stop_reason: 'end_turn', stop_sequence: null, container: null },
          usage: { ...usage, output_tokens: 42 },
          context_management: applied,
        }),
        ev('message_stop'),
      ]),
    );
    const live = client.beta.messages.stream(req('Where next?'));
    // The helper adds its own `parsed_output` (structured outputs); the rest is the accumulated message.
    const { parsed_output: _p, ...sdkFinal } = plain(await live.finalMessage());
    await cache.flush();
    expect(sdkFinal.model).toBe('claude-sonnet-4-5-20250929');
    expect(sdkFinal.content[1]).toMatchObject({ type: 'compaction', content: 'Summary: the user is planning a trip to Lisbon.' });

    const { betas: _b, ...body } = req('Where next?');
    const json = await client.beta.messages.create({ ...body, betas: req('').betas });
    expect(getCacheInfo(json)?.hit).toBe(true);
    expect(server.count('/messages')).toBe(1);
    expect(plain(json)).toEqual(sdkFinal);
    expect(plain(json)).toMatchObject({
      context_management: applied,
      content: [{ type: 'fallback' }, { type: 'compaction', encrypted_content: 'enc_abc' }, { type: 'text', text: 'Lisbon in May.' }],
    });
    // Statistics see the model that answered.
    expect(stored(layer).map((x) => x.entry.model)).toEqual(['claude-sonnet-4-5-20250929', 'claude-sonnet-4-5-20250929']);
  });

  it('a stream with two message_start events is passed on but never stored', async () => {
    const { client, cache, layer } = setup();
    const twice = [
      start('claude-opus-4-7'),
      ...text(0, ['one']),
      start('claude-opus-4-7'),
      ...text(0, ['two']),
      ev('message_delta', { delta: { stop_reason: 'end_turn', stop_sequence: null }, usage }),
      ev('message_stop'),
    ];
    server.enqueue(sse(twice));
    const events = await collect(await client.beta.messages.create({ ...req('Twice?'), stream: true }));
    expect(events.filter((e) => e.type === 'message_start')).toHaveLength(2);
    await cache.flush();
    expect(stored(layer)).toHaveLength(0);
    expect(assembleMessage(twice.map((e) => e.data))).toBeNull();
  });
});
