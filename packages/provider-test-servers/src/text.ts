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
