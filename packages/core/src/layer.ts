import type { CacheEntry } from './entry.js';
import type { CacheKey, SemanticDescriptor } from './fingerprint.js';
import type { Scope } from './scope.js';

/** The Layer contract version this core speaks. Layers declare it; core refuses others. */
export const LAYER_SPECIFICATION_VERSION = 'v1' as const;

export type MaybePromise<T> = T | Promise<T>;

/** What a layer can do; core reads these instead of guessing. */
export interface LayerCapabilities {
  /** Expires entries by itself (core still checks createdAt + ttlMs on every read). */
  readonly nativeTtl: boolean;
  /** Implements getMany / setMany / deleteMany. */
  readonly batch: boolean;
  /** Implements `search` (similarity lookups). */
  readonly semantic: boolean;
  /** Shared between processes (Redis): core does not re-apply remote invalidations to it. */
  readonly shared: boolean;
  /** Implements deleteByTag / deleteScope. */
  readonly tags: boolean;
  /** Can become unavailable (network, process): core gives it a time budget. */
  readonly remote: boolean;
}

/** Per-call context core passes to a layer. */
export interface LayerContext {
  /** Epoch ms after which core stops waiting; layers may abandon work past it. */
  readonly deadline?: number;
  /**
   * Aborted when core stops waiting for this operation (its budget ran out, or the caller gave
   * up): a layer drops queued work for it (an embedding nobody will read, a command not yet sent).
   */
  readonly signal?: AbortSignal;
}

export interface SemanticQuery extends SemanticDescriptor {
  readonly scope: Scope;
  /** Cosine similarity threshold for this lookup (layer default when absent). */
  readonly threshold?: number;
}

export interface RejectedCandidate {
  readonly similarity: number;
  readonly text: string;
  /** Name of the check that rejected it (`threshold`, `numbers`, `negation`, ...). */
  readonly guard: string;
  readonly reason?: string;
}

export interface SemanticSearchResult {
  readonly hit?: { readonly key: CacheKey; readonly entry: CacheEntry; readonly similarity: number; readonly text: string };
  /** Candidates above the threshold that a guard turned down. */
  readonly rejected?: readonly RejectedCandidate[];
}

export interface ScanPage {
  readonly items: ReadonlyArray<{ readonly key: CacheKey; readonly entry: CacheEntry }>;
  /** Pass back to continue; undefined when done. */
  readonly cursor?: string;
}

/**
 * The contract every cache layer implements (version `v1`). Small on purpose: four required
 * operations, the rest optional and announced through `capabilities`.
 *
 * Rules: a layer never returns an entry of another scope; it may return expired entries
 * (core checks); it throws (or rejects) on failure and core turns that into a miss.
 */
export interface LayerV1 {
  readonly specificationVersion: typeof LAYER_SPECIFICATION_VERSION;
  /** Short name used in stats and events: `memory`, `redis`, `semantic`. */
  readonly name: string;
  readonly capabilities: LayerCapabilities;

  get(key: CacheKey, ctx?: LayerContext): MaybePromise<CacheEntry | undefined>;
  set(key: CacheKey, entry: CacheEntry, ctx?: LayerContext): MaybePromise<void>;
  /** Resolves true when something was removed. */
  delete(key: CacheKey, ctx?: LayerContext): MaybePromise<boolean>;
  /** Removes every entry of the scope (all versions of its tenant+namespace), or every entry this layer owns. */
  clear(scope?: Pick<Scope, 'tenant' | 'namespace'>): MaybePromise<void>;

  getMany?(keys: readonly CacheKey[], ctx?: LayerContext): MaybePromise<Array<CacheEntry | undefined>>;
  setMany?(items: ReadonlyArray<{ key: CacheKey; entry: CacheEntry }>, ctx?: LayerContext): MaybePromise<void>;
  deleteMany?(keys: readonly CacheKey[], ctx?: LayerContext): MaybePromise<number>;
  /** Removes entries carrying the tag (optionally only in one tenant+namespace); resolves the count. */
  deleteByTag?(tag: string, scope?: Pick<Scope, 'tenant' | 'namespace'>): MaybePromise<number>;
  /** Removes entries of versions older than `scope.version` in that tenant+namespace. */
  deleteOlderVersions?(scope: Scope): MaybePromise<number>;
  /** Similarity search (capabilities.semantic). */
  search?(query: SemanticQuery, ctx?: LayerContext): MaybePromise<SemanticSearchResult>;
  /** Incremental iteration over stored entries, for admin purges. */
  scan?(options: { scope?: Pick<Scope, 'tenant' | 'namespace'>; cursor?: string; count?: number }): MaybePromise<ScanPage>;
  close?(): MaybePromise<void>;
}

/** The current contract. */
export type Layer = LayerV1;

export function isPromiseLike<T>(value: MaybePromise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown })?.then === 'function';
}
