import type { LanguageModelV4Usage, SharedV4ProviderMetadata } from '@ai-sdk/provider';
import type { MultiLayerCache, StrataError, TokenUsage } from '@strata-cache/core';

/** How a hit was answered; found under `providerMetadata.strata` of a result that came from the cache. */
export interface CacheInfo {
  readonly hit: true;
  /** The layer that answered (`memory`, `redis`, `semantic`, ...). */
  readonly layer: string;
  /** Age of the stored answer, ms. */
  readonly ageMs: number;
  /** Cosine similarity, for a semantic hit. */
  readonly similarity?: number;
}

/**
 * The cache info of an AI SDK result (`generateText`, `generateObject`, `streamText`'s awaited
 * `providerMetadata`, a step), or undefined when it was not served from the cache.
 */
export function getCacheInfo(
  result: { providerMetadata?: SharedV4ProviderMetadata | undefined } | SharedV4ProviderMetadata | undefined,
): CacheInfo | undefined {
  if (!result || typeof result !== 'object') return undefined;
  const metadata = ('providerMetadata' in result ? result.providerMetadata : result) as SharedV4ProviderMetadata | undefined;
  const info = metadata?.['strata'] as Record<string, unknown> | undefined;
  if (info?.['hit'] !== true || typeof info['layer'] !== 'string' || typeof info['ageMs'] !== 'number') return undefined;
  return {
    hit: true,
    layer: info['layer'],
    ageMs: info['ageMs'],
    ...(typeof info['similarity'] === 'number' ? { similarity: info['similarity'] } : {}),
  };
}

/** `value` with `providerMetadata.strata` set (a new object; the stored one is not touched). */
export function withCacheInfo<T extends { providerMetadata?: SharedV4ProviderMetadata | undefined }>(value: T, info: CacheInfo): T {
  return { ...value, providerMetadata: { ...(value.providerMetadata ?? {}), strata: { ...info } } };
}

/** AI SDK usage → Strata's provider-neutral token usage (undefined when the provider reported none). */
export function toTokenUsage(usage: LanguageModelV4Usage | undefined): TokenUsage | undefined {
  const input = usage?.inputTokens?.total;
  const output = usage?.outputTokens?.total;
  if (input === undefined && output === undefined) return undefined;
  const cached = usage?.inputTokens?.cacheRead;
  const written = usage?.inputTokens?.cacheWrite;
  return {
    inputTokens: input ?? 0,
    outputTokens: output ?? 0,
    ...(cached ? { cachedInputTokens: cached } : {}),
    ...(written ? { cacheWriteInputTokens: written } : {}),
  };
}

/** Like core: an 'error' event with no listener is dropped, never thrown. */
export function reportError(cache: MultiLayerCache, error: StrataError, operation: string): void {
  if (cache.listenerCount('error') === 0) return;
  cache.emit('error', { error, operation });
}
