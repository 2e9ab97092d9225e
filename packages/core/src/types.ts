import type { InvalidationBus, InvalidationMessage } from './bus.js';
import type { LoadCoordinator } from './coordinator.js';
import type { CacheEntry, TokenUsage } from './entry.js';
import { InvalidOptionError, type StrataError } from './errors.js';
import type { CacheKey, SemanticDescriptor } from './fingerprint.js';
import type { CalibrationNote, Layer, RejectedCandidate } from './layer.js';
import type { RequestProfile } from './profile.js';
import type { Scope, ScopeInput } from './scope.js';
import type { PriceTable } from './stats.js';

/** One layer in the stack, with its own settings. */
export interface LayerConfig {
  layer: Layer;
  /** Time budget per operation for this layer (async layers only). @default MultiLayerCacheOptions.budgetMs */
  budgetMs?: number | undefined;
  /** Read from this layer. @default true */
  read?: boolean | undefined;
  /** Write misses and backfills to this layer. @default true */
  write?: boolean | undefined;
}

/** What to do with one request. */
export interface PolicyDecision {
  /** Look the request up. @default true */
  read?: boolean | undefined;
  /** Store the loader's result. @default true */
  write?: boolean | undefined;
  /** TTL for what gets stored. */
  ttlMs?: number | undefined;
  /** Extra tags for what gets stored. */
  tags?: readonly string[] | undefined;
  /**
   * Why (shown in events and results). When the decision skips the cache (no read, no write),
   * `stats().policySkips` counts requests by this reason.
   */
  reason?: string | undefined;
}

/** A decision with read/write settled. */
export type ResolvedDecision = PolicyDecision & { readonly read: boolean; readonly write: boolean };

export interface PolicyContext {
  readonly request: unknown;
  readonly profile: RequestProfile;
  readonly scope: Scope;
}

/**
 * `deterministic`: cache requests whose profile says a repeat gives the same answer
 * (temperature 0 or a seed for chat; always for `wrap`). `always`: cache everything.
 */
export type CachePolicy = 'deterministic' | 'always' | ((ctx: PolicyContext) => PolicyDecision | boolean);

export interface WriteContext extends PolicyContext {
  readonly key: CacheKey;
  readonly entry: CacheEntry;
}

export interface HitContext extends PolicyContext {
  readonly key: CacheKey;
  readonly entry: CacheEntry;
  readonly layer: string;
  readonly now: number;
}

/** Extension points used by @strata-cache/invalidation (and anyone else). */
export interface CachePlugin {
  readonly name: string;
  /** Decide read/write/TTL/tags for a request. Later plugins refine earlier decisions. */
  onRequest?(ctx: PolicyContext): PolicyDecision | undefined;
  /**
   * Adjust (TTL, tags, meta) or veto (return false) an entry about to be written. `meta` is
   * merged over the entry's own (e.g. the prompt text an admin purge can match later).
   */
  beforeWrite?(ctx: WriteContext): { ttlMs?: number; tags?: readonly string[]; meta?: Record<string, unknown> } | false | undefined;
  /** Return false to treat a hit as a miss (e.g. older than a max-age rule). */
  acceptHit?(ctx: HitContext): boolean;
}

