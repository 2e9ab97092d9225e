import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { InvalidationBus, InvalidationMessage } from './bus.js';
import { CacheStats } from './cache-stats.js';
import { PendingObservations, applyFeedback, observeUpstream } from './calibration.js';
import { CallRecord } from './call.js';
import { CallPolicy } from './call-policy.js';
import { type CacheContext, emitError } from './context.js';
import type { LoadCoordinator } from './coordinator.js';
import { InvalidOptionError, StrataError, closedError } from './errors.js';
import { type CacheKey, computeKey } from './fingerprint.js';
import { InvalidationLog } from './invalidation-log.js';
import { Invalidator } from './invalidator.js';
import { type InvalidationStatus, InvalidationSync } from './invalidation-sync.js';
import { type FeedbackVerdict, type Layer, isPromiseLike } from './layer.js';
import { LayerRunner, type ResolvedLayer, resolveLayers } from './layer-runner.js';
import { type Begun, LoadPath, type PendingLoad } from './load-path.js';
import {
  CACHE_DEFAULTS,
  CACHE_OPTION_KEYS,
  type OptionSet,
  checkPositiveMs,
  checkProfile,
  checkThreshold,
  checkUnknownKeys,
  resolveJoinSimilar,
  validateCallOptions,
} from './options.js';
import { type RequestProfile, chatProfile, genericProfile } from './profile.js';
import { ReadPath } from './read-path.js';
import { DEFAULT_NAMESPACE, type Scope, type ScopeInput, resolveScope, scopeBaseId, scopeId } from './scope.js';
import type { StatsSnapshot } from './stats.js';
import {
  type CachePlugin,
  type CacheEvents,
  type CacheResult,
  type CallOptions,
  type FeedbackResult,
  type InvalidationResult,
  type Loaded,
  type Loader,
  type LookupHit,
  type MultiLayerCacheOptions,
  type StoreOptions,
  type WrapOptions,
  isLoaded,
  loaded,
} from './types.js';
import { WritePath } from './write-path.js';

const NO_OPTIONS: CallOptions = Object.freeze({});
function baseOf(s: Scope): Pick<Scope, 'tenant' | 'namespace'> {
  return { tenant: s.tenant, namespace: s.namespace };
}

/** Distinct scopes a cache keeps one object for (see `canonicalScope`); beyond it the table starts over. */
const MAX_CANONICAL_SCOPES = 10_000;

/**
 * Ordered cache layers behind one read-through call.
 *
 * Never fails a request because of a layer: a layer that throws, rejects or exceeds its
 * budget is a miss plus an `error` event. Loader errors pass through and are never stored.
 * Everything it reports is an event (`on(name, listener)`, see `CacheEvents`) or in `stats()`.
 */
export class MultiLayerCache extends EventEmitter<CacheEvents> {
  readonly instanceId = randomUUID();
  private readonly layers: readonly ResolvedLayer[];
  private readonly ctx: CacheContext;
  private readonly reads: ReadPath;
  private readonly writes: WritePath;
  private readonly loads: LoadPath;
  private readonly runner: LayerRunner;
  private readonly invalidations: InvalidationLog;
  private readonly sync: InvalidationSync;
  private readonly counters: CacheStats;
  private readonly callPolicy: CallPolicy;
  private readonly invalidator: Invalidator;
  private readonly defaultScope: Scope;
  private readonly profile: RequestProfile;
  private readonly plugins: CachePlugin[];
  private readonly now: () => number;
  private readonly throwOnLayerError: boolean;
  private readonly closeTimeoutMs: number;
  private readonly bus: InvalidationBus | undefined;
  private unsubscribe: Promise<() => Promise<void>> | undefined;
  private started: Promise<void> | undefined;
  private readonly versions = new Map<string, number>();
  /**
   * One frozen Scope per scope id (`scopeId`: injective, so two scopes never share one), so
   * every call in a scope gets the same object and the per-scope memos (the key prefixes of
   * computeKey) hit — whether the caller reuses its scope object or builds one per call.
   * Starts over when it holds MAX_CANONICAL_SCOPES.
   */
  private readonly scopeObjects = new Map<string, Scope>();
  /** Caller scope objects already resolved (checked field by field on each use: a mutated object is resolved again). */
  private readonly resolvedInputs = new WeakMap<object, Scope>();
  /** Calibration notes of lookups that missed, until their answer is stored (lookup() then store()). */
  private readonly pendingObservations = new PendingObservations();
  private closed = false;

