import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { InvalidationBus, InvalidationEnvelope, InvalidationMessage } from './bus.js';
import type { LoadCoordinator, LoadTicket } from './coordinator.js';
import { type CacheEntry, type TokenUsage, isExpired } from './entry.js';
import { InvalidOptionError, LayerError, LayerTimeoutError, StrataError } from './errors.js';
import { type CacheKey, type SemanticDescriptor, computeKey, computeSemantic } from './fingerprint.js';
import { type Layer, LAYER_SPECIFICATION_VERSION, type RejectedCandidate, type SemanticSearchResult, isPromiseLike } from './layer.js';
import { type RequestProfile, chatProfile, genericProfile } from './profile.js';
import { type Scope, type ScopeInput, resolveScope, scopeBaseId } from './scope.js';
import {
  DEFAULT_PRICES,
  LayerStats,
  type PriceTable,
  type StatsSnapshot,
  costUsd,
  findPrice,
  projectMonthlySavings,
  providerCacheSavingsUsd,
} from './stats.js';

/** One layer in the stack, with its own settings. */
export interface LayerConfig {
  layer: Layer;
  /** Time budget per operation for this layer (async layers only). @default MultiLayerCacheOptions.budgetMs */
  budgetMs?: number;
  /** Read from this layer. @default true */
  read?: boolean;
  /** Write misses and backfills to this layer. @default true */
  write?: boolean;
}

/** What to do with one request. */
export interface PolicyDecision {
  /** Look the request up. @default true */
  read?: boolean;
  /** Store the loader's result. @default true */
  write?: boolean;
  /** TTL for what gets stored. */
  ttlMs?: number;
  /** Extra tags for what gets stored. */
  tags?: readonly string[];
  /** Why (shown in events and results). */
  reason?: string;
}

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
  /** Layers in lookup order, fastest first. */
  layers: ReadonlyArray<Layer | LayerConfig>;
  /** TTL of stored entries in ms; `null` for no expiry. @default 3_600_000 (1 hour) */
  defaultTtlMs?: number | null;
  /** Time budget for one operation of an async layer, in ms. @default 50 */
  budgetMs?: number;
  /** Scope of calls that do not name one. @default { tenant: 'default', namespace: 'default' } */
  scope?: ScopeInput;
  /** How requests are fingerprinted. @default chatProfile */
  profile?: RequestProfile;
  /** Which requests are cached. @default 'deterministic' */
  policy?: CachePolicy;
  /** Concurrent identical misses share one loader call. @default true */
  coalesce?: boolean;
  /** On a lower-layer hit, copy the entry into the layers above it. @default true */
  backfill?: boolean;
  /**
   * Also copy semantic hits into the layers above, under the asking request's exact key.
   * Off by default: a semantic hit is a judgement (threshold + guards); copying it freezes that
   * judgement — right or wrong — for the entry's whole TTL, beyond the reach of later guard or
   * threshold changes. Repeats still hit the semantic layer cheaply (its embedding cache).
   * @default false
   */
  backfillSemanticHits?: boolean;
  /** Similarity threshold passed to semantic layers (their own default when unset). */
  semanticThreshold?: number;
  /** USD per 1M tokens, merged over DEFAULT_PRICES. */
  prices?: PriceTable;
  /** Rethrow layer errors instead of treating them as misses. For tests and debugging. @default false */
  throwOnLayerError?: boolean;
  /** Cross-process invalidation channel (e.g. the Redis layer's). */
  bus?: InvalidationBus;
  /**
   * Cross-process coalescing of misses (e.g. the Redis layer's lock): N processes missing the
   * same key make one loader call. Consulted only for misses whose result will be stored.
   * @default undefined (in-process coalescing only)
   */
  coordinator?: LoadCoordinator;
  plugins?: readonly CachePlugin[];
  /** Clock, for tests. @default Date.now */
  now?: () => number;
}

export interface CallOptions {
  scope?: ScopeInput;
  profile?: RequestProfile;
  /** Skip the cache entirely: no read, no write. */
  bypass?: boolean;
  /** Skip the read, call the loader, store the fresh result. */
  forceRefresh?: boolean;
  /** Read, but do not store the loader's result. */
  noStore?: boolean;
  /** TTL for the stored entry (ms). */
  ttlMs?: number;
  /** Extra tags for the stored entry. */
  tags?: readonly string[];
  /** `false` skips semantic layers; a number overrides the similarity threshold. */
  semantic?: boolean | { threshold?: number };
}

/** A loader's result with the metadata the cache stores beside it. Build it with `loaded()`. */
export interface Loaded<T> {
  readonly [LOADED]: true;
  readonly value: T;
  readonly usage?: TokenUsage;
  readonly model?: string;
  readonly chunks?: unknown[];
  readonly tags?: readonly string[];
  readonly ttlMs?: number;
  readonly meta?: Record<string, unknown>;
  /** False for incomplete results (truncated stream, partial answer): returned, never stored. @default true */
  readonly complete?: boolean;
}

const LOADED = Symbol.for('strata-cache.loaded');

export function loaded<T>(value: T, meta: Omit<Loaded<T>, typeof LOADED | 'value'> = {}): Loaded<T> {
  return { [LOADED]: true, value, ...meta };
}

function isLoaded<T>(v: unknown): v is Loaded<T> {
  return typeof v === 'object' && v !== null && (v as Record<symbol, unknown>)[LOADED] === true;
}

export type Loader<T> = (ctx: { key: CacheKey; scope: Scope }) => Promise<T | Loaded<T>> | T | Loaded<T>;

export interface CacheResult<T> {
  readonly value: T;
  readonly status: 'hit' | 'miss' | 'bypass';
  readonly key: CacheKey;
  /** Layer that answered a hit. */
  readonly layer?: string;
  /** For semantic hits. */
  readonly similarity?: number;
  readonly matchedText?: string;
  /** Age of the entry that answered, ms. */
  readonly ageMs?: number;
  /** True when this miss joined another caller's loader call. */
  readonly coalesced?: boolean;
  /** Semantic candidates that guards turned down during this lookup. */
  readonly rejected?: readonly RejectedCandidate[];
  readonly entry?: CacheEntry<T>;
  /** Whether a miss's result was written to the layers. */
  readonly stored?: boolean;
}

