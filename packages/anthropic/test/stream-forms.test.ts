// A stored message rebuilt as the stream a `stream: true` request gets (`messageEvents`).
import { anthropicMessage, anthropicMessageEvents } from '@strata-cache/provider-test-servers';
import { describe, expect, it } from 'vitest';
import { assembleMessage, messageEvents, messagesEndpoint } from '../src/endpoints.js';

const spec = messagesEndpoint([]);
const parsed = (events: readonly { data: any }[]) => events.map((e) => (typeof e.data === 'string' ? JSON.parse(e.data) : e.data));
const req = (tools?: object[]): any => ({
  model: 'claude-sonnet-4-5',
  max_tokens: 256,
  messages: [{ role: 'user', content: 'Where is my order?' }],
  ...(tools ? { tools } : {}),
});

describe('message events from a stored body', () => {
  it("assemble back into the body, as the provider's own stream of the same answer does", () => {
    for (const r of [req(), req([{ name: 'lookup', input_schema: { type: 'object' } }])]) {
      const body = anthropicMessage(r, 3);
      const events = messageEvents(body)!;
      expect(spec.complete(events)).toBe(true);
      expect(spec.fromEvents(events).value).toEqual(body);
      expect(assembleMessage(parsed(events))).toEqual(assembleMessage(parsed(anthropicMessageEvents(r, 3))));
      // Named events, in the API's order.
      expect(events[0]!.event).toBe('message_start');
      expect(events.slice(-2).map((e) => e.event)).toEqual(['message_delta', 'message_stop']);
      for (const e of events) expect(JSON.parse(e.data).type).toBe(e.event);
    }
  });

  it('carry thinking with its signature, citations, server tools and blocks sent whole', () => {
    const body = {
      ...anthropicMessage(req(), 1),
      content: [
        { type: 'thinking', thinking: 'The user asks about an order.', signature: 'sig-1' },
        { type: 'redacted_thinking', data: 'opaque' },
        { type: 'server_tool_use', id: 'srvtoolu_1', name: 'web_search', input: { query: 'order status' } },
        { type: 'web_search_tool_result', tool_use_id: 'srvtoolu_1', content: [{ type: 'web_search_result', url: 'https://example.com', title: 'Orders' }] },
        { type: 'text', text: 'It ships today.', citations: [{ type: 'web_search_result_location', url: 'https://example.com', cited_text: 'ships today' }] },
        { type: 'text', text: '', citations: null },
      ],
    };
    const events = messageEvents(body)!;
    expect(spec.complete(events)).toBe(true);
    expect(spec.fromEvents(events).value).toEqual(body);
    const deltas = parsed(events)
      .filter((e) => e.type === 'content_block_delta')
      .map((e) => e.delta.type);
    expect(deltas).toEqual(['thinking_delta', 'signature_delta', 'input_json_delta', 'text_delta', 'citations_delta']);
  });

  it('are undefined for a body that is not a message', () => {
    expect(messageEvents({ type: 'error', error: {} })).toBeUndefined();
    expect(messageEvents({ type: 'message', content: [null] })).toBeUndefined();
    expect(spec.streamFormsShared?.(req())).toBe(true);
  });
});
