import { InvalidOptionError } from '@strata-cache/core';
import { type PromptParts, checkPromptParts, staticPrefixKey, textsOf } from '@strata-cache/http';

const PKG = '@strata-cache/openai';

/** Options of `layoutChatPrompt` / `layoutResponsesPrompt`. */
export interface OpenAIPromptLayoutOptions {
  /**
   * `prompt_cache_key`: requests with the same key and prefix are routed to the same prompt
   * cache. `false` sends none. Never part of Strata's key.
   * @default a short hash of the instructions and tools (`strata-…`), the same for every request sharing them
   */
  cacheKey?: string | false | undefined;
  /** Role of the instructions and context messages (`developer` for o-series models). @default 'system' */
  role?: 'system' | 'developer' | undefined;
}

const OPTION_KEYS = ['cacheKey', 'role'] as const satisfies ReadonlyArray<keyof OpenAIPromptLayoutOptions>;

type Text<R extends string> = { role: R; content: string };

/** Chat Completions request fields, to spread into `chat.completions.create({ model, ...layout })`. */
export interface ChatPromptLayout<Tool, Message> {
  messages: Array<Message | Text<'system' | 'developer' | 'user'>>;
  tools?: Tool[];
  prompt_cache_key?: string;
}

/** Responses request fields, to spread into `responses.create({ model, ...layout })`. */
export interface ResponsesPromptLayout<Tool, Message> {
  instructions: string;
  input: Array<Message | Text<'system' | 'developer' | 'user'>>;
  tools?: Tool[];
  prompt_cache_key?: string;
}

/**
 * Orders a Chat Completions prompt for OpenAI's prompt cache: the instructions, then the tools
 * (sent first by the API whatever their place in the body), then the conversation so far, then
 * this request's context, then the user turn — so every request sharing the instructions and
 * tools shares a cached prefix (cached from 1,024 tokens, billed at a discount), and each turn
 * of a conversation also reuses the previous turns. Sets `prompt_cache_key`. The context is a
 * message of its own before the user turn: Strata's semantic matching compares the user turn
 * and requires everything else, context included, to match exactly.
 */
export function layoutChatPrompt<Tool = never, Message = never>(
  parts: PromptParts<Tool, Message>,
  options: OpenAIPromptLayoutOptions = {},
): ChatPromptLayout<Tool, Message> {
  const { role, key } = prepare(parts, options);
  const context = textsOf(parts.context);
  return {
    messages: [
      { role, content: textsOf(parts.instructions).join('\n\n') },
      ...(parts.history ?? []),
      ...(context.length > 0 ? [{ role, content: context.join('\n\n') }] : []),
      { role: 'user' as const, content: parts.user },
    ],
    ...(parts.tools?.length ? { tools: [...parts.tools] } : {}),
    ...(key !== undefined ? { prompt_cache_key: key } : {}),
  };
}

/** The same layout for the Responses API: `instructions`, then history, context and the user turn as `input`. */
export function layoutResponsesPrompt<Tool = never, Message = never>(
  parts: PromptParts<Tool, Message>,
  options: OpenAIPromptLayoutOptions = {},
): ResponsesPromptLayout<Tool, Message> {
  const { role, key } = prepare(parts, options);
  const context = textsOf(parts.context);
  return {
    instructions: textsOf(parts.instructions).join('\n\n'),
    input: [...(parts.history ?? []), ...(context.length > 0 ? [{ role, content: context.join('\n\n') }] : []), { role: 'user' as const, content: parts.user }],
    ...(parts.tools?.length ? { tools: [...parts.tools] } : {}),
    ...(key !== undefined ? { prompt_cache_key: key } : {}),
  };
}

function prepare(parts: PromptParts<unknown, unknown>, options: OpenAIPromptLayoutOptions): { role: 'system' | 'developer'; key: string | undefined } {
  checkPromptParts(PKG, parts);
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError(`${PKG}: prompt layout options must be an object`);
  for (const k of Object.keys(options)) {
    if (!(OPTION_KEYS as readonly string[]).includes(k))
      throw new InvalidOptionError(`${PKG}: unknown prompt layout option "${k}" (known: ${OPTION_KEYS.join(', ')})`, { field: k });
  }
  const { cacheKey, role = 'system' } = options;
  if (cacheKey !== undefined && cacheKey !== false && (typeof cacheKey !== 'string' || cacheKey === '')) {
    throw new InvalidOptionError(`${PKG}: prompt layout option "cacheKey" must be a non-empty string, or false`, { field: 'cacheKey' });
  }
  if (role !== 'system' && role !== 'developer')
    throw new InvalidOptionError(`${PKG}: prompt layout option "role" must be 'system' or 'developer'`, { field: 'role' });
  return { role, key: cacheKey === false ? undefined : (cacheKey ?? staticPrefixKey(parts)) };
}