export interface LookupHit<T = unknown> {
  readonly key: CacheKey;
  readonly entry: CacheEntry<T>;
  readonly layer: string;
  readonly similarity?: number;
  readonly matchedText?: string;
  readonly ageMs: number;
  readonly rejected?: readonly RejectedCandidate[];
}

export interface InvalidationResult {
  /** Entries removed per layer (a layer that cannot count reports what it can). */
  readonly layers: Readonly<Record<string, number>>;
  readonly message: InvalidationMessage;
}

export interface CacheEvents {
  hit: [{ key: CacheKey; layer: string; latencyMs: number; similarity?: number; ageMs: number }];
  miss: [{ key: CacheKey; latencyMs: number; reason?: string }];
  set: [{ key: CacheKey; layers: string[] }];
  error: [{ error: StrataError; layer?: string; operation: string }];
  reject: [{ key: CacheKey; layer: string; rejected: readonly RejectedCandidate[] }];
  invalidate: [InvalidationResult & { origin: 'local' | 'remote' }];
  skipWrite: [{ key: CacheKey; reason: string }];
}

interface ResolvedLayer {
  readonly layer: Layer;
  readonly name: string;
  readonly budgetMs: number;
  readonly read: boolean;
  readonly write: boolean;
  readonly semantic: boolean;
  readonly stats: LayerStats;
}

/** Invalidation records kept beyond what in-flight loads need (for late `store(…, { sinceEpoch })` calls). */
const INVALIDATION_LOG_KEEP = 1024;

const FAILED = Symbol('failed');
type Failed = typeof FAILED;

interface InvalidationRecord {
  readonly epoch: number;
  readonly message: InvalidationMessage;
}

/**
 * Ordered cache layers behind one read-through call.
 *
 * Never fails a request because of a layer: a layer that throws, rejects or exceeds its
 * budget is a miss plus an `error` event. Loader errors pass through and are never stored.
 */
export class MultiLayerCache extends EventEmitter<CacheEvents> {
  readonly instanceId = randomUUID();
  private readonly layers: readonly ResolvedLayer[];
  private readonly hasSemantic: boolean;
  private readonly defaultTtlMs: number | undefined;
  private readonly defaultScope: Scope;
  private readonly profile: RequestProfile;
  private readonly policy: CachePolicy;
  private readonly coalesceEnabled: boolean;
  private readonly backfillEnabled: boolean;
  private readonly backfillSemanticHits: boolean;
  private readonly semanticThreshold: number | undefined;
  private readonly prices: PriceTable;
  private readonly throwOnLayerError: boolean;
  private readonly plugins: CachePlugin[];
  private readonly now: () => number;
  private readonly bus: InvalidationBus | undefined;
  private readonly coordinator: LoadCoordinator | undefined;
  private unsubscribe: Promise<() => Promise<void>> | undefined;

  /** In-flight loads by key, with the invalidation epoch they started in. */
  private readonly inflight = new Map<string, { readonly promise: Promise<CacheResult<unknown>>; readonly epoch: number }>();
  private readonly versions = new Map<string, number>();
  private readonly pendingWrites = new Set<Promise<unknown>>();
  private epoch = 0;
  private invalidationLog: InvalidationRecord[] = [];
  /** Epoch of the newest pruned invalidation record (0: nothing pruned yet). */
  private invalidationLogFloor = 0;
  private readonly activeLoadEpochs = new Map<number, number>();
  private closed = false;

  private counters = {
    requests: 0,
    hits: 0,
    misses: 0,
    bypassed: 0,
    loaderCalls: 0,
    loaderErrors: 0,
    coalesced: 0,
    tokensSavedIn: 0,
    tokensSavedOut: 0,
    usdSaved: 0,
    providerCacheUsdSaved: 0,
    providerCachedTokens: 0,
    upstreamUsd: 0,
    upstreamTokens: 0,
    upstreamCallsWithUsage: 0,
    unpricedHits: 0,
  };

