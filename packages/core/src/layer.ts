import type { CacheEntry } from './entry.js';
import type { CacheKey, SemanticDescriptor } from './fingerprint.js';
import type { Scope } from './scope.js';

/** The Layer contract version this core speaks. Layers declare it; core refuses others. */
export const LAYER_SPECIFICATION_VERSION = 'v1' as const;

export type MaybePromise<T> = T | Promise<T>;

/**
 * What a layer can do; core reads every flag instead of guessing:
 * - `nativeTtl`: core does not delete an expired entry it was handed (the layer expires it anyway);
 * - `batch`: core calls getMany / setMany / deleteMany (`lookupMany`, its backfill, `invalidateCacheKeys`);
 * - `semantic`: core calls `search` after an exact miss;
 * - `shared`: core does not re-apply another process's invalidation to it (the sender did);
 * - `tags`: core calls deleteByTag / deleteOlderVersions on invalidation;
 * - `remote`: core passes a deadline and an abort signal with every operation.
 */
export interface LayerCapabilities {
  /** Expires entries by itself (core still checks createdAt + ttlMs on every read). */
  readonly nativeTtl: boolean;
  /** Implements getMany / setMany / deleteMany. */
  readonly batch: boolean;
  /** Implements `search` (similarity lookups). */
  readonly semantic: boolean;
  /** Shared between processes (Redis): core does not re-apply remote invalidations to it. */
  readonly shared: boolean;
  /** Implements deleteByTag / deleteOlderVersions. */
  readonly tags: boolean;
  /** Can become unavailable (network, process): core gives it a deadline and an abort signal. */
  readonly remote: boolean;
}

/**
 * Per-call context core passes to `remote` and `semantic` layers (others get none: an in-process
 * layer answers before any deadline could matter, and building one would cost every hit).
 */
export interface LayerContext {
  /** Epoch ms (`Date.now()` clock) after which core stops waiting; layers may abandon work past it. */
  readonly deadline?: number;
  /**
   * Aborted when core stops waiting for this operation (its budget ran out, or the cache is
   * closing and gave up on it): a layer drops queued work for it (an embedding nobody will read,
   * a command not yet sent). Writes are not aborted when their budget runs out — they may still
   * land — only when `close()` stops waiting for them.
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
  readonly reason?: string | undefined;
}

export interface SemanticSearchResult {
  readonly hit?: { readonly key: CacheKey; readonly entry: CacheEntry; readonly similarity: number; readonly text: string } | undefined;
  /**
   * Candidates turned down during the search: by a guard, by the selector, and the nearest one
   * below the threshold (`guard: 'threshold'`). Core copies them onto miss results.
   */
  readonly rejected?: readonly RejectedCandidate[] | undefined;
}

export interface ScanPage {
  readonly items: ReadonlyArray<{ readonly key: CacheKey; readonly entry: CacheEntry }>;
  /** Pass back to continue; undefined when done. */
  readonly cursor?: string | undefined;
}

/**
 * The contract every cache layer implements (version `v1`). Small on purpose: four required
 * operations, the rest optional and announced through `capabilities`.
 *
 * Rules (the compliance suite, `@strata-cache/layer-test-suite`, checks each):
 * 1. A layer never returns an entry of another scope; it may return expired entries (core checks);
 *    it throws (or rejects) on failure and core turns that into a miss.
 * 2. Batch operations answer in key order, `undefined` for a missing key.
 * 3. An entry's current tags are the truth: after a re-`set` with other tags, `deleteByTag(old)`
 *    leaves it and `deleteByTag(new)` removes it.
 * 4. No entry is handed out by reference: mutating an entry given to `set`, or one returned by
 *    `get`, never changes what a later `get` returns (a frozen copy is fine).
 * 5. After `close()` resolves, every operation rejects (throws, for a sync layer) a `StrataError`
 *    with code `STRATA_CLOSED`; a second `close()` is a no-op.
 * 6. `clear()` resolves the number of entries it removed.
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
  /**
   * Removes every entry of the scope (all versions of its tenant+namespace), or every entry this
   * layer owns; resolves how many it removed.
   */
  clear(scope?: Pick<Scope, 'tenant' | 'namespace'>): MaybePromise<number>;

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
  scan?(options: { scope?: Pick<Scope, 'tenant' | 'namespace'> | undefined; cursor?: string | undefined; count?: number | undefined }): MaybePromise<ScanPage>;
  /** Releases resources after settling the writes it accepted (see rule 5). */
  close?(): MaybePromise<void>;
}

/** The current contract. */
export type Layer = LayerV1;

export function isPromiseLike<T>(value: MaybePromise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown })?.then === 'function';
}
