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
  /**
   * Invalidation stamp: when the load that produced this answer began, on the clock the processes
   * sharing the cache agree on (the bus's `clock`, e.g. the Redis server's), in ms. An
   * invalidation whose watermark is at or after it covers the entry wherever it sits (see
   * `InvalidationWatermark`). Set by core on every write; copies (backfills) keep it. Entries
   * written without one (older versions) are judged by `createdAt`.
   */
  stamp?: number;
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

/** The entry's invalidation stamp: `stamp`, or `createdAt` for entries written without one. */
export function entryStamp(entry: Pick<CacheEntry, 'createdAt' | 'stamp'>): number {
  const s = entry.stamp;
  return typeof s === 'number' ? s : entry.createdAt;
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

/**
 * The shape check every layer (and core, on every hit) applies to an entry it did not build
 * itself: a finite `createdAt` (and `stamp`, when present), tags that are strings, a TTL that is a positive finite number or
 * absent, chunks and meta of the right kind. A stored value that fails it is a miss.
 */
export function isCacheEntry(x: unknown): x is CacheEntry {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return false;
  const e = x as Record<string, unknown>;
  const createdAt = e['createdAt'];
  if (typeof createdAt !== 'number' || !Number.isFinite(createdAt) || !('value' in e)) return false;
  const stamp = e['stamp'];
  if (stamp !== undefined && !(typeof stamp === 'number' && Number.isFinite(stamp))) return false;
  const tags = e['tags'];
  if (!Array.isArray(tags)) return false;
  for (let i = 0; i < tags.length; i++) if (typeof tags[i] !== 'string') return false;
  const ttl = e['ttlMs'];
  if (ttl !== undefined && !(typeof ttl === 'number' && ttl > 0 && Number.isFinite(ttl))) return false;
  if (e['chunks'] !== undefined && !Array.isArray(e['chunks'])) return false;
  const meta = e['meta'];
  if (meta !== undefined && (typeof meta !== 'object' || meta === null || Array.isArray(meta))) return false;
  return true;
}

/**
 * A deep copy of a JSON-like value (plain objects, arrays, primitives; typed arrays and Dates are
 * copied too), so a layer keeps no reference its caller holds.
 */
export function copyValue<V>(value: V): V {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) {
    const out = new Array(value.length);
    for (let i = 0; i < value.length; i++) out[i] = copyValue(value[i]);
    return out as V;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return structuredClone(value);
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(value)) out[k] = copyValue((value as Record<string, unknown>)[k]);
  return out as V;
}

/** Freezes a value and everything it holds (typed arrays cannot be frozen and are left as they are). */
export function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return value;
  if (ArrayBuffer.isView(value)) return value;
  Object.freeze(value);
  for (const k of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[k]);
  return value;
}

/**
 * The copy a layer stores (rule: no entry handed out by reference): deep-copied, and frozen when
 * `freeze` is set (then it can be handed out as it is, since nobody can change it).
 */
export function copyEntry<V>(entry: CacheEntry<V>, options: { freeze?: boolean } = {}): CacheEntry<V> {
  const copy = copyValue(entry);
  return options.freeze ? deepFreeze(copy) : copy;
}