  constructor(options: MultiLayerCacheOptions) {
    super();
    if (typeof options !== 'object' || options === null) throw new InvalidOptionError('MultiLayerCache needs an options object with `layers`');
    const known = new Set([
      'layers', 'defaultTtlMs', 'budgetMs', 'scope', 'profile', 'policy', 'coalesce', 'backfill', 'backfillSemanticHits',
      'semanticThreshold', 'prices', 'throwOnLayerError', 'bus', 'coordinator', 'plugins', 'now',
    ]);
    for (const k of Object.keys(options)) {
      if (!known.has(k)) throw new InvalidOptionError(`@strata-cache/core: unknown MultiLayerCache option "${k}"`, { field: k });
    }
    if (!Array.isArray(options.layers)) throw new InvalidOptionError('@strata-cache/core: option "layers" must be an array of layers', { field: 'layers' });
    const budget = options.budgetMs ?? 50;
    checkPositive(budget, 'budgetMs');
    const names = new Set<string>();
    this.layers = options.layers.map((item, i) => {
      const cfg: LayerConfig = isLayer(item) ? { layer: item } : (item as LayerConfig);
      const layer = cfg?.layer;
      if (!isLayer(layer)) throw new InvalidOptionError(`@strata-cache/core: layers[${i}] is not a Strata layer (needs get/set/delete/clear)`, { field: `layers[${i}]` });
      if (layer.specificationVersion !== LAYER_SPECIFICATION_VERSION) {
        throw new InvalidOptionError(
          `@strata-cache/core: layer "${layer.name}" implements contract ${String(layer.specificationVersion)}, this core speaks ${LAYER_SPECIFICATION_VERSION}; upgrade the layer or core`,
          { field: `layers[${i}]` },
        );
      }
      if (names.has(layer.name)) throw new InvalidOptionError(`@strata-cache/core: two layers are named "${layer.name}"; give each a distinct name`, { field: `layers[${i}]` });
      names.add(layer.name);
      if (cfg.budgetMs !== undefined) checkPositive(cfg.budgetMs, `layers[${i}].budgetMs`);
      return {
        layer,
        name: layer.name,
        budgetMs: cfg.budgetMs ?? budget,
        read: cfg.read ?? true,
        write: cfg.write ?? true,
        semantic: layer.capabilities.semantic === true && typeof layer.search === 'function',
        stats: new LayerStats(),
      };
    });
    this.hasSemantic = this.layers.some((l) => l.semantic);
    if (options.defaultTtlMs === null) this.defaultTtlMs = undefined;
    else {
      this.defaultTtlMs = options.defaultTtlMs ?? 3_600_000;
      checkPositive(this.defaultTtlMs, 'defaultTtlMs');
    }
    this.defaultScope = resolveScope(options.scope);
    this.profile = options.profile ?? chatProfile;
    const policy = options.policy ?? 'deterministic';
    if (policy !== 'deterministic' && policy !== 'always' && typeof policy !== 'function') {
      throw new InvalidOptionError(`@strata-cache/core: option "policy" must be 'deterministic', 'always' or a function`, { field: 'policy' });
    }
    this.policy = policy;
    this.coalesceEnabled = options.coalesce ?? true;
    this.backfillEnabled = options.backfill ?? true;
    this.backfillSemanticHits = options.backfillSemanticHits ?? false;
    if (options.semanticThreshold !== undefined && !(options.semanticThreshold > -1 && options.semanticThreshold <= 1)) {
      throw new InvalidOptionError('@strata-cache/core: option "semanticThreshold" is a cosine similarity in (-1, 1]', { field: 'semanticThreshold' });
    }
    this.semanticThreshold = options.semanticThreshold;
    this.prices = { ...DEFAULT_PRICES, ...(options.prices ?? {}) };
    this.throwOnLayerError = options.throwOnLayerError ?? false;
    this.plugins = [...(options.plugins ?? [])];
    this.now = options.now ?? Date.now;
    this.bus = options.bus;
    if (options.coordinator !== undefined && typeof options.coordinator?.begin !== 'function') {
      throw new InvalidOptionError('@strata-cache/core: option "coordinator" must have a begin(key) method', { field: 'coordinator' });
    }
    this.coordinator = options.coordinator;
    if (this.bus) {
      this.unsubscribe = this.bus.subscribe((e) => this.onRemoteInvalidation(e));
      this.unsubscribe.catch((error) => this.emitError(error, 'bus', 'subscribe'));
    }
  }

  /** Names of the layers, in lookup order. */
  get layerNames(): string[] {
    return this.layers.map((l) => l.name);
  }

  /** The layer objects, in lookup order (for admin tools such as scans). */
  get layerInstances(): Layer[] {
    return this.layers.map((l) => l.layer);
  }

  /** Resolves once the invalidation bus (if any) is subscribed. */
  async ready(): Promise<void> {
    if (this.unsubscribe) await this.unsubscribe;
  }

  use(plugin: CachePlugin): this {
    this.plugins.push(plugin);
    return this;
  }

  /** The scope a call will use, with the current version of its tenant+namespace. */
  resolveScope(input?: ScopeInput): Scope {
    const s = input === undefined ? this.defaultScope : resolveScope(input, this.defaultScope);
    const v = this.versions.get(scopeBaseId(s));
    return v !== undefined && v > s.version ? { tenant: s.tenant, namespace: s.namespace, version: v } : s;
  }

  /** The exact key of a request under this cache's settings. */
  keyFor(request: unknown, options: Pick<CallOptions, 'scope' | 'profile'> = {}): CacheKey {
    return computeKey(request, this.resolveScope(options.scope), options.profile ?? this.profile);
  }

  /**
   * Read-through: return the cached answer, or call `loader` once (however many identical
   * requests wait on it), store its result in every layer, and return it.
   */
  async getOrLoad<T>(request: unknown, loader: Loader<T>, options: CallOptions = {}): Promise<CacheResult<T>> {
    this.assertOpen();
    const started = performance.now();
    this.counters.requests++;
    const profile = options.profile ?? this.profile;
    const scope = this.resolveScope(options.scope);
    const key = computeKey(request, scope, profile);
    const decision = this.decide(request, profile, scope, options);

    if (options.bypass || (!decision.read && !decision.write)) {
      this.counters.bypassed++;
      const out = await this.runLoader(loader, key, scope, request, profile);
      return { value: out.value, status: 'bypass', key, stored: false };
    }

    if (decision.read && !options.forceRefresh) {
      const hit = await this.readThrough<T>(key, request, profile, scope, options);
      if (hit) {
        this.recordHit(hit, started);
        return {
          value: hit.entry.value,
          status: 'hit',
          key,
          layer: hit.layer,
          ageMs: hit.ageMs,
          entry: hit.entry,
          ...(hit.similarity !== undefined ? { similarity: hit.similarity, matchedText: hit.matchedText } : {}),
          ...(hit.rejected ? { rejected: hit.rejected } : {}),
        };
      }
    }

    const write = decision.write && !options.noStore;
    if (this.coalesceEnabled) {
      const flightId = (write ? 'w:' : 'n:') + key.id;
      const existing = this.inflight.get(flightId);
      // A load that began before an invalidation may return what the invalidation removed
      // (the old price, the old policy): a request arriving after it starts its own load.
      if (existing && existing.epoch === this.epoch) {
        this.counters.coalesced++;
        const shared = (await existing.promise) as CacheResult<T>;
        // The flight may have ended as a hit (another process loaded it, see coordinator): count what this caller got.
        if (shared.status === 'hit' && shared.entry) {
          this.recordHit({ key: shared.key, entry: shared.entry, layer: shared.layer ?? '', ageMs: shared.ageMs ?? 0 }, started);
        } else this.counters.misses++;
        return { ...shared, coalesced: true };
      }
      const epoch = this.epoch;
      const flight = { epoch, promise: this.loadCoordinated(request, loader, key, profile, scope, decision, write, options, started) as Promise<CacheResult<unknown>> };
      this.inflight.set(flightId, flight);
      try {
        return (await flight.promise) as CacheResult<T>;
      } finally {
        if (this.inflight.get(flightId) === flight) this.inflight.delete(flightId);
      }
    }
    return this.loadCoordinated(request, loader, key, profile, scope, decision, write, options, started);
  }

