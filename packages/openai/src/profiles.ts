// biome-ignore-all lint/suspicious/noExplicitAny: provider wire JSON is untyped here; every field is checked before it is used
import {
  type RequestProfile,
  type SemanticSplit,
  type TokenUsage,
  COMMON_IGNORED_FIELDS,
  chatSemanticSplit,
  messageText,
  samplingIsDeterministic,
} from '@strata-cache/core';
import { withReasoningRule } from '@strata-cache/http';

const PKG = '@strata-cache/openai';

/**
 * OpenAI request fields that never change the answer, beyond the transport fields every
 * provider shares (`stream`, `user`, `metadata`, ...): storage and billing options, prompt-cache
 * hints and end-user ids. `store` is listed for Chat Completions only (see the Responses profile).
 */
export const OPENAI_IGNORED_FIELDS: readonly string[] = Object.freeze([
  'store',
  'service_tier',
  'prompt_cache_key',
  'prompt_cache_retention',
  'safety_identifier',
]);

const modelOf = (r: unknown) => (typeof (r as { model?: unknown })?.model === 'string' ? (r as { model: string }).model : undefined);

/** A profile whose ignored fields are this package's own table, minus the ones `counts` names. */
function openaiProfile(profile: Omit<RequestProfile, 'ignoredFields'>, counts: readonly string[] = []): RequestProfile {
  const ignored = new Set([...COMMON_IGNORED_FIELDS, ...OPENAI_IGNORED_FIELDS]);
  for (const f of counts) ignored.delete(f);
  return Object.freeze({ ...profile, ignoredFields: Object.freeze([...ignored]) });
}

/** o-series and gpt-5 and later models reason before they answer. */
const REASONING_MODEL = /^(o\d|gpt-([5-9]|\d\d))/;

/**
 * A reasoning request: it sets `reasoning` (Responses) or `reasoning_effort` (Chat Completions),
 * or its model is a reasoning model (o-series, gpt-5 and later). Such models take no
 * `temperature` and no `seed`, so they cannot pin their sampling.
 */
export function isOpenAIReasoningRequest(request: Record<string, unknown>): boolean {
  if (request['reasoning'] !== undefined && request['reasoning'] !== null) return true;
  if (request['reasoning_effort'] !== undefined && request['reasoning_effort'] !== null) return true;
  return typeof request['model'] === 'string' && REASONING_MODEL.test(request['model']);
}

/** Last user turn of a Responses API `input` (a string, or an item list ending in a user message). */
export function responsesSemanticSplit(request: unknown): SemanticSplit | undefined {
  if (typeof request !== 'object' || request === null) return undefined;
  const req = request as Record<string, unknown>;
  const input = req['input'];
  const { input: _i, ...rest } = req;
  if (typeof input === 'string') return input.trim() === '' ? undefined : { text: input, context: rest };
  if (!Array.isArray(input) || input.length === 0) return undefined;
  const last = input[input.length - 1] as { role?: unknown; type?: unknown; content?: unknown };
  if (typeof last !== 'object' || last === null || last.role !== 'user' || (last.type !== undefined && last.type !== 'message')) return undefined;
  const text = messageText(last.content);
  if (text === undefined || text.trim() === '') return undefined;
  return { text, context: { ...rest, input: input.slice(0, -1), lastTurn: { ...last, content: undefined } } };
}

/** The three OpenAI profiles with the reasoning rule for the given opted-in model families. */
export function openaiProfiles(reasoningModels: readonly string[]): { chat: RequestProfile; responses: RequestProfile; embeddings: RequestProfile } {
  const rule = { packageName: PKG, isReasoning: isOpenAIReasoningRequest, families: reasoningModels };
  return {
    chat: withReasoningRule(
      openaiProfile({ id: 'openai.chat', semanticSplit: chatSemanticSplit, isDeterministic: samplingIsDeterministic, model: modelOf }),
      rule,
    ),
    // `store` counts for Responses: a stored response can be continued by its id
    // (`previous_response_id`), an unstored one cannot, so an answer given with `store: false`
    // must never serve a request that expects a stored response (normalised in `keyBody`).
    responses: withReasoningRule(
      openaiProfile(
        {
          id: 'openai.responses',
          semanticSplit: responsesSemanticSplit,
          isDeterministic: (r) => (r as { temperature?: unknown })?.temperature === 0,
          model: modelOf,
        },
        ['store'],
      ),
      rule,
    ),
    embeddings: openaiProfile({ id: 'openai.embeddings', isDeterministic: () => true, model: modelOf }),
  };
}

const DEFAULT_PROFILES = openaiProfiles([]);

/**
 * `chat.completions.create`. Ignored (cannot change the answer): stream flags, user ids,
 * metadata, `store`, `service_tier`, prompt-cache hints. Everything else counts, including
 * `n`, tools, `response_format`, `seed`, `logprobs`. Repeatable: `temperature: 0` or a `seed`;
 * reasoning requests only for model families opted in with `reasoningModels`.
 */
export const openaiChatProfile: RequestProfile = DEFAULT_PROFILES.chat;

/**
 * `responses.create`. Repeatable: `temperature: 0`; reasoning requests only for model families
 * opted in with `reasoningModels`. `store` counts (true and absent are the same).
 */
export const openaiResponsesProfile: RequestProfile = DEFAULT_PROFILES.responses;

/** `embeddings.create`: exact matching only; always deterministic. `encoding_format` counts (it changes the body). */
export const openaiEmbeddingsProfile: RequestProfile = DEFAULT_PROFILES.embeddings;

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

/** Chat Completions usage → core usage (cached_tokens are part of prompt_tokens). */
export function chatUsage(u: any): TokenUsage | undefined {
  if (!u || typeof u !== 'object') return undefined;
  const cached = num(u.prompt_tokens_details?.cached_tokens);
  return { inputTokens: num(u.prompt_tokens), outputTokens: num(u.completion_tokens), ...(cached > 0 ? { cachedInputTokens: cached } : {}) };
}

/** Responses API usage → core usage. */
export function responsesUsage(u: any): TokenUsage | undefined {
  if (!u || typeof u !== 'object') return undefined;
  const cached = num(u.input_tokens_details?.cached_tokens);
  return { inputTokens: num(u.input_tokens), outputTokens: num(u.output_tokens), ...(cached > 0 ? { cachedInputTokens: cached } : {}) };
}

/** Embeddings usage → core usage. */
export function embeddingsUsage(u: any): TokenUsage | undefined {
  return u && typeof u === 'object' ? { inputTokens: num(u.prompt_tokens), outputTokens: 0 } : undefined;
}