export interface MultiLayerCacheOptions {
  /** Layers in lookup order, fastest first. At least one. */
  layers: ReadonlyArray<Layer | LayerConfig>;
  /** TTL of stored entries in ms; `null` for no expiry. @default 3_600_000 (1 hour) */
  defaultTtlMs?: number | null | undefined;
  /** Time budget for one operation of an async layer, in ms. @default 50 */
  budgetMs?: number | undefined;
  /**
   * How long `flush()` and `close()` wait for writes still in flight in the layers (a large value
   * being sent, a slow replica) before giving up on them, in ms. @default 5_000
   */
  closeTimeoutMs?: number | undefined;
  /** Scope of calls that do not name one. @default { tenant: 'default', namespace: 'default' } */
  scope?: ScopeInput | undefined;
  /** How requests are fingerprinted. @default chatProfile */
  profile?: RequestProfile | undefined;
  /** Which requests are cached. @default 'deterministic' */
  policy?: CachePolicy | undefined;
  /**
   * The first request the policy skips for a given reason also raises a one-time
   * `process.emitWarning` (besides the `policySkip` event), so a cache that silently caches
   * nothing is noticed. @default true
   */
  warnOnPolicySkip?: boolean | undefined;
  /** Concurrent identical misses share one loader call. @default true */
  coalesce?: boolean | undefined;
  /**
   * A semantic miss whose prompt is close to one still loading in this process — a paraphrase
   * asked while the first wording's answer is on its way — waits for that load (up to
   * `maxWaitMs`) and searches the semantic layers again, instead of calling upstream a second
   * time. The semantic layer decides which loads qualify (`inFlight` in its search result: the
   * similarity it would serve from and its guards); the second search decides as any other, so a
   * wait that finds nothing servable ends in the request's own load. Needs `coalesce`.
   * `false` turns it off. @default { maxWaitMs: 10_000 }
   */
  joinSimilar?: false | { readonly maxWaitMs?: number | undefined } | undefined;
  /** On a lower-layer hit, copy the entry into the layers above it. @default true */
  backfill?: boolean | undefined;
  /**
   * Also copy semantic hits into the layers above, under the asking request's exact key.
   * Off by default: a semantic hit is a judgement (threshold + guards); copying it freezes that
   * judgement — right or wrong — for the entry's whole TTL, beyond the reach of later guard or
   * threshold changes. Repeats still hit the semantic layer cheaply (its embedding cache).
   * @default false
   */
  backfillSemanticHits?: boolean | undefined;
  /** Similarity threshold passed to semantic layers (their own default when unset). */
  semanticThreshold?: number | undefined;
  /**
   * USD per 1M tokens per model (longest-prefix match), for the savings in `stats()`. Core has no
   * built-in prices: the adapters publish their providers' list prices (`OPENAI_PRICES` from
   * `@strata-cache/openai`, `ANTHROPIC_PRICES` from `@strata-cache/anthropic`). Hits on a model
   * without a price are counted in `unpricedHits`.
   */
  prices?: PriceTable | undefined;
  /** Rethrow layer errors instead of treating them as misses. For tests and debugging. @default false */
  throwOnLayerError?: boolean | undefined;
  /** Cross-process invalidation channel (e.g. the Redis layer's). */
  bus?: InvalidationBus | undefined;
  /**
   * Cross-process coalescing of misses (e.g. the Redis layer's lock): N processes missing the
   * same key make one loader call. Consulted only for misses whose result will be stored.
   * @default undefined (in-process coalescing only)
   */
  coordinator?: LoadCoordinator | undefined;
  plugins?: readonly CachePlugin[] | undefined;
  /**
   * How long an invalidation's watermark is kept precisely, ms. Past it, a key or tag watermark is
   * folded into a watermark of its whole tenant+namespace (unscoped tags: of everything), which
   * refuses every entry of the scope stamped before it — so keep it above your longest TTL: an
   * entry older than it is refused once a purge of its scope has aged out.
   * @default 86_400_000 (24 hours)
   */
  watermarkRetentionMs?: number | undefined;
  /**
   * Most watermarks held per process (and in the bus's store): beyond it, the oldest are folded
   * as above. About 150 bytes each. @default 100_000
   */
  maxWatermarks?: number | undefined;
  /** Clock, for tests. @default Date.now */
  now?: (() => number) | undefined;
}

/** Per-call options of `getOrLoad`, `lookup`, `begin`, `wrap` (validated like the constructor's). */
export interface CallOptions {
  scope?: ScopeInput | undefined;
  profile?: RequestProfile | undefined;
  /** Skip the cache entirely: no read, no write. */
  bypass?: boolean | undefined;
  /** Skip the read, call the loader, store the fresh result. */
  forceRefresh?: boolean | undefined;
  /** Read, but do not store the loader's result. */
  noStore?: boolean | undefined;
  /** TTL for the stored entry (ms, positive and finite). */
  ttlMs?: number | undefined;
  /** Extra tags for the stored entry (an array of non-empty strings). */
  tags?: readonly string[] | undefined;
  /** `false` skips semantic layers; a number overrides the similarity threshold. */
  semantic?: boolean | { threshold?: number | undefined } | undefined;
}

/** `store()` options: a call's, plus the race check and usage accounting. */
export interface StoreOptions extends CallOptions {
  /**
   * The `currentEpoch` (or `PendingLoad.epoch`) read when the answer's load began: the write is
   * dropped when an invalidation since then covered its key, tags or scope.
   */
  sinceEpoch?: number | undefined;
  /** `false` for a second copy of an answer whose upstream call was already counted. @default true */
  recordUsage?: boolean | undefined;
}

/** `wrap()` / `memoize()` options. */
export interface WrapOptions<A extends unknown[]> extends Omit<CallOptions, 'profile'> {
  /** Keeps two functions' keys apart. @default the function's name */
  name?: string | undefined;
  /** Maps the arguments to what is keyed. @default the arguments */
  key?: ((...args: A) => unknown) | undefined;
}

