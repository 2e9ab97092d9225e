import { InvalidOptionError } from '@strata-cache/core';
import { type PromptParts, checkPromptParts, textsOf } from '@strata-cache/http';

const PKG = '@strata-cache/anthropic';

/** Options of `layoutMessagesPrompt`. */
export interface AnthropicPromptLayoutOptions {
  /** Lifetime of the cache entries the breakpoints write (`1h` is billed higher). @default '5m' */
  ttl?: '5m' | '1h' | undefined;
  /** Put a breakpoint after the conversation so far too (the static prefix always gets one). @default true */
  cacheHistory?: boolean | undefined;
}

const OPTION_KEYS = ['ttl', 'cacheHistory'] as const satisfies ReadonlyArray<keyof AnthropicPromptLayoutOptions>;

/** An Anthropic cache breakpoint. */
export interface CacheControl {
  type: 'ephemeral';
  ttl?: '5m' | '1h';
}

type TextBlock = { type: 'text'; text: string; cache_control?: CacheControl };

/** Messages request fields, to spread into `messages.create({ model, max_tokens, ...layout })`. */
export interface MessagesPromptLayout<Tool, Message> {
  system: TextBlock[];
  tools?: Tool[];
  messages: Array<Message | { role: 'user'; content: string | TextBlock[] }>;
}

// Blocks that may carry cache_control (thinking blocks may not).
const MARKABLE = new Set(['text', 'image', 'document', 'tool_use', 'tool_result', 'search_result']);

/**
 * Orders a Messages prompt for Anthropic's prompt cache and places its breakpoints: tools and
 * instructions first (Anthropic caches tools, then system, then messages), with a
 * `cache_control` breakpoint on the last instruction block, which caches tools and instructions
 * together; then the conversation so far, with a breakpoint on its last block (each turn reuses
 * the previous turns); then this request's context, then the user turn, never cached. Prefixes
 * shorter than the model's minimum (1,024 tokens on most models) are not cached by Anthropic.
 * The context is a user message of its own before the user turn: Strata's semantic matching
 * compares the user turn and requires everything else, context included, to match exactly
 * (`cache_control` markers never enter Strata's key).
 */
export function layoutMessagesPrompt<Tool = never, Message = never>(
  parts: PromptParts<Tool, Message>,
  options: AnthropicPromptLayoutOptions = {},
): MessagesPromptLayout<Tool, Message> {
  checkPromptParts(PKG, parts);
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError(`${PKG}: prompt layout options must be an object`);
  for (const k of Object.keys(options)) {
    if (!(OPTION_KEYS as readonly string[]).includes(k))
      throw new InvalidOptionError(`${PKG}: unknown prompt layout option "${k}" (known: ${OPTION_KEYS.join(', ')})`, { field: k });
  }
  if (options.ttl !== undefined && options.ttl !== '5m' && options.ttl !== '1h')
    throw new InvalidOptionError(`${PKG}: prompt layout option "ttl" must be '5m' or '1h'`, { field: 'ttl' });
  if (options.cacheHistory !== undefined && typeof options.cacheHistory !== 'boolean')
    throw new InvalidOptionError(`${PKG}: prompt layout option "cacheHistory" must be a boolean`, { field: 'cacheHistory' });
  const mark: CacheControl = options.ttl ? { type: 'ephemeral', ttl: options.ttl } : { type: 'ephemeral' };
  const instructions = textsOf(parts.instructions).filter((t) => t !== '');
  const system: TextBlock[] = instructions.map((text, i) =>
    i === instructions.length - 1 ? { type: 'text', text, cache_control: { ...mark } } : { type: 'text', text },
  );
  const history = [...(parts.history ?? [])];
  if (options.cacheHistory !== false && history.length > 0) history[history.length - 1] = marked(history[history.length - 1]!, mark);
  const context = textsOf(parts.context);
  return {
    system,
    ...(parts.tools?.length ? { tools: [...parts.tools] } : {}),
    messages: [
      ...history,
      ...(context.length > 0 ? [{ role: 'user' as const, content: context.map((text): TextBlock => ({ type: 'text', text })) }] : []),
      { role: 'user' as const, content: parts.user },
    ],
  };
}

/** A copy of `message` whose last markable content block carries `mark` (unchanged when it has none). */
function marked<M>(message: M, mark: CacheControl): M {
  const m = message as { content?: unknown } | null;
  if (typeof m !== 'object' || m === null) return message;
  if (typeof m.content === 'string') return { ...m, content: [{ type: 'text', text: m.content, cache_control: { ...mark } }] } as M;
  if (!Array.isArray(m.content)) return message;
  const blocks = [...(m.content as Array<Record<string, unknown>>)];
  for (let i = blocks.length - 1; i >= 0; i--) {
    const b = blocks[i];
    if (b && MARKABLE.has(String(b['type']))) {
      blocks[i] = { ...b, cache_control: { ...mark } };
      return { ...m, content: blocks } as M;
    }
  }
  return message;
}