  /** Read only: the cached entry for a request, or undefined. Does not call any loader. */
  async lookup<T = unknown>(request: unknown, options: CallOptions = {}): Promise<LookupHit<T> | undefined> {
    this.assertOpen();
    const started = performance.now();
    this.counters.requests++;
    const profile = options.profile ?? this.profile;
    const scope = this.resolveScope(options.scope);
    const key = computeKey(request, scope, profile);
    const decision = this.decide(request, profile, scope, options);
    if (options.bypass || !decision.read || options.forceRefresh) {
      this.counters.bypassed++;
      return undefined;
    }
    const hit = await this.readThrough<T>(key, request, profile, scope, options);
    if (hit) this.recordHit(hit, started);
    else {
      this.counters.misses++;
      this.emit('miss', { key, latencyMs: performance.now() - started });
    }
    return hit;
  }

  /** The current invalidation epoch; pass it to `store` to drop a write that raced an invalidation. */
  get currentEpoch(): number {
    return this.epoch;
  }

  /**
   * Write a result (e.g. a completed stream) to every layer. Returns false when it was not
   * stored (policy, incomplete, or an invalidation since `sinceEpoch` touched it).
   */
  async store<T>(request: unknown, result: T | Loaded<T>, options: CallOptions & { sinceEpoch?: number; recordUsage?: boolean } = {}): Promise<boolean> {
    this.assertOpen();
    const profile = options.profile ?? this.profile;
    const scope = this.resolveScope(options.scope);
    const key = computeKey(request, scope, profile);
    const decision = this.decide(request, profile, scope, options);
    if (options.bypass || !decision.write || options.noStore) return false;
    const out = isLoaded<T>(result) ? result : loaded(result);
    const usage = out.usage;
    // recordUsage: false stores a second copy of an answer (e.g. a stream also kept in its
    // non-stream form) whose upstream call was already counted.
    if (usage && options.recordUsage !== false) this.recordUpstream(usage, out.model ?? profile.model?.(request));
    return this.writeEntry(key, request, profile, scope, decision, out, options, options.sinceEpoch ?? this.epoch);
  }

  /**
   * Memoise any async function (a retrieval + LLM chain, a tool call). Arguments must be
   * JSON-like; `name` keeps two functions' keys apart.
   */
  wrap<A extends unknown[], R>(
    fn: (...args: A) => Promise<R> | R,
    options: Omit<CallOptions, 'profile'> & { name?: string; key?: (...args: A) => unknown } = {},
  ): (...args: A) => Promise<R> {
    const name = options.name ?? fn.name;
    if (!name) throw new InvalidOptionError('@strata-cache/core: wrap() of an anonymous function needs options.name, so its keys cannot collide with another function', { field: 'name' });
    const { name: _n, key: keyOf, ...call } = options;
    const profile = genericProfile;
    return async (...args: A) => {
      const request = { fn: name, args: keyOf ? keyOf(...args) : args };
      const r = await this.getOrLoad<R>(request, () => fn(...args), { ...call, profile });
      return r.value;
    };
  }

  /** Alias of `wrap`. */
  memoize<A extends unknown[], R>(fn: (...args: A) => Promise<R> | R, options: Omit<CallOptions, 'profile'> & { name?: string; key?: (...args: A) => unknown } = {}) {
    return this.wrap(fn, options);
  }

  // ---------------------------------------------------------------- invalidation

  /** Removes one request's entry from every layer of this and (via the bus) every process. */
  async invalidateKey(request: unknown, options: Pick<CallOptions, 'scope' | 'profile'> = {}): Promise<InvalidationResult> {
    const key = this.keyFor(request, options);
    return this.invalidateCacheKey(key);
  }

  async invalidateCacheKey(key: CacheKey): Promise<InvalidationResult> {
    const message: InvalidationMessage = { type: 'key', keyId: key.id, scope: key.scope };
    this.logInvalidation(message);
    const counts: Record<string, number> = {};
    await Promise.all(
      this.layers.map(async (l) => {
        const r = await this.guard(l, 'delete', () => l.layer.delete(key));
        counts[l.name] = r === FAILED ? 0 : r ? 1 : 0;
      }),
    );
    return this.finishInvalidation(message, counts);
  }

  /** Removes every entry carrying `tag` (optionally only in one tenant+namespace). */
  async invalidateTag(tag: string, options: { scope?: ScopeInput } = {}): Promise<InvalidationResult> {
    if (typeof tag !== 'string' || tag === '') throw new InvalidOptionError('@strata-cache/core: invalidateTag needs a non-empty tag string', { field: 'tag' });
    const scope = options.scope === undefined ? undefined : baseOf(resolveScope(options.scope, this.defaultScope));
    const message: InvalidationMessage = scope ? { type: 'tag', tag, scope } : { type: 'tag', tag };
    this.logInvalidation(message);
    const counts = await this.applyToLayers(message, false);
    return this.finishInvalidation(message, counts);
  }

  /**
   * Makes every entry of the scope's current version unreachable at once by moving the
   * tenant+namespace to a new version. Old entries expire on their own (layers that can,
   * also drop them now). Returns the new version.
   */
  async bumpScopeVersion(scopeInput?: ScopeInput): Promise<{ version: number; result: InvalidationResult }> {
    const current = this.resolveScope(scopeInput);
    const next: Scope = { tenant: current.tenant, namespace: current.namespace, version: current.version + 1 };
    this.versions.set(scopeBaseId(next), next.version);
    const message: InvalidationMessage = { type: 'scope-version', scope: next };
    this.logInvalidation(message);
    const counts = await this.applyToLayers(message, false);
    return { version: next.version, result: await this.finishInvalidation(message, counts) };
  }

  /** Sets the known version of a tenant+namespace (e.g. read from shared storage at start-up). */
  setScopeVersion(scope: ScopeInput, version: number): void {
    const s = resolveScope(scope, this.defaultScope);
    if (!Number.isSafeInteger(version) || version < 0) throw new InvalidOptionError('scope version must be a non-negative integer', { field: 'version' });
    const base = scopeBaseId(s);
    if ((this.versions.get(base) ?? -1) < version) this.versions.set(base, version);
  }