const LOADED = Symbol.for('strata-cache.loaded');

/** A loader's result with the metadata the cache stores beside it. Build it with `loaded()`. */
export interface Loaded<T> {
  readonly [LOADED]: true;
  readonly value: T;
  readonly usage?: TokenUsage | undefined;
  readonly model?: string | undefined;
  readonly chunks?: unknown[] | undefined;
  readonly tags?: readonly string[] | undefined;
  readonly ttlMs?: number | undefined;
  readonly meta?: Record<string, unknown> | undefined;
  /** False for incomplete results (truncated stream, partial answer): returned, never stored. @default true */
  readonly complete?: boolean | undefined;
}

/** Wraps a loader's value with what the cache stores beside it; the fields are checked here. */
export function loaded<T>(value: T, meta: Omit<Loaded<T>, typeof LOADED | 'value'> = {}): Loaded<T> {
  if (meta.ttlMs !== undefined && !(typeof meta.ttlMs === 'number' && meta.ttlMs > 0 && Number.isFinite(meta.ttlMs))) {
    throw new InvalidOptionError('@strata-cache/core: loaded() field "ttlMs" must be a positive finite number of milliseconds', { field: 'ttlMs' });
  }
  if (meta.tags !== undefined && !isTagList(meta.tags)) {
    throw new InvalidOptionError('@strata-cache/core: loaded() field "tags" must be an array of non-empty strings', { field: 'tags' });
  }
  if (meta.chunks !== undefined && !Array.isArray(meta.chunks)) {
    throw new InvalidOptionError('@strata-cache/core: loaded() field "chunks" must be an array', { field: 'chunks' });
  }
  return { [LOADED]: true, value, ...meta };
}

export function isLoaded<T>(v: unknown): v is Loaded<T> {
  return typeof v === 'object' && v !== null && (v as Record<symbol, unknown>)[LOADED] === true;
}

export function isTagList(tags: unknown): tags is readonly string[] {
  if (!Array.isArray(tags)) return false;
  for (let i = 0; i < tags.length; i++) if (typeof tags[i] !== 'string' || tags[i] === '') return false;
  return true;
}

export type Loader<T> = (ctx: { key: CacheKey; scope: Scope }) => Promise<T | Loaded<T>> | T | Loaded<T>;

export interface CacheResult<T> {
  readonly value: T;
  readonly status: 'hit' | 'miss' | 'bypass';
  readonly key: CacheKey;
  /** Layer that answered a hit. */
  readonly layer?: string | undefined;
  /** For semantic hits. */
  readonly similarity?: number | undefined;
  readonly matchedText?: string | undefined;
  /** Age of the entry that answered, ms. */
  readonly ageMs?: number | undefined;
  /** True when this caller joined another caller's load instead of loading. */
  readonly coalesced?: boolean | undefined;
  /**
   * True when this caller waited for a similar request's load in flight (`joinSimilar`) and was
   * served its answer (a semantic hit: `similarity`, `matchedKey`).
   */
  readonly joinedSimilar?: boolean | undefined;
  /**
   * Semantic candidates turned down during this lookup (by a guard, the selector, or the
   * threshold — the nearest one below it): on misses, this is why the cache did not answer.
   */
  readonly rejected?: readonly RejectedCandidate[] | undefined;
  readonly entry?: CacheEntry<T> | undefined;
  /** For semantic hits: the key of the stored entry that answered (`key` is the request's own). */
  readonly matchedKey?: CacheKey | undefined;
  /** True when a calibrating semantic layer served this hit (its decision is in `calibration`). */
  readonly calibrated?: boolean | undefined;
  /**
   * A calibrating semantic layer's decision for this request: on a hit, the trust it served with;
   * on a miss, `shadow` (a would-be hit audited: the fresh answer was served) or `miss`.
   * Pass the result to `cache.feedback()` to report a wrong answer.
   */
  readonly calibration?: CalibrationInfo | undefined;
  /**
   * Whether a miss's result is in a layer: true once a write landed (an in-process layer's at
   * once; otherwise core waited for the first remote write to be acknowledged).
   */
  readonly stored?: boolean | undefined;
  /** For `bypass`: why the cache was skipped (the policy's reason, or `bypass option`). */
  readonly reason?: string | undefined;
}

