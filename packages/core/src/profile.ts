/**
 * A request profile says, for one kind of request (a provider endpoint, or a generic
 * function call), which fields cannot change the answer and how to split out the part
 * that semantic matching compares. Provider adapters export their own profiles.
 */
export interface RequestProfile {
  /** Stable id, part of every key: `openai.chat`, `anthropic.messages`, `generic`. */
  readonly id: string;
  /** Top-level request fields that never change the answer (stream flags, user ids, ...). */
  readonly ignoredFields: readonly string[];
  /**
   * Splits a request into the text compared by similarity (the last user turn) and the
   * context that must match exactly. Return undefined when the request cannot be matched
   * semantically (e.g. the last message is a tool result).
   */
  semanticSplit?(request: unknown): SemanticSplit | undefined;
  /** True when a repeat of the request should give the same answer (temperature 0, a seed). */
  isDeterministic?(request: unknown): boolean;
  /** The model name, for statistics and prices. */
  model?(request: unknown): string | undefined;
}

export interface SemanticSplit {
  /** The text embedded and compared (the last user turn). */
  readonly text: string;
  /** Everything else that shapes the answer; hashed into the partition. */
  readonly context: unknown;
}

/** Fields that no provider uses to shape the answer. */
export const COMMON_IGNORED_FIELDS: readonly string[] = Object.freeze([
  'stream',
  'stream_options',
  'user',
  'metadata',
  'timeout',
  'request_id',
  'requestId',
  'idempotency_key',
  'signal',
  'headers',
]);

type Msg = { role?: unknown; content?: unknown };

/** Text of a chat message content: a string, or the text parts of a content array. */
export function messageText(content: unknown): string | undefined {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return undefined;
  let text = '';
  for (const part of content) {
    if (typeof part !== 'object' || part === null) return undefined;
    const p = part as { type?: unknown; text?: unknown };
    // Any non-text part (image, file, tool result) makes the turn unsafe to match by text alone.
    if ((p.type === 'text' || p.type === 'input_text') && typeof p.text === 'string') text += (text ? '\n' : '') + p.text;
    else return undefined;
  }
  return text;
}

/**
 * Default split for chat-shaped requests: `messages` whose last entry is a user turn, or a
 * Responses-API style `input` string. Everything except that turn becomes the context.
 */
export function chatSemanticSplit(request: unknown): SemanticSplit | undefined {
  if (typeof request !== 'object' || request === null) return undefined;
  const req = request as Record<string, unknown>;
  const messages = req['messages'];
  if (Array.isArray(messages) && messages.length > 0) {
    const last = messages[messages.length - 1] as Msg;
    if (typeof last !== 'object' || last === null || last.role !== 'user') return undefined;
    const text = messageText(last.content);
    if (text === undefined || text.trim() === '') return undefined;
    const { messages: _m, ...rest } = req;
    return { text, context: { ...rest, messages: messages.slice(0, -1), lastTurn: { ...last, content: undefined } } };
  }
  const input = req['input'];
  if (typeof input === 'string' && input.trim() !== '') {
    const { input: _i, ...rest } = req;
    return { text: input, context: rest };
  }
  return undefined;
}

/** Temperature 0 or an explicit seed. Absent temperature means the provider default (1), not 0. */
export function samplingIsDeterministic(request: unknown): boolean {
  if (typeof request !== 'object' || request === null) return true;
  const req = request as Record<string, unknown>;
  return req['temperature'] === 0 || (req['seed'] !== undefined && req['seed'] !== null);
}

export function defineProfile(profile: Omit<RequestProfile, 'ignoredFields'> & { ignoredFields?: readonly string[] }): RequestProfile {
  return Object.freeze({
    ...profile,
    ignoredFields: Object.freeze([...new Set([...COMMON_IGNORED_FIELDS, ...(profile.ignoredFields ?? [])])]),
  });
}

/** Chat-completion-shaped requests from any provider without an adapter of its own. */
export const chatProfile: RequestProfile = defineProfile({
  id: 'chat',
  semanticSplit: chatSemanticSplit,
  isDeterministic: samplingIsDeterministic,
  model: (r) => (typeof (r as { model?: unknown })?.model === 'string' ? (r as { model: string }).model : undefined),
});

/** Arbitrary function arguments (`wrap`/`memoize`): every field counts, always cacheable. */
export const genericProfile: RequestProfile = Object.freeze({
  id: 'generic',
  ignoredFields: Object.freeze([]),
  isDeterministic: () => true,
});