  /** Removes every entry of a tenant+namespace, or everything the layers own. */
  async clear(scopeInput?: ScopeInput): Promise<InvalidationResult> {
    const scope = scopeInput === undefined ? undefined : baseOf(resolveScope(scopeInput, this.defaultScope));
    const message: InvalidationMessage = scope ? { type: 'clear', scope } : { type: 'clear' };
    this.logInvalidation(message);
    const counts = await this.applyToLayers(message, false);
    return this.finishInvalidation(message, counts);
  }

  /** Resolves when background writes and backfills started so far have settled. */
  async flush(): Promise<void> {
    while (this.pendingWrites.size > 0) await Promise.allSettled([...this.pendingWrites]);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
    if (this.unsubscribe) {
      try {
        await (await this.unsubscribe)();
      } catch (error) {
        this.emitError(error, 'bus', 'unsubscribe');
      }
    }
    for (const l of this.layers) {
      if (l.layer.close) {
        try {
          await l.layer.close();
        } catch (error) {
          this.emitError(error, l.name, 'close');
        }
      }
    }
  }

  // ---------------------------------------------------------------- statistics

  stats(): StatsSnapshot {
    const c = this.counters;
    const layers: Record<string, ReturnType<LayerStats['snapshot']>> = {};
    for (const l of this.layers) layers[l.name] = l.stats.snapshot();
    const looked = c.hits + c.misses;
    return {
      requests: c.requests,
      hits: c.hits,
      misses: c.misses,
      hitRate: looked === 0 ? 0 : c.hits / looked,
      bypassed: c.bypassed,
      loaderCalls: c.loaderCalls,
      loaderErrors: c.loaderErrors,
      coalesced: c.coalesced,
      layers,
      tokensSaved: { input: c.tokensSavedIn, output: c.tokensSavedOut },
      usdSaved: c.usdSaved,
      providerCacheUsdSaved: c.providerCacheUsdSaved,
      providerCachedTokens: c.providerCachedTokens,
      upstreamUsd: c.upstreamUsd,
      unpricedHits: c.unpricedHits,
    };
  }

  /**
   * Monthly savings from the seed formula `daily_requests × hit_rate × tokens/1e6 × price × 30`,
   * with hit rate, tokens per request and blended price taken from what this cache observed.
   */
  monthlyProjection(dailyRequests: number): { usd: number; hitRate: number; tokensPerRequest: number; pricePerMillion: number } {
    const s = this.stats();
    const c = this.counters;
    const tokensPerRequest = c.upstreamCallsWithUsage === 0 ? 0 : c.upstreamTokens / c.upstreamCallsWithUsage;
    const pricePerMillion = c.upstreamTokens === 0 ? 0 : (c.upstreamUsd / c.upstreamTokens) * 1e6;
    return {
      usd: projectMonthlySavings({ dailyRequests, hitRate: s.hitRate, tokensPerRequest, pricePerMillion }),
      hitRate: s.hitRate,
      tokensPerRequest,
      pricePerMillion,
    };
  }

  resetStats(): void {
    for (const k of Object.keys(this.counters) as Array<keyof typeof this.counters>) this.counters[k] = 0;
    for (const l of this.layers) {
      l.stats.hits = l.stats.misses = l.stats.errors = l.stats.timeouts = l.stats.writes = 0;
      l.stats.latency.reset();
    }
  }

  // ---------------------------------------------------------------- internals

  private assertOpen(): void {
    if (this.closed) throw new StrataError('STRATA_CLOSED', '@strata-cache/core: this MultiLayerCache is closed');
  }

  private decide(request: unknown, profile: RequestProfile, scope: Scope, options: CallOptions): Required<Pick<PolicyDecision, 'read' | 'write'>> & PolicyDecision {
    let d: PolicyDecision;
    const ctx: PolicyContext = { request, profile, scope };
    if (this.policy === 'always') d = {};
    else if (this.policy === 'deterministic') {
      const det = profile.isDeterministic ? profile.isDeterministic(request) : true;
      d = det ? {} : { read: false, write: false, reason: 'non-deterministic request (set temperature 0 or a seed, or use policy "always")' };
    } else {
      const r = this.policy(ctx);
      d = typeof r === 'boolean' ? { read: r, write: r } : r;
    }
    for (const p of this.plugins) {
      const pd = p.onRequest?.(ctx);
      if (pd) d = { ...d, ...pd, tags: [...(d.tags ?? []), ...(pd.tags ?? [])] };
    }
    return { ...d, read: d.read ?? true, write: d.write ?? true };
  }