export interface LookupHit<T = unknown> {
  /** The key of the entry that answered (for a semantic hit, the stored entry's, not the request's). */
  readonly key: CacheKey;
  readonly entry: CacheEntry<T>;
  readonly layer: string;
  readonly similarity?: number | undefined;
  readonly matchedText?: string | undefined;
  readonly ageMs: number;
  readonly rejected?: readonly RejectedCandidate[] | undefined;
  /** Set when a calibrating semantic layer served it. */
  readonly calibration?: CalibrationInfo | undefined;
}

/** A calibrating layer's decision, with the layer that made it. */
export interface CalibrationInfo extends CalibrationNote {
  readonly layer: string;
}

/** What `cache.feedback()` did. */
export interface FeedbackResult {
  /**
   * - `evicted`: a wrong answer was removed from every layer (and, with a bus, every process);
   * - `recorded`: a right answer counted as evidence by the calibrating layer that served it;
   * - `ignored`: nothing to do (a miss — the answer came from upstream — or a right exact hit).
   */
  readonly action: 'evicted' | 'recorded' | 'ignored';
  /** Entries removed per layer (for `evicted`). */
  readonly layers?: Readonly<Record<string, number>> | undefined;
}

export interface InvalidationResult {
  /**
   * Entries removed per layer that was reached (a layer that cannot count reports what it can;
   * layers a tag or version purge does not concern report 0). A layer that could not be reached
   * is not here: it is in `unreached`.
   */
  readonly layers: Readonly<Record<string, number>>;
  /**
   * Layers the purge could not reach (an error, or over budget: e.g. `['redis']` while Redis is
   * down). Core retries them until done; meanwhile the watermark keeps what they hold from being
   * served. Empty when every layer was reached.
   */
  readonly unreached: readonly string[];
  readonly message: InvalidationMessage;
  /**
   * The invalidation's watermark, on the bus clock: every entry the message covers whose stamp
   * (when its load began) is at or below it is refused, in any layer, by every process that knows
   * the watermark.
   */
  readonly at: number;
  /**
   * The bus's store acknowledged the watermark: the purge now holds across restarts and snapshot
   * restores, and processes that missed the message load it. False without a durable bus, for
   * remote invalidations, and while the store cannot be reached.
   */
  readonly durable: boolean;
  /**
   * Part of this invalidation is not done yet — a layer not reached, the bus message not
   * published, or the watermark not stored — and core keeps retrying it (see
   * `cache.invalidationStatus()`; `flush()` waits for it within `closeTimeoutMs`).
   */
  readonly pending: boolean;
}

/**
 * Everything a cache reports, as events (`cache.on(name, listener)`): the one way to observe
 * it. An `error` event without a listener is dropped, never thrown.
 */
export interface CacheEvents {
  /** `calibrated`: a calibrating semantic layer served it; `boundary`: that neighbourhood's learned similarity boundary. */
  hit: [{ key: CacheKey; layer: string; latencyMs: number; similarity?: number; ageMs: number; calibrated?: boolean; boundary?: number }];
  /** `shadowCheck`: a would-be semantic hit re-asked upstream to audit the calibration. */
  miss: [{ key: CacheKey; latencyMs: number; reason?: string; rejected?: readonly RejectedCandidate[]; shadowCheck?: boolean }];
  set: [{ key: CacheKey; layers: string[] }];
  error: [{ error: StrataError; layer?: string; operation: string }];
  /** Semantic candidates a layer turned down (the same list the miss result's `rejected` carries). */
  reject: [{ key: CacheKey; layer: string; rejected: readonly RejectedCandidate[] }];
  invalidate: [InvalidationResult & { origin: 'local' | 'remote' }];
  skipWrite: [{ key: CacheKey; reason: string }];
  /** The first request the policy skipped for this reason (once per reason; `stats().policySkips` counts all). */
  policySkip: [{ key: CacheKey; reason: string }];
}

/** The request-scoped record every step of one call reads, built once per call. */
export interface Call {
  readonly request: unknown;
  readonly profile: RequestProfile;
  readonly scope: Scope;
  readonly key: CacheKey;
  readonly decision: ResolvedDecision;
  readonly options: CallOptions;
  /** `performance.now()` when the call began. */
  readonly started: number;
  /** Whether a loaded result will be written (decision.write and not noStore). */
  readonly write: boolean;
  /** The semantic descriptor, computed on first use (undefined when the request has none). */
  readonly semantic: SemanticDescriptor | undefined;
  /** Candidates the semantic layers turned down while this call read them. */
  rejected: RejectedCandidate[] | undefined;
  /** Decisions of calibrating semantic layers while this call read them. */
  calibrations: CalibrationInfo[] | undefined;
}
