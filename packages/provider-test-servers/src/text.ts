/** Text of the last user turn of a chat `messages` / Responses `input` array. */
export function lastUserText(messages: ReadonlyArray<{ role?: string; content?: unknown }> | undefined): string | undefined {
  if (!Array.isArray(messages)) return undefined;
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i]!;
    if (m.role !== 'user') continue;
    if (typeof m.content === 'string') return m.content;
    if (Array.isArray(m.content)) {
      return m.content
        .filter((p: { type?: string; text?: unknown }) => typeof p?.text === 'string')
        .map((p: { text: string }) => p.text)
        .join('\n');
    }
  }
  return undefined;
}

/** Splits text into word pieces that concatenate back to it ("a b" → ["a", " b"]). */
export function words(text: string): string[] {
  return text.match(/\s*\S+/g) ?? [text];
}

/** A stand-in token count (~4 characters per token), stable for a given text. */
export function fakeTokens(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}

/**
 * A support-bot chat completion request (~1.3 KB: a system prompt, a short history, the question),
 * the workload of the gateway and caching-fetch benchmarks.
 */
export function supportChatRequest(question: string): {
  model: string;
  temperature: number;
  messages: Array<{ role: 'system' | 'user' | 'assistant'; content: string }>;
} {
  return {
    model: 'gpt-4o-mini',
    temperature: 0,
    messages: [
      {
        role: 'system',
        content:
          'You are the support assistant of an online shop. Answer briefly and politely, cite the policy section you rely on, and never invent order details. '.repeat(
            4,
          ),
      },
      { role: 'user', content: 'Hi, I ordered a pair of running shoes last week.' },
      { role: 'assistant', content: 'Thanks for reaching out! How can I help with your order?' },
      { role: 'user', content: question },
    ],
  };
}