  private async readThrough<T>(key: CacheKey, request: unknown, profile: RequestProfile, scope: Scope, options: CallOptions): Promise<LookupHit<T> | undefined> {
    let semantic: SemanticDescriptor | false | null = null; // null = not computed yet, false = none
    let rejected: RejectedCandidate[] | undefined;
    for (let i = 0; i < this.layers.length; i++) {
      const l = this.layers[i]!;
      if (!l.read) continue;
      let entry: CacheEntry | undefined;
      let hitKey = key;
      let similarity: number | undefined;
      let matchedText: string | undefined;
      const t0 = performance.now();
      if (l.semantic) {
        // Exact key first: an exact repeat needs no embedding, and requests that cannot be
        // matched by similarity (no semantic descriptor, or `semantic: false`) still find the
        // entries this layer holds under their exact key.
        const x = this.guard(l, 'get', () => l.layer.get(key, l.layer.capabilities.remote ? { deadline: this.now() + l.budgetMs } : undefined));
        const exact: CacheEntry | undefined | Failed = isPromiseLike(x) ? await x : x;
        if (exact !== FAILED && exact && !isExpired(exact, this.now())) entry = exact;
        else if (options.semantic !== false && (semantic ??= computeSemantic(request, scope, profile) ?? false) !== false) {
          const descriptor: SemanticDescriptor = semantic;
          const threshold = typeof options.semantic === 'object' ? options.semantic.threshold : this.semanticThreshold;
          const query = { ...descriptor, scope, ...(threshold !== undefined ? { threshold } : {}) };
          const r = await this.guard<SemanticSearchResult>(l, 'search', () => l.layer.search!(query, { deadline: this.now() + l.budgetMs }));
          if (r === FAILED) continue;
          if (r.rejected && r.rejected.length > 0) {
            (rejected ??= []).push(...r.rejected);
            this.emit('reject', { key, layer: l.name, rejected: r.rejected });
          }
          if (r.hit) {
            if (r.hit.key.scopeId !== key.scopeId) {
              this.emitError(new LayerError(l.name, 'search', `layer "${l.name}" returned an entry of another scope; discarded`), l.name, 'search');
              l.stats.misses++;
              continue;
            }
            entry = r.hit.entry;
            hitKey = r.hit.key;
            similarity = r.hit.similarity;
            matchedText = r.hit.text;
          }
        }
      } else {
        // Sync layers (L1) skip the promise and timer machinery entirely; guard() still
        // catches a synchronous throw.
        const r = this.guard(l, 'get', () => l.layer.get(key, l.layer.capabilities.remote ? { deadline: this.now() + l.budgetMs } : undefined));
        const got: CacheEntry | undefined | Failed = isPromiseLike(r) ? await r : r;
        if (got === FAILED) continue;
        entry = got;
      }
      l.stats.latency.record(performance.now() - t0);
      const now = this.now();
      if (!entry || isExpired(entry, now)) {
        l.stats.misses++;
        if (entry && !l.semantic) this.background(l, 'delete', () => l.layer.delete(key));
        continue;
      }
      if (!this.acceptHit(request, profile, scope, hitKey, entry, l.name, now)) {
        l.stats.misses++;
        continue;
      }
      l.stats.hits++;
      if (this.backfillEnabled && i > 0 && (similarity === undefined || this.backfillSemanticHits)) this.backfill(i, key, entry);
      return {
        key: hitKey,
        entry: entry as CacheEntry<T>,
        layer: l.name,
        ageMs: now - entry.createdAt,
        ...(similarity !== undefined ? { similarity, matchedText } : {}),
        ...(rejected ? { rejected } : {}),
      };
    }
    return undefined;
  }

  private acceptHit(request: unknown, profile: RequestProfile, scope: Scope, key: CacheKey, entry: CacheEntry, layer: string, now: number): boolean {
    for (const p of this.plugins) {
      if (p.acceptHit && !p.acceptHit({ request, profile, scope, key, entry, layer, now })) return false;
    }
    return true;
  }

  private backfill(hitIndex: number, key: CacheKey, entry: CacheEntry): void {
    for (let j = 0; j < hitIndex; j++) {
      const upper = this.layers[j]!;
      if (!upper.write || upper.semantic) continue;
      this.background(upper, 'set', () => upper.layer.set(key, entry));
    }
  }

  private recordHit(hit: LookupHit<unknown>, started: number): void {
    this.counters.hits++;
    const usage = hit.entry.usage;
    if (usage) {
      this.counters.tokensSavedIn += usage.inputTokens;
      this.counters.tokensSavedOut += usage.outputTokens;
      const price = findPrice(this.prices, hit.entry.model);
      if (price) this.counters.usdSaved += costUsd(usage, price);
      else this.counters.unpricedHits++;
    }
    if (this.listenerCount('hit') > 0) {
      this.emit('hit', {
        key: hit.key,
        layer: hit.layer,
        latencyMs: performance.now() - started,
        ageMs: hit.ageMs,
        ...(hit.similarity !== undefined ? { similarity: hit.similarity } : {}),
      });
    }
  }

  private recordUpstream(usage: TokenUsage, model: string | undefined): void {
    this.counters.upstreamCallsWithUsage++;
    this.counters.upstreamTokens += usage.inputTokens + usage.outputTokens;
    this.counters.providerCachedTokens += usage.cachedInputTokens ?? 0;
    const price = findPrice(this.prices, model);
    if (price) {
      this.counters.upstreamUsd += costUsd(usage, price);
      this.counters.providerCacheUsdSaved += providerCacheSavingsUsd(usage, price);
    }
  }

  private async runLoader<T>(loader: Loader<T>, key: CacheKey, scope: Scope, request: unknown, profile: RequestProfile): Promise<Loaded<T>> {
    this.counters.loaderCalls++;
    let raw: T | Loaded<T>;
    try {
      raw = await loader({ key, scope });
    } catch (error) {
      this.counters.loaderErrors++;
      throw error;
    }
    const out = isLoaded<T>(raw) ? raw : loaded(raw);
    if (out.usage) this.recordUpstream(out.usage, out.model ?? profile.model?.(request));
    return out;
  }

  private async loadAndStore<T>(
    request: unknown,
    loader: Loader<T>,
    key: CacheKey,
    profile: RequestProfile,
    scope: Scope,
    decision: PolicyDecision,
    write: boolean,
    options: CallOptions,
    started: number,
    onWrites?: (writes: Promise<void>) => void,
  ): Promise<CacheResult<T>> {
    this.counters.misses++;
    const startEpoch = this.epoch;
    this.activeLoadEpochs.set(startEpoch, (this.activeLoadEpochs.get(startEpoch) ?? 0) + 1);
    try {
      if (this.listenerCount('miss') > 0) this.emit('miss', { key, latencyMs: performance.now() - started, ...(decision.reason ? { reason: decision.reason } : {}) });
      const out = await this.runLoader(loader, key, scope, request, profile);
      const stored = write ? await this.writeEntry(key, request, profile, scope, decision, out, options, startEpoch, onWrites) : false;
      return { value: out.value, status: 'miss', key, stored };
    } finally {
      const n = (this.activeLoadEpochs.get(startEpoch) ?? 1) - 1;
      if (n <= 0) this.activeLoadEpochs.delete(startEpoch);
      else this.activeLoadEpochs.set(startEpoch, n);
      this.pruneInvalidationLog();
    }
  }

