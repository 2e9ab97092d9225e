import { describe, expect, it } from 'vitest';
import { answerTextOf, sameValue } from '../src/index.js';

describe('answerTextOf', () => {
  it('reads the shapes the adapters store', () => {
    expect(answerTextOf('plain answer')).toBe('plain answer');
    // OpenAI chat completion (string content, content parts, tool calls).
    expect(answerTextOf({ object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: 'Reset it under Settings.' } }] })).toBe(
      'Reset it under Settings.',
    );
    expect(
      answerTextOf({
        choices: [
          {
            message: {
              content: [
                { type: 'text', text: 'a' },
                { type: 'text', text: 'b' },
              ],
            },
          },
        ],
      }),
    ).toBe('a\nb');
    expect(
      answerTextOf({ choices: [{ message: { content: null, tool_calls: [{ type: 'function', function: { name: 'lookup', arguments: '{"id":4}' } }] } }] }),
    ).toBe('lookup({"id":4})');
    // Legacy completions, the Responses API, Anthropic messages.
    expect(answerTextOf({ choices: [{ text: 'legacy' }] })).toBe('legacy');
    expect(answerTextOf({ object: 'response', output_text: 'from responses' })).toBe('from responses');
    expect(answerTextOf({ output: [{ type: 'message', content: [{ type: 'output_text', text: 'r1' }] }] })).toBe('r1');
    expect(
      answerTextOf({
        type: 'message',
        role: 'assistant',
        content: [
          { type: 'text', text: 'Hello from Claude' },
          { type: 'tool_use', name: 'search', input: { q: 'x' } },
        ],
      }),
    ).toBe('Hello from Claude\nsearch({"q":"x"})');
  });

  it('falls back to JSON for other values, nothing for binary or empty ones, and cuts long texts', () => {
    expect(answerTextOf({ total: 3, items: [1, 2] })).toBe('{"total":3,"items":[1,2]}');
    expect(answerTextOf({ text: 'field text' })).toBe('field text');
    expect(answerTextOf(new Uint8Array([1, 2]))).toBeUndefined();
    expect(answerTextOf(undefined)).toBeUndefined();
    expect(answerTextOf({})).toBeUndefined();
    expect(answerTextOf('x'.repeat(50), 10)).toBe('x'.repeat(10));
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic['self'] = cyclic;
    expect(answerTextOf(cyclic)).toBeUndefined();
  });

  it('sameValue compares what answers say, not the envelope they came in', () => {
    const chat = (id: string, content: string) => ({
      id,
      object: 'chat.completion',
      created: Number(id.slice(1)),
      choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 9, completion_tokens: 12 },
    });
    expect(sameValue(chat('c1', 'Open Settings, then Billing.'), chat('c2', 'Open Settings,  then\nBilling.'))).toBe(true);
    expect(sameValue(chat('c1', 'Open Settings, then Billing.'), chat('c2', 'Open Settings, then Security.'))).toBe(false);
    // No truncation: answers that differ only past any reading limit are different answers.
    const long = 'x'.repeat(10_000);
    expect(sameValue(long + 'a', long + 'b')).toBe(false);
    expect(sameValue({ a: 1, b: 2 }, { b: 2, a: 1 })).toBe(true);
    expect(sameValue(undefined, undefined)).toBe(false);
  });
});
