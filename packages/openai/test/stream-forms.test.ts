// A stored chat completion rebuilt as the stream a `stream: true` request gets (`chatCompletionEvents`).
import { chatCompletion, chatCompletionChunks, openAIResponseBody, openAIResponseEvents } from '@strata-cache/provider-test-servers';
import { describe, expect, it } from 'vitest';
import { assembleChatCompletion, chatCompletionEvents, openaiEndpoints, responseStreamEvents } from '../src/endpoints.js';

const chat = openaiEndpoints([])['chat.completions'];
const responses = openaiEndpoints([]).responses;
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

describe('Responses API events from a stored body', () => {
  const req = { model: 'gpt-4o-mini', input: 'Where is my order?' };
  const data = (events: readonly { data: any }[]) => events.map((e) => (typeof e.data === 'string' ? JSON.parse(e.data) : e.data));

  it("end with the response, as the provider's own stream of the same answer does (billing aside)", () => {
    const body = openAIResponseBody(req, 4);
    const events = responseStreamEvents(body)!;
    expect(responses.complete(events)).toBe(true);
    const { billing: _, ...streamed } = body;
    expect(responses.fromEvents(events).value).toEqual(streamed);
    // The provider's event types in the provider's order (its text comes in many deltas, ours in one).
    const kinds = (es: { type: string }[]) => es.map((e) => e.type).filter((t, i, all) => t !== all[i - 1]);
    expect(kinds(data(events))).toEqual(kinds(data(openAIResponseEvents(req, 4))));
    expect(data(events).map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
    for (const e of events) expect(JSON.parse(e.data).type).toBe(e.event);
    const text = data(events).filter((e) => e.type === 'response.output_text.delta');
    expect(text.map((e) => e.delta).join('')).toBe(body.output[0]!.content[0]!.text);
  });

  it('carry a function call and a refusal; undefined for reasoning, annotations or an unfinished response', () => {
    const base = openAIResponseBody(req, 5);
    const call = { id: 'fc_1', type: 'function_call', status: 'completed', call_id: 'call_1', name: 'lookup', arguments: '{"order":"A1"}' };
    const refusal = {
      id: 'msg_r',
      type: 'message',
      status: 'completed',
      role: 'assistant',
      content: [{ type: 'refusal', refusal: 'I cannot help with that.' }],
    };
    const body = { ...base, output: [call, refusal] };
    const events = responseStreamEvents(body)!;
    expect(responses.complete(events)).toBe(true);
    const { billing: _, ...streamed } = body;
    expect(responses.fromEvents(events).value).toEqual(streamed);
    expect(data(events).find((e) => e.type === 'response.function_call_arguments.delta')?.delta).toBe(call.arguments);
    expect(responseStreamEvents({ ...base, output: [{ id: 'rs_1', type: 'reasoning', summary: [] }] })).toBeUndefined();
    const annotated = { ...base.output[0]!, content: [{ ...base.output[0]!.content[0]!, annotations: [{ type: 'url_citation' }] }] };
    expect(responseStreamEvents({ ...base, output: [annotated] })).toBeUndefined();
    expect(responseStreamEvents({ ...base, status: 'in_progress' })).toBeUndefined();
    expect(responses.streamFormsShared?.(req)).toBe(true);
  });
});