  constructor(options: MultiLayerCacheOptions) {
    super();
    if (typeof options !== 'object' || options === null) throw new InvalidOptionError('MultiLayerCache needs an options object with `layers`');
    checkUnknownKeys(options, CACHE_OPTION_KEYS, 'MultiLayerCache');
    const budget = options.budgetMs ?? CACHE_DEFAULTS.budgetMs;
    checkPositiveMs(budget, 'budgetMs');
    this.closeTimeoutMs = options.closeTimeoutMs ?? CACHE_DEFAULTS.closeTimeoutMs;
    checkPositiveMs(this.closeTimeoutMs, 'closeTimeoutMs');
    let defaultTtlMs: number | undefined;
    if (options.defaultTtlMs !== null) {
      defaultTtlMs = options.defaultTtlMs ?? CACHE_DEFAULTS.defaultTtlMs;
      checkPositiveMs(defaultTtlMs, 'defaultTtlMs');
    }
    this.defaultScope = resolveScope(options.scope);
    if (options.profile !== undefined) checkProfile(options.profile, 'profile');
    this.profile = options.profile ?? chatProfile;
    const policy = options.policy ?? CACHE_DEFAULTS.policy;
    if (policy !== 'deterministic' && policy !== 'always' && typeof policy !== 'function') {
      throw new InvalidOptionError(`@strata-cache/core: option "policy" must be 'deterministic', 'always' or a function`, { field: 'policy' });
    }
    if (options.semanticThreshold !== undefined) checkThreshold(options.semanticThreshold, 'semanticThreshold');
    if (options.coordinator !== undefined && typeof options.coordinator?.begin !== 'function') {
      throw new InvalidOptionError('@strata-cache/core: option "coordinator" must have a begin(key) method', { field: 'coordinator' });
    }
    this.layers = resolveLayers(options.layers, budget);
    this.throwOnLayerError = options.throwOnLayerError ?? CACHE_DEFAULTS.throwOnLayerError;
    this.plugins = [...(options.plugins ?? [])];
    this.now = options.now ?? Date.now;
    const retentionMs = options.watermarkRetentionMs ?? CACHE_DEFAULTS.watermarkRetentionMs;
    checkPositiveMs(retentionMs, 'watermarkRetentionMs');
    const maxWatermarks = options.maxWatermarks ?? CACHE_DEFAULTS.maxWatermarks;
    if (!Number.isSafeInteger(maxWatermarks) || maxWatermarks < 1) {
      throw new InvalidOptionError('@strata-cache/core: option "maxWatermarks" must be a positive integer', { field: 'maxWatermarks' });
    }
    if (options.bus !== undefined && (typeof options.bus?.publish !== 'function' || typeof options.bus?.subscribe !== 'function')) {
      throw new InvalidOptionError('@strata-cache/core: option "bus" must have publish(envelope) and subscribe(handler) methods', { field: 'bus' });
    }
    this.sync = new InvalidationSync(options.bus, { retentionMs, maxWatermarks }, () => this.ctx, {
      instanceId: this.instanceId,
      learned: (marks, first) => this.invalidator.onLearned(marks, first),
    });
    this.invalidations = new InvalidationLog(this.sync.stampTime());
    this.counters = new CacheStats(options.prices);
    this.callPolicy = new CallPolicy(policy, this.plugins, this.counters, this, options.warnOnPolicySkip ?? CACHE_DEFAULTS.warnOnPolicySkip);
    this.runner = new LayerRunner((l, operation, error) => {
      l.stats.errors++;
      if (this.throwOnLayerError) throw error;
      emitError(this.ctx, error, l.name, operation);
    });
    this.ctx = {
      layers: this.layers,
      runner: this.runner,
      invalidations: this.invalidations,
      sync: this.sync,
      stats: this.counters,
      plugins: this.plugins,
      events: this,
      now: this.now,
      defaultTtlMs,
      coalesce: options.coalesce ?? CACHE_DEFAULTS.coalesce,
      joinSimilarMs: resolveJoinSimilar(options.joinSimilar),
      backfill: options.backfill ?? CACHE_DEFAULTS.backfill,
      backfillSemanticHits: options.backfillSemanticHits ?? CACHE_DEFAULTS.backfillSemanticHits,
      semanticThreshold: options.semanticThreshold,
      hasSemantic: this.layers.some((l) => l.semantic),
      coordinator: options.coordinator as LoadCoordinator | undefined,
    };
    this.reads = new ReadPath(this.ctx);
    this.writes = new WritePath(this.ctx);
    this.loads = new LoadPath(this.ctx, this.reads, this.writes);
    this.bus = options.bus;
    this.invalidator = new Invalidator(this.ctx, this.sync, this.invalidations, {
      instanceId: this.instanceId,
      events: this,
      bus: this.bus,
      isClosed: () => this.closed,
      setScopeVersion: (scope, version) => this.setScopeVersion(scope, version),
    });
    if (this.bus) {
      this.unsubscribe = this.bus.subscribe((e) => this.invalidator.onRemote(e));
      this.unsubscribe.catch((error) => emitError(this.ctx, error, 'bus', 'subscribe'));
      // Stored watermarks are loaded once the subscription is up: a message published meanwhile
      // arrives on it, one published before is in the store.
      this.started = this.unsubscribe.then(
        () => this.sync.start(),
        () => this.sync.start(),
      );
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

  /**
   * Resolves once the invalidation bus (if any) is subscribed and the watermarks its store holds
   * were loaded — or the store could not be reached: then they are loaded when it can be, and
   * until then shared and semantic layers are not read (their entries may predate a purge).
   */
  async ready(): Promise<void> {
    if (this.unsubscribe) await this.unsubscribe;
    if (this.started) await this.started;
  }

  /** Where this process's invalidations stand: watermarks held, work still retried, the bus clock's error. */
  invalidationStatus(): InvalidationStatus {
    return this.sync.status();
  }

  use(plugin: CachePlugin): this {
    this.plugins.push(plugin);
    return this;
  }

  /** The scope a call will use, with the current version of its tenant+namespace. */
  resolveScope(input?: ScopeInput): Scope {
    const s =
      input === undefined
        ? this.defaultScope
        : typeof input === 'object' && input !== null
          ? this.resolveObject(input)
          : this.canonicalScope(resolveScope(input, this.defaultScope));
    if (this.versions.size === 0) return s;
    const v = this.versions.get(scopeBaseId(s));
    return v !== undefined && v > s.version ? this.canonicalScope({ tenant: s.tenant, namespace: s.namespace, version: v }) : s;
  }

  private resolveObject(input: Exclude<ScopeInput, string>): Scope {
    const known = this.resolvedInputs.get(input);
    if (
      known !== undefined &&
      known.tenant === input.tenant &&
      known.namespace === (input.namespace ?? DEFAULT_NAMESPACE) &&
      known.version === (input.version ?? 0)
    )
      return known;
    const s = this.canonicalScope(resolveScope(input, this.defaultScope));
    this.resolvedInputs.set(input, s);
    return s;
  }

  private canonicalScope(s: Scope): Scope {
    const id = scopeId(s);
    const known = this.scopeObjects.get(id);
    if (known !== undefined) return known;
    if (this.scopeObjects.size >= MAX_CANONICAL_SCOPES) this.scopeObjects.clear();
    const frozen: Scope = Object.freeze({ tenant: s.tenant, namespace: s.namespace, version: s.version });
    this.scopeObjects.set(id, frozen);
    return frozen;
  }

  /** The exact key of a request under this cache's settings. */
  keyFor(request: unknown, options: Pick<CallOptions, 'scope' | 'profile'> = NO_OPTIONS): CacheKey {
    if (options !== NO_OPTIONS) validateCallOptions(options, 'invalidateKey', 'keyFor');
    return computeKey(request, this.resolveScope(options.scope), options.profile ?? this.profile);
  }

  /**
   * Read-through: return the cached answer, or call `loader` once (however many identical
   * requests wait on it, in this process and — with a coordinator — across processes), store its
   * result in every layer, and return it. Built on the same two phases as `begin()`.
   */
  async getOrLoad<T>(request: unknown, loader: Loader<T>, options: CallOptions = NO_OPTIONS): Promise<CacheResult<T>> {
    const call = this.makeCall(request, options, 'call', 'getOrLoad', true);
    if (this.callPolicy.skips(call)) return this.loads.run(this.bypassLoad<T>(call), loader);
    if (call.decision.read && !options.forceRefresh) {
      const r = this.reads.read(call);
      const hit = isPromiseLike(r) ? await r : r;
      if (hit) return this.hitResult<T>(call, hit);
      const joined = call.inFlight && (await this.loads.awaitSimilar(call));
      if (joined) return this.hitResult<T>(call, joined, true);
    }
    for (let attempt = 0; ; attempt++) {
      const b = await this.loads.open<T>(call);
      if (b.kind === 'hit') return b.result;
      if (b.kind === 'load') return this.loads.run(b, loader);
      try {
        return await b.result;
      } catch (error) {
        // The load we joined was given up before it produced anything: load again (once it is
        // gone, one of the waiting callers becomes the loader).
        if (attempt < 3 && error instanceof StrataError && error.code === 'STRATA_ABANDONED' && (error as { started?: boolean }).started === false) continue;
        throw error;
      }
    }
  }

  /**
   * The two-phase read-through (what `getOrLoad` does, with the load in the caller's hands):
   * resolves a hit, a load to join (`join`: an identical one is running in this process), or a
   * load this caller must run (`load`: `commit()` its result or `abandon()` it). Streams push
   * each chunk into the pending load so joiners receive it live, chunk for chunk. The
   * cross-process coordinator, coalescing and race protection apply as for `getOrLoad`.
   *
   * @example
   * const b = await cache.begin(request);
   * if (b.kind === 'hit') return replay(b.result.entry!.chunks);
   * if (b.kind === 'join') return pipe(b.chunks());
   * try {
   *   for await (const chunk of upstream(request)) { b.push(chunk); yield chunk; }
   *   await b.commit(loaded(assemble(chunks), { usage }));
   * } finally { b.abandon(); } // a no-op after commit
   */
  async begin<T = unknown>(request: unknown, options: CallOptions = NO_OPTIONS): Promise<Begun<T>> {
    const call = this.makeCall(request, options, 'call', 'begin', true);
    if (this.callPolicy.skips(call)) return this.bypassLoad<T>(call);
    if (call.decision.read && !options.forceRefresh) {
      const r = this.reads.read(call);
      const hit = isPromiseLike(r) ? await r : r;
      if (hit) return { kind: 'hit', key: call.key, result: this.hitResult<T>(call, hit) };
      const joined = call.inFlight && (await this.loads.awaitSimilar(call));
      if (joined) return { kind: 'hit', key: call.key, result: this.hitResult<T>(call, joined, true) };
    }
    return this.loads.open<T>(call);
  }

  /** Read only: the cached entry for a request, or undefined. Does not call any loader. */
  async lookup<T = unknown>(request: unknown, options: CallOptions = NO_OPTIONS): Promise<LookupHit<T> | undefined> {
    const call = this.makeCall(request, options, 'call', 'lookup', true);
    if (options.bypass || !call.decision.read || options.forceRefresh) {
      this.counters.bypassed++;
      return undefined;
    }
    const r = this.reads.read(call);
    const hit = isPromiseLike(r) ? await r : r;
    if (hit) this.recordHit(call, hit);
    else {
      this.recordMiss(call);
      this.pendingObservations.remember(call.key, call.calibrations, this.now());
    }
    return hit as LookupHit<T> | undefined;
  }

  /**
   * Reads several requests at once: layers that declare `batch` get one `getMany` (and backfill
   * with one `setMany`), the others one read per request. Results in request order.
   */
  async lookupMany<T = unknown>(requests: readonly unknown[], options: CallOptions = NO_OPTIONS): Promise<Array<LookupHit<T> | undefined>> {
    const calls = requests.map((r) => this.makeCall(r, options, 'call', 'lookupMany', true));
    if (options.bypass || options.forceRefresh) {
      this.counters.bypassed += calls.length;
      return calls.map(() => undefined);
    }
    const readable = calls.filter((c) => c.decision.read);
    this.counters.bypassed += calls.length - readable.length;
    const found = await this.reads.readMany(readable);
    const byCall = new Map(readable.map((c, i) => [c, found[i]]));
    return calls.map((c) => {
      if (!c.decision.read) return undefined;
      const hit = byCall.get(c);
      if (hit) this.recordHit(c, hit);
      else {
        this.recordMiss(c);
        this.pendingObservations.remember(c.key, c.calibrations, this.now());
      }
      return hit as LookupHit<T> | undefined;
    });
  }

  /** The current invalidation epoch; pass it to `store` to drop a write that raced an invalidation. */
  get currentEpoch(): number {
    return this.invalidations.epoch;
  }

  /**
   * Write a result (e.g. a second form of an answer) to every layer. Resolves whether it was
   * stored: false for the policy, `noStore`, an incomplete result, a plugin veto, an
   * invalidation since `sinceEpoch` that covered it, or no layer taking it.
   */
  async store<T>(request: unknown, result: T | Loaded<T>, options: StoreOptions = NO_OPTIONS): Promise<boolean> {
    const call = this.makeCall(request, options, 'store', 'store', false);
    if (options.bypass || !call.write) return false;
    const out = isLoaded<T>(result) ? result : loaded(result);
    // recordUsage: false stores a second copy of an answer whose upstream call was already counted.
    if (out.usage && options.recordUsage !== false) this.counters.recordUpstream(out.usage, out.model ?? call.profile.model?.(request));
    // The answer to a lookup that missed: a calibrating semantic layer learns from it.
    if (out.complete !== false) observeUpstream(this.ctx, this.pendingObservations.take(call.key, this.now()), out.value);
    // The answer's stamp: when the epoch it was loaded in began (the load began after this process
    // knew of every invalidation before it), or now.
    const since = options.sinceEpoch ?? this.invalidations.epoch;
    const stamp = options.sinceEpoch !== undefined ? this.invalidations.stampOf(since) : this.sync.stampTime();
    return this.writes.write(call, out, since, stamp ?? Number.NEGATIVE_INFINITY);
  }

  /**
   * A user's verdict on an answer this cache served (a thumbs-down or -up): pass the result of
   * `getOrLoad`, `begin` or `lookup`. `'wrong'` removes the entry that answered from every layer
   * — for a semantic hit the stored entry that matched — in this and (via the bus) every process,
   * and a calibrating semantic layer counts it against the entry's neighbourhood; `'right'` is
   * evidence for the calibrating layer that served it. A miss (the answer came from upstream) is
   * `ignored`.
   */
  async feedback(result: CacheResult<unknown> | LookupHit<unknown>, verdict: FeedbackVerdict): Promise<FeedbackResult> {
    if (this.closed) throw closedError('@strata-cache/core: this MultiLayerCache');
    return applyFeedback(this.ctx, result, verdict, (key) => this.invalidateCacheKey(key));
  }

  /**
   * Memoise any async function (a retrieval + LLM chain, a tool call). Arguments must be
   * JSON-like; `name` keeps two functions' keys apart.
   */
  wrap<A extends unknown[], R>(fn: (...args: A) => Promise<R> | R, options: WrapOptions<A> = NO_OPTIONS): (...args: A) => Promise<R> {
    if (options !== NO_OPTIONS) validateCallOptions(options, 'wrap', 'wrap');
    const name = options.name ?? fn.name;
    if (!name)
      throw new InvalidOptionError('@strata-cache/core: wrap() of an anonymous function needs options.name, so its keys cannot collide with another function', {
        field: 'name',
      });
    const { name: _n, key: keyOf, ...call } = options;
    const callOptions: CallOptions = { ...call, profile: genericProfile };
    return async (...args: A) => {
      const request = { fn: name, args: keyOf ? keyOf(...args) : args };
      const r = await this.getOrLoad<R>(request, () => fn(...args), callOptions);
      return r.value;
    };
  }

  /** Alias of `wrap`. */
  memoize<A extends unknown[], R>(fn: (...args: A) => Promise<R> | R, options: WrapOptions<A> = NO_OPTIONS): (...args: A) => Promise<R> {
    return this.wrap(fn, options);
  }

  // ---------------------------------------------------------------- invalidation

  /** Removes one request's entry from every layer of this and (via the bus) every process. */
  async invalidateKey(request: unknown, options: Pick<CallOptions, 'scope' | 'profile'> = NO_OPTIONS): Promise<InvalidationResult> {
    if (options !== NO_OPTIONS) validateCallOptions(options, 'invalidateKey', 'invalidateKey');
    return this.invalidateCacheKey(this.keyFor(request, options));
  }

  async invalidateCacheKey(key: CacheKey): Promise<InvalidationResult> {
    const message: InvalidationMessage = { type: 'key', keyId: key.id, scope: key.scope };
    return this.invalidator.invalidate(message, key);
  }

  /** Removes every entry carrying `tag` (optionally only in one tenant+namespace). */
  async invalidateTag(tag: string, options: { scope?: ScopeInput | undefined } = NO_OPTIONS): Promise<InvalidationResult> {
    if (typeof tag !== 'string' || tag === '') throw new InvalidOptionError('@strata-cache/core: invalidateTag needs a non-empty tag string', { field: 'tag' });
    if (options !== NO_OPTIONS) validateCallOptions(options, 'scopeOnly', 'invalidateTag');
    const scope = options.scope === undefined ? undefined : baseOf(resolveScope(options.scope, this.defaultScope));
    return this.invalidator.invalidate(scope ? { type: 'tag', tag, scope } : { type: 'tag', tag });
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
    return { version: next.version, result: await this.invalidator.invalidate({ type: 'scope-version', scope: next }) };
  }

  /** Sets the known version of a tenant+namespace (e.g. read from shared storage at start-up). */
  setScopeVersion(scope: ScopeInput, version: number): void {
    const s = resolveScope(scope, this.defaultScope);
    if (!Number.isSafeInteger(version) || version < 0) throw new InvalidOptionError('scope version must be a non-negative integer', { field: 'version' });
    const base = scopeBaseId(s);
    if ((this.versions.get(base) ?? -1) < version) this.versions.set(base, version);
  }

  /** Removes every entry of a tenant+namespace, or everything the layers own; reports how many per layer. */
  async clear(scopeInput?: ScopeInput): Promise<InvalidationResult> {
    const scope = scopeInput === undefined ? undefined : baseOf(resolveScope(scopeInput, this.defaultScope));
    return this.invalidator.invalidate(scope ? { type: 'clear', scope } : { type: 'clear' });
  }

  /**
   * Resolves when the writes, backfills and deletes started so far have landed in their layers
   * (including writes that outlived their budget), waiting at most `closeTimeoutMs`.
   */
  async flush(): Promise<void> {
    const until = Date.now() + this.closeTimeoutMs;
    await this.runner.settle(this.closeTimeoutMs);
    if (this.sync.pendingCount > 0) await this.sync.settle(Math.max(0, until - Date.now()));
  }

  /**
   * Waits for writes in flight (up to `closeTimeoutMs`), then tells layers to drop what is still
   * queued, and closes the bus subscription and every layer. Later calls reject with
   * `STRATA_CLOSED`; a second `close()` is a no-op.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const until = Date.now() + this.closeTimeoutMs;
    this.pendingObservations.clear();
    const settled = await this.runner.settle(this.closeTimeoutMs);
    if (!settled) {
      this.runner.abortWrites(closedError('@strata-cache/core: MultiLayerCache'));
      emitError(
        this.ctx,
        new StrataError('STRATA_LAYER_TIMEOUT', `@strata-cache/core: writes still in flight after closeTimeoutMs (${this.closeTimeoutMs} ms) were abandoned`),
        undefined,
        'close',
      );
    }
    if (this.sync.pendingCount > 0 && !(await this.sync.settle(Math.max(0, until - Date.now())))) {
      const p = this.sync.status().pending;
      emitError(
        this.ctx,
        new StrataError(
          'STRATA_LAYER_TIMEOUT',
          `@strata-cache/core: closed with invalidation work not done after closeTimeoutMs (${this.closeTimeoutMs} ms): ${p.watermarks} watermark(s) not stored, ${p.messages} message(s) not published, ${p.layerPurges} layer purge(s) not done`,
        ),
        'bus',
        'close',
      );
    }
    this.sync.close();
    if (this.unsubscribe) {
      try {
        await (await this.unsubscribe)();
      } catch (error) {
        emitError(this.ctx, error, 'bus', 'unsubscribe');
      }
    }
    for (const l of this.layers) {
      if (!l.layer.close) continue;
      try {
        await l.layer.close();
      } catch (error) {
        emitError(this.ctx, error, l.name, 'close');
      }
    }
  }

  // ---------------------------------------------------------------- statistics

  stats(): StatsSnapshot {
    return this.counters.snapshot(this.layers);
  }

  /**
   * Monthly savings from the seed formula `daily_requests × hit_rate × tokens/1e6 × price × 30`,
   * with hit rate, tokens per request and blended price taken from what this cache observed.
   */
  monthlyProjection(dailyRequests: number): { usd: number; hitRate: number; tokensPerRequest: number; pricePerMillion: number } {
    return this.counters.monthlyProjection(dailyRequests);
  }

  resetStats(): void {
    this.counters.reset();
    for (const l of this.layers) l.stats.reset();
  }

  // ---------------------------------------------------------------- internals

  private makeCall(request: unknown, options: CallOptions, set: OptionSet, operation: string, counts: boolean): CallRecord {
    if (this.closed) throw closedError('@strata-cache/core: this MultiLayerCache');
    const started = performance.now();
    if (options !== NO_OPTIONS) validateCallOptions(options, set, operation);
    if (counts) this.counters.requests++;
    const profile = options.profile ?? this.profile;
    const scope = this.resolveScope(options.scope);
    const key = computeKey(request, scope, profile);
    const decision = this.callPolicy.decide(request, profile, scope);
    return new CallRecord(request, profile, scope, key, decision, options, started, decision.write && options.noStore !== true);
  }

  private bypassLoad<T>(call: CallRecord): PendingLoad<T> {
    this.counters.bypassed++;
    return this.loads.bypass<T>(call);
  }

  /** `joinedSimilar`: the hit came from the load of a similar request this call waited for. */
  private hitResult<T>(call: CallRecord, hit: LookupHit, joinedSimilar = false): CacheResult<T> {
    this.recordHit(call, hit);
    const r: { -readonly [K in keyof CacheResult<T>]: CacheResult<T>[K] } = {
      value: hit.entry.value as T,
      status: 'hit',
      key: call.key,
      layer: hit.layer,
      ageMs: hit.ageMs,
      entry: hit.entry as CacheResult<T>['entry'],
    };
    if (hit.similarity !== undefined) {
      r.similarity = hit.similarity;
      r.matchedText = hit.matchedText;
      r.matchedKey = hit.key;
    }
    if (hit.calibration) {
      r.calibrated = true;
      r.calibration = hit.calibration;
    }
    if (hit.rejected) r.rejected = hit.rejected;
    if (joinedSimilar) r.joinedSimilar = true;
    return r;
  }

  private recordHit(call: CallRecord, hit: LookupHit): void {
    this.counters.recordHit(hit);
    if (this.listenerCount('hit') > 0) {
      const c = hit.calibration;
      this.emit('hit', {
        key: hit.key,
        layer: hit.layer,
        latencyMs: performance.now() - call.started,
        ageMs: hit.ageMs,
        ...(hit.similarity !== undefined ? { similarity: hit.similarity } : {}),
        ...(c ? { calibrated: true, ...(c.boundary !== undefined ? { boundary: c.boundary } : {}) } : {}),
      });
    }
  }

  private recordMiss(call: CallRecord): void {
    this.counters.misses++;
    if (this.listenerCount('miss') > 0) {
      this.emit('miss', { key: call.key, latencyMs: performance.now() - call.started, ...(call.rejected ? { rejected: call.rejected } : {}) });
    }
  }
}
