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
   * land — only when `close()` stops waiting for them. Reads that start in the same turn share one
   * signal (they share one deadline), so it can abort after this operation settled: remove abort
   * listeners when the operation is done.
   */
  readonly signal?: AbortSignal;
}

export interface SemanticQuery extends SemanticDescriptor {
  readonly scope: Scope;
  /** Cosine similarity threshold for this lookup (layer default when absent). */
  readonly threshold?: number;
  /**
   * The asking request's exact key. A layer that reports loads in flight (`inFlight` in its
   * result) remembers a lookup that missed under this key, for the similar lookups that follow
   * while its answer is being loaded.
   */
  readonly key?: CacheKey;
}

/** A miss this layer saw moments ago whose answer this lookup would be served, were it stored. */
export interface InFlightMatch {
  /** The exact key id (`CacheKey.id`) of the request that missed. */
  readonly keyId: string;
  /** Its prompt's cosine similarity to this lookup's. */
  readonly similarity: number;
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
  /**
   * What a calibrating layer decided (see `CalibrationNote`). Core copies it onto the result and,
   * when it carries a `token`, hands the upstream answer of a miss back to the layer's `observe`.
   */
  readonly calibration?: CalibrationNote | undefined;
  /**
   * On a miss: earlier lookups that missed moments ago and that this one would be served from
   * once their answers are stored (same partition and scope, similar enough, past the guards),
   * most similar first. When one of them is still loading in this process, core waits for it
   * (`joinSimilar`) and searches again instead of calling upstream a second time.
   */
  readonly inFlight?: readonly InFlightMatch[] | undefined;
}

/**
 * A calibrating semantic layer's decision for one lookup (`@strata-cache/semantic-calibration`):
 * instead of a fixed threshold, it serves a candidate when its estimated probability of being the
 * wrong answer is within the user's error budget, and audits a share of would-be hits.
 */
export interface CalibrationNote {
  /**
   * - `serve`: the hit was served because the calibrator trusts it;
   * - `shadow`: a would-be hit re-asked upstream to audit it (a miss: the caller gets the fresh answer);
   * - `miss`: not trusted, or no candidate (a near miss with a `token` still teaches the layer).
   */
  readonly action: 'serve' | 'shadow' | 'miss';
  /** Similarity of the candidate served, shadowed or observed. */
  readonly similarity?: number | undefined;
  /** Estimated probability that the candidate's stored answer is wrong for this request. */
  readonly pWrong?: number | undefined;
  /** The serving cut-off on `pWrong` in force (the error budget's boundary). */
  readonly cutoff?: number | undefined;
  /** The lowest similarity at which the candidate's neighbourhood is served now (its learned boundary). */
  readonly boundary?: number | undefined;
  /**
   * Opaque, plain JSON: what the layer needs to learn from this lookup. Core passes it back to the
   * layer's `observe` (with the upstream answer) and `feedback` (with a user's verdict).
   */
  readonly token?: unknown;
}

/** A user's verdict on an answer the cache served (`MultiLayerCache.feedback`). */
export type FeedbackVerdict = 'wrong' | 'right';

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
  /**
   * Calibrating semantic layers: the upstream answer of a lookup whose search returned a
   * `calibration.token` (a shadow check or a near miss). The layer judges it against the stored
   * candidate's answer and learns; nothing is returned. Core calls it off the caller's path.
   */
  observe?(token: unknown, value: unknown, ctx?: LayerContext): MaybePromise<void>;
  /**
   * Calibrating semantic layers: a user's verdict on a hit this layer served (`token` from its
   * `calibration`). Resolves whether the entry should be evicted; core then invalidates it in
   * every layer.
   */
  feedback?(token: unknown, verdict: FeedbackVerdict, ctx?: LayerContext): MaybePromise<{ readonly evict: boolean }>;
  /** Releases resources after settling the writes it accepted (see rule 5). */
  close?(): MaybePromise<void>;
}

/** The current contract. */
export type Layer = LayerV1;

export function isPromiseLike<T>(value: MaybePromise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown })?.then === 'function';
}
