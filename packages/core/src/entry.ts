import type { SemanticDescriptor } from './fingerprint.js';

/** Token counts of one upstream call, provider-neutral. */
export interface TokenUsage {
  /** All prompt tokens, including the ones the provider served from its own prompt cache. */
  inputTokens: number;
  outputTokens: number;
  /** Prompt tokens the provider read from its prompt cache (OpenAI cached_tokens, Anthropic cache_read_input_tokens). */
  cachedInputTokens?: number;
  /** Prompt tokens written to the provider's prompt cache (Anthropic cache_creation_input_tokens). */
  cacheWriteInputTokens?: number;
}

/**
 * What every layer stores. JSON-serialisable by contract: layers that cross a process
 * boundary serialise it, and it must come back bit-exactly.
 */
export interface CacheEntry<V = unknown> {
  /** The provider-native response (or the memoised function's result). */
  value: V;
  /** For streamed responses: the recorded chunks/events, in order. */
  chunks?: unknown[];
  /** Epoch ms at which the entry was written. */
  createdAt: number;
  /** Lifetime in ms from createdAt; undefined = no expiry. */
  ttlMs?: number;
  /** Tags for invalidation (`topic:pricing`, `product:42`). */
  tags: string[];
  model?: string;
  usage?: TokenUsage;
  /** Present when the request could be matched semantically: lets an L3 index be rebuilt from L2. */
  semantic?: SemanticDescriptor;
  /** Free-form, JSON-serialisable metadata written by adapters. */
  meta?: Record<string, unknown>;
}

export function expiresAt(entry: Pick<CacheEntry, 'createdAt' | 'ttlMs'>): number {
  return entry.ttlMs === undefined ? Number.POSITIVE_INFINITY : entry.createdAt + entry.ttlMs;
}

/** Remaining lifetime in ms (Infinity for no expiry, <= 0 when expired). */
export function remainingTtl(entry: Pick<CacheEntry, 'createdAt' | 'ttlMs'>, now: number): number {
  return expiresAt(entry) - now;
}

export function isExpired(entry: Pick<CacheEntry, 'createdAt' | 'ttlMs'>, now: number): boolean {
  return entry.ttlMs !== undefined && entry.createdAt + entry.ttlMs <= now;
}
