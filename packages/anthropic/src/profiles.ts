// biome-ignore-all lint/suspicious/noExplicitAny: provider wire JSON is untyped here; every field is checked before it is used
import { type RequestProfile, type TokenUsage, chatSemanticSplit, defineProfile } from '@strata-cache/core';
import { withReasoningRule } from '@strata-cache/http';

const PKG = '@strata-cache/anthropic';

/**
 * A reasoning request: extended thinking is on (`thinking.type` `enabled` or `adaptive`).
 * Thinking requires temperature 1 and Anthropic has no seed, so it cannot pin its sampling.
 */
export function isAnthropicReasoningRequest(request: Record<string, unknown>): boolean {
  const thinking = request['thinking'] as { type?: unknown } | null | undefined;
  return typeof thinking === 'object' && thinking !== null && thinking.type !== undefined && thinking.type !== 'disabled';
}

/** The Messages profile with the reasoning rule for the given opted-in model families. */
export function anthropicProfile(reasoningModels: readonly string[]): RequestProfile {
  return withReasoningRule(
    defineProfile({
      id: 'anthropic.messages',
      ignoredFields: ['service_tier'],
      semanticSplit: chatSemanticSplit,
      // Anthropic has no seed: only temperature 0 is a repeatable request.
      isDeterministic: (r) => (r as { temperature?: unknown })?.temperature === 0,
      model: (r) => (typeof (r as { model?: unknown })?.model === 'string' ? (r as { model: string }).model : undefined),
    }),
    { packageName: PKG, isReasoning: isAnthropicReasoningRequest, families: reasoningModels },
  );
}

/**
 * `messages.create` / `messages.stream()`. Ignored (cannot change the answer): `stream`,
 * `metadata` (user id), `service_tier`. `system` (string or blocks), tools, `thinking`,
 * `tool_choice`, stop sequences and sampling parameters all count. The semantic text is the
 * last user turn when it is plain text; `system` and earlier turns must match exactly.
 * Repeatable: `temperature: 0`; extended-thinking requests only for model families opted in
 * with `reasoningModels`.
 */
export const anthropicMessagesProfile: RequestProfile = anthropicProfile([]);

/**
 * `cache_control` markers steer Anthropic's prompt cache, not the answer: drop them from the
 * fingerprint so adding a cache breakpoint does not invalidate Strata's entries.
 */
export function withoutCacheControl(body: Record<string, unknown>): Record<string, unknown> {
  const strip = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(strip);
    if (typeof v !== 'object' || v === null) return v;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (k !== 'cache_control') out[k] = strip(x);
    return out;
  };
  const out: Record<string, unknown> = { ...body };
  for (const field of ['system', 'messages', 'tools']) if (field in out) out[field] = strip(out[field]);
  return out;
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

/**
 * Anthropic usage → core usage. Anthropic's `input_tokens` excludes prompt-cache reads and
 * writes, core's `inputTokens` includes them, so the three are added up.
 */
export function anthropicUsage(u: any): TokenUsage | undefined {
  if (!u || typeof u !== 'object') return undefined;
  const read = num(u.cache_read_input_tokens);
  const write = num(u.cache_creation_input_tokens);
  return {
    inputTokens: num(u.input_tokens) + read + write,
    outputTokens: num(u.output_tokens),
    ...(read > 0 ? { cachedInputTokens: read } : {}),
    ...(write > 0 ? { cacheWriteInputTokens: write } : {}),
  };
}