  /** Builds the entry, applies plugins and the race check, starts the layer writes. */
  private async writeEntry<T>(
    key: CacheKey,
    request: unknown,
    profile: RequestProfile,
    scope: Scope,
    decision: PolicyDecision,
    out: Loaded<T>,
    options: CallOptions,
    sinceEpoch: number,
    onWrites?: (writes: Promise<void>) => void,
  ): Promise<boolean> {
    if (out.complete === false) {
      this.emit('skipWrite', { key, reason: 'incomplete result' });
      return false;
    }
    let ttlMs = options.ttlMs ?? out.ttlMs ?? decision.ttlMs ?? this.defaultTtlMs;
    let tags = uniq([...(decision.tags ?? []), ...(options.tags ?? []), ...(out.tags ?? [])]);
    const semantic = this.hasSemantic ? computeSemantic(request, scope, profile) : undefined;
    const model = out.model ?? profile.model?.(request);
    let entry: CacheEntry<T> = {
      value: out.value,
      createdAt: this.now(),
      tags,
      ...(ttlMs !== undefined ? { ttlMs } : {}),
      ...(out.chunks ? { chunks: out.chunks } : {}),
      ...(model ? { model } : {}),
      ...(out.usage ? { usage: out.usage } : {}),
      ...(semantic ? { semantic } : {}),
      ...(out.meta ? { meta: out.meta } : {}),
    };
    for (const p of this.plugins) {
      if (!p.beforeWrite) continue;
      const r = p.beforeWrite({ request, profile, scope, key, entry });
      if (r === false) {
        this.emit('skipWrite', { key, reason: `plugin ${p.name}` });
        return false;
      }
      if (r) {
        if (r.ttlMs !== undefined) ttlMs = ttlMs === undefined ? r.ttlMs : Math.min(ttlMs, r.ttlMs);
        if (r.tags) tags = uniq([...tags, ...r.tags]);
        entry = { ...entry, tags, ...(ttlMs !== undefined ? { ttlMs } : {}), ...(r.meta ? { meta: { ...(entry.meta ?? {}), ...r.meta } } : {}) };
      }
    }
    if (this.invalidatedSince(sinceEpoch, key, entry)) {
      this.emit('skipWrite', { key, reason: 'invalidated while loading' });
      return false;
    }
    const targets = this.layers.filter((l) => l.write);
    const writes = targets.map((l) => this.guard(l, 'set', () => l.layer.set(key, entry)));
    const tracked = Promise.all(writes).then((rs) => {
      const ok = targets.filter((_, i) => rs[i] !== FAILED).map((l) => l.name);
      for (const l of targets) if (ok.includes(l.name)) l.stats.writes++;
      if (this.listenerCount('set') > 0) this.emit('set', { key, layers: ok });
    });
    this.track(tracked);
    onWrites?.(tracked);
    return true;
  }

  /**
   * A miss whose result will be stored, under the cross-process coordinator when there is one:
   * either this process loads (and releases the others once its writes have landed), or it
   * receives the entry another process loaded meanwhile.
   */
  private async loadCoordinated<T>(
    request: unknown,
    loader: Loader<T>,
    key: CacheKey,
    profile: RequestProfile,
    scope: Scope,
    decision: PolicyDecision,
    write: boolean,
    options: CallOptions,
    started: number,
  ): Promise<CacheResult<T>> {
    const coordinator = this.coordinator;
    if (!coordinator || !write) return this.loadAndStore(request, loader, key, profile, scope, decision, write, options, started);
    let ticket: LoadTicket | undefined;
    try {
      ticket = await coordinator.begin(key);
    } catch (error) {
      this.emitError(error, 'coordinator', 'begin');
    }
    if (ticket?.kind === 'hit') {
      const now = this.now();
      const entry = ticket.entry as CacheEntry<T>;
      if (!isExpired(entry, now) && this.acceptHit(request, profile, scope, key, entry, ticket.layer, now)) {
        this.counters.coalesced++;
        const hit: LookupHit<T> = { key, entry, layer: ticket.layer, ageMs: now - entry.createdAt };
        this.recordHit(hit, started);
        if (this.backfillEnabled) {
          const from = ticket.layer;
          const at = this.layers.findIndex((l) => l.name === from);
          this.backfill(at < 0 ? this.layers.length : at, key, entry);
        }
        return { value: entry.value, status: 'hit', key, layer: ticket.layer, ageMs: hit.ageMs, entry, coalesced: true };
      }
      ticket = undefined;
    }
    if (ticket?.kind !== 'load') return this.loadAndStore(request, loader, key, profile, scope, decision, write, options, started);
    const lease = ticket;
    let writes: Promise<void> | undefined;
    let stored = false;
    try {
      const result = await this.loadAndStore(request, loader, key, profile, scope, decision, write, options, started, (w) => {
        writes = w;
      });
      stored = result.stored === true;
      return result;
    } finally {
      // Release after the writes have landed (they are bounded by the layers' budgets), without
      // delaying this caller.
      const release = (writes ?? Promise.resolve()).then(async () => {
        try {
          await lease.done({ stored });
        } catch (error) {
          this.emitError(error, 'coordinator', 'done');
        }
      });
      this.track(release);
    }
  }

