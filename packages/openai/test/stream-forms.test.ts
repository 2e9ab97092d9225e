// A stored chat completion rebuilt as the stream a `stream: true` request gets (`chatCompletionEvents`).
import { chatCompletion, chatCompletionChunks } from '@strata-cache/provider-test-servers';
import { describe, expect, it } from 'vitest';
import { assembleChatCompletion, chatCompletionEvents, openaiEndpoints } from '../src/endpoints.js';

const chat = openaiEndpoints([])['chat.completions'];
const request = (extra: Record<string, unknown> = {}): any => ({
  model: 'gpt-4o-mini',
  messages: [{ role: 'user', content: 'Where is my order?' }],
  stream: true,
  ...extra,
});
const withUsage = request({ stream_options: { include_usage: true } });
const chunks = (events: readonly { data: string }[]) => events.filter((e) => e.data !== '[DONE]').map((e) => JSON.parse(e.data));
/** The body without what a stream never carries (`annotations: []`). */
const streamable = (body: any) => ({ ...body, choices: body.choices.map(({ message: { annotations: _, ...m }, ...c }: any) => ({ ...c, message: m })) });

describe('chat completion events from a stored body', () => {
  it("assemble back into the body, as the provider's own stream of the same answer does", () => {
    for (const req of [withUsage, request(), { ...withUsage, n: 2 }, { ...withUsage, tools: [{ type: 'function', function: { name: 'lookup' } }] }]) {
      const body = chatCompletion(req, 7);
      const events = chatCompletionEvents(body, req)!;
      expect(chat.complete(events)).toBe(true);
      const assembled = assembleChatCompletion(chunks(events));
      const { usage, ...withoutUsage } = streamable(body);
      // The usage chunk comes only when the request asks for it, as from the API.
      expect(assembled).toEqual(req.stream_options ? { ...withoutUsage, usage } : withoutUsage);
      const provider = chatCompletionChunks(req, 7).map((e) => ({ data: typeof e.data === 'string' ? e.data : JSON.stringify(e.data) }));
      expect(assembled).toEqual(assembleChatCompletion(chunks(provider)));
      expect(chat.fromEvents(events).value).toEqual(assembled);
      // Every chunk but the last says `usage: null` when a usage chunk is asked for.
      if (req.stream_options)
        expect(
          chunks(events)
            .slice(0, -1)
            .every((c) => c.usage === null),
        ).toBe(true);
    }
  });

  it('carry logprobs and a refusal, and the whole text in one delta', () => {
    const body = {
      ...chatCompletion(withUsage, 1),
      choices: [
        { index: 0, message: { role: 'assistant', content: null, refusal: 'I cannot help with that.' }, logprobs: { content: [] }, finish_reason: 'stop' },
      ],
    };
    const events = chatCompletionEvents(body, withUsage)!;
    expect(assembleChatCompletion(chunks(events))).toEqual(body);
    expect(chunks(events)[0].choices[0]).toEqual({
      index: 0,
      delta: { role: 'assistant', refusal: 'I cannot help with that.' },
      logprobs: { content: [] },
      finish_reason: null,
    });
  });

  it('are undefined for a body a stream cannot carry', () => {
    const body = chatCompletion(withUsage, 1);
    const message = (m: object) => ({ ...body, choices: [{ ...body.choices[0], message: { ...body.choices[0]!.message, ...m } }] });
    expect(chatCompletionEvents(message({ audio: { id: 'a', data: '…' } }), withUsage)).toBeUndefined();
    expect(chatCompletionEvents(message({ function_call: { name: 'f', arguments: '{}' } }), withUsage)).toBeUndefined();
    expect(chatCompletionEvents(message({ annotations: [{ type: 'url_citation' }] }), withUsage)).toBeUndefined();
    expect(chatCompletionEvents(message({ tool_calls: [{ id: 'c', type: 'custom', custom: { name: 'f', input: 'x' } }] }), withUsage)).toBeUndefined();
    const { usage: _, ...noUsage } = body;
    expect(chatCompletionEvents(noUsage, withUsage)).toBeUndefined();
    expect(chatCompletionEvents(noUsage, request())).toBeDefined();
    expect(chatCompletionEvents({ object: 'response' }, withUsage)).toBeUndefined();
  });

  it('the two forms share semantic entries only when the stream carries usage', () => {
    expect(chat.streamFormsShared?.(withUsage)).toBe(true);
    expect(chat.streamFormsShared?.(request())).toBe(false);
    expect(chat.streamFormsShared?.(request({ stream_options: { include_usage: false } }))).toBe(false);
  });
});