  /** Runs a layer operation inside its time budget. Failure → FAILED + error event. */
  private guard<T>(l: ResolvedLayer, operation: string, fn: () => T | Promise<T>): T | Failed | Promise<T | Failed> {
    let r: T | Promise<T>;
    try {
      r = fn();
    } catch (error) {
      this.layerFailed(l, operation, error);
      return FAILED;
    }
    if (!isPromiseLike(r)) return r;
    return new Promise<T | Failed>((resolve, reject) => {
      const fail = (error: unknown) => {
        try {
          this.layerFailed(l, operation, error);
          resolve(FAILED);
        } catch (rethrown) {
          reject(rethrown);
        }
      };
      let done = false;
      const timer = setTimeout(() => {
        if (done) return;
        done = true;
        l.stats.timeouts++;
        fail(new LayerTimeoutError(l.name, operation, l.budgetMs));
      }, l.budgetMs);
      timer.unref?.();
      r.then(
        (v) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          resolve(v);
        },
        (error) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          fail(error);
        },
      );
    });
  }

  private layerFailed(l: ResolvedLayer, operation: string, error: unknown): void {
    l.stats.errors++;
    if (this.throwOnLayerError) throw error;
    this.emitError(error, l.name, operation);
  }

  private emitError(error: unknown, layer: string | undefined, operation: string): void {
    // An 'error' event with no listener would throw: a cache must not take the app down.
    if (this.listenerCount('error') === 0) return;
    const wrapped = StrataError.isInstance(error)
      ? error
      : new LayerError(layer ?? 'cache', operation, `${layer ?? 'cache'} ${operation} failed: ${(error as Error)?.message ?? String(error)}`, { cause: error });
    this.emit('error', { error: wrapped, ...(layer ? { layer } : {}), operation });
  }

  private background(l: ResolvedLayer, operation: string, fn: () => unknown): void {
    const r = this.guard(l, operation, fn);
    if (isPromiseLike(r)) this.track(r);
  }

  private track(p: Promise<unknown>): void {
    const t = p.catch(() => undefined).finally(() => this.pendingWrites.delete(t));
    this.pendingWrites.add(t);
  }

  // -------------------------------------------------------------- invalidation internals

  private logInvalidation(message: InvalidationMessage): void {
    this.epoch++;
    // Logged even with no load in flight: `store(…, { sinceEpoch })` callers (streams recorded by
    // the adapters) load outside core and are checked against this log too.
    this.invalidationLog.push({ epoch: this.epoch, message });
    if (this.invalidationLog.length > 2 * INVALIDATION_LOG_KEEP) this.pruneInvalidationLog();
  }

  /** Keeps what in-flight loads need, plus the most recent INVALIDATION_LOG_KEEP records. */
  private pruneInvalidationLog(): void {
    const log = this.invalidationLog;
    if (log.length <= INVALIDATION_LOG_KEEP) return;
    const oldestActive = this.activeLoadEpochs.size > 0 ? Math.min(...this.activeLoadEpochs.keys()) : Number.POSITIVE_INFINITY;
    let cut = log.length - INVALIDATION_LOG_KEEP;
    while (cut > 0 && log[cut - 1]!.epoch > oldestActive) cut--;
    if (cut === 0) return;
    this.invalidationLogFloor = log[cut - 1]!.epoch;
    this.invalidationLog = log.slice(cut);
  }

  /** Did an invalidation after `sinceEpoch` cover this key, its tags or its scope? */
  private invalidatedSince(sinceEpoch: number, key: CacheKey, entry: CacheEntry): boolean {
    if (this.epoch === sinceEpoch) return false;
    // The records after `sinceEpoch` were pruned: it cannot be shown safe, so it is not written.
    if (sinceEpoch < this.invalidationLogFloor) return true;
    for (const r of this.invalidationLog) {
      if (r.epoch <= sinceEpoch) continue;
      if (messageCovers(r.message, key, entry)) return true;
    }
    return false;
  }

  private async applyToLayers(message: InvalidationMessage, remote: boolean): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    await Promise.all(
      this.layers.map(async (l) => {
        if (remote && l.layer.capabilities.shared) return;
        let r: number | void | Failed = 0;
        switch (message.type) {
          case 'tag':
            if (l.layer.deleteByTag) r = await this.guard(l, 'deleteByTag', () => l.layer.deleteByTag!(message.tag, message.scope));
            break;
          case 'scope-version':
            if (l.layer.deleteOlderVersions) r = await this.guard(l, 'deleteOlderVersions', () => l.layer.deleteOlderVersions!(message.scope));
            break;
          case 'clear':
            r = await this.guard(l, 'clear', () => l.layer.clear(message.scope));
            break;
          case 'key': {
            const key: CacheKey = { ...keyFromId(message.keyId, message.scope) };
            const d = await this.guard(l, 'delete', () => l.layer.delete(key));
            r = d === FAILED ? 0 : d ? 1 : 0;
            break;
          }
        }
        counts[l.name] = typeof r === 'number' ? r : 0;
      }),
    );
    return counts;
  }

  private async finishInvalidation(message: InvalidationMessage, counts: Record<string, number>): Promise<InvalidationResult> {
    const result: InvalidationResult = { layers: counts, message };
    this.emit('invalidate', { ...result, origin: 'local' });
    if (this.bus) {
      try {
        await this.bus.publish({ origin: this.instanceId, sentAt: this.now(), message });
      } catch (error) {
        this.emitError(error, 'bus', 'publish');
      }
    }
    return result;
  }

  private onRemoteInvalidation(envelope: InvalidationEnvelope): void {
    if (envelope.origin === this.instanceId || this.closed) return;
    const message = envelope.message;
    if (message.type === 'scope-version') this.setScopeVersion(message.scope, message.scope.version);
    this.logInvalidation(message);
    const p = this.applyToLayers(message, true).then((counts) => {
      this.emit('invalidate', { layers: counts, message, origin: 'remote' });
    });
    this.track(p);
  }
}

function messageCovers(m: InvalidationMessage, key: CacheKey, entry: CacheEntry): boolean {
  switch (m.type) {
    case 'key':
      return m.keyId === key.id;
    case 'tag':
      return entry.tags.includes(m.tag) && (!m.scope || (m.scope.tenant === key.scope.tenant && m.scope.namespace === key.scope.namespace));
    case 'scope-version':
      return m.scope.tenant === key.scope.tenant && m.scope.namespace === key.scope.namespace && key.scope.version < m.scope.version;
    case 'clear':
      return !m.scope || (m.scope.tenant === key.scope.tenant && m.scope.namespace === key.scope.namespace);
  }
}

function keyFromId(id: string, scope: Scope): CacheKey {
  const m = /^v(\d+):([^:]*):([A-Za-z0-9_-]+)$/.exec(id);
  const sid = m?.[2] ?? '';
  return { schema: Number(m?.[1] ?? 0), scope, scopeId: sid, profile: '', hash: m?.[3] ?? '', id };
}

function baseOf(s: Scope): Pick<Scope, 'tenant' | 'namespace'> {
  return { tenant: s.tenant, namespace: s.namespace };
}

function uniq(xs: readonly string[]): string[] {
  return xs.length < 2 ? [...xs] : [...new Set(xs)];
}

function isLayer(x: unknown): x is Layer {
  const l = x as Layer;
  return (
    typeof l === 'object' && l !== null &&
    typeof l.get === 'function' && typeof l.set === 'function' && typeof l.delete === 'function' && typeof l.clear === 'function'
  );
}

function checkPositive(v: number, field: string): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
    throw new InvalidOptionError(`@strata-cache/core: option "${field}" must be a positive number of milliseconds`, { field });
  }
}
