import { type Attributes, type BatchObservableCallback, type Meter, type Observable, metrics } from '@opentelemetry/api';
import { type CacheEvents, type MultiLayerCache, InvalidOptionError, StrataError } from '@strata-cache/core';

const PKG = '@strata-cache/otel';

/** Options of `instrument`. */
export interface InstrumentOptions {
  /** Meter the instruments are created on. @default metrics.getMeter('@strata-cache/otel') (the global MeterProvider) */
  meter?: Meter | undefined;
  /** First segment of every metric name (`strata.cache.hits`). @default 'strata' */
  prefix?: string | undefined;
  /**
   * Attributes added to every measurement, e.g. `{ cache: 'support-bot' }` to tell several caches
   * apart. Keep secrets and user text out of them: every exporter ships them as labels.
   * @default {}
   */
  attributes?: Attributes | undefined;
  /**
   * Add the tenant (the scope's `tenant`) to the lookup-duration histogram and the per-event
   * counters. Off by default: one series per tenant can be many series.
   * @default false
   */
  tenantAttribute?: boolean | undefined;
  /**
   * Bucket boundaries of the lookup-duration histogram, in seconds.
   * @default [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1]
   */
  durationBuckets?: readonly number[] | undefined;
}

const OPTION_KEYS = ['meter', 'prefix', 'attributes', 'tenantAttribute', 'durationBuckets'] as const satisfies ReadonlyArray<keyof InstrumentOptions>;

/** Lookups of an in-process layer take microseconds, of Redis about a millisecond, of a semantic layer an embedding. */
export const DEFAULT_DURATION_BUCKETS: readonly number[] = Object.freeze([
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
]);

/** Breaker states a layer can report through a `state` property (the Redis layer does). */
export const BREAKER_STATES = ['closed', 'open', 'half-open'] as const;

/** A running instrumentation; `stop()` removes its listeners and observable callbacks. */
export interface Instrumentation {
  stop(): void;
}

type Listener<K extends keyof CacheEvents> = (...args: CacheEvents[K]) => void;

/**
 * Publishes a cache's metrics through OpenTelemetry. Counts come from `cache.stats()`, read
 * only when the meter collects (observable instruments); durations, errors, semantic
 * rejections, skipped writes and invalidations come from the cache's events. Nothing is
 * added to the request path but those event listeners.
 *
 * No label carries request or answer text, an error message or a key: only layer names,
 * operation names, error codes, guard names, core's skip reasons, and the attributes you pass.
 */
export function instrument(cache: MultiLayerCache, options: InstrumentOptions = {}): Instrumentation {
  checkOptions(cache, options);
  const meter = options.meter ?? metrics.getMeter(PKG);
  const p = options.prefix ?? 'strata';
  const base: Attributes = { ...(options.attributes ?? {}) };
  const withTenant = options.tenantAttribute === true;
  const attrs = (extra: Attributes, tenant?: string): Attributes => ({ ...base, ...extra, ...(withTenant && tenant !== undefined ? { tenant } : {}) });

  // ---- from events
  const duration = meter.createHistogram(`${p}.cache.lookup.duration`, {
    description: 'Time to answer a lookup from the cache (hit) or to find it missing (miss)',
    unit: 's',
    advice: { explicitBucketBoundaries: [...(options.durationBuckets ?? DEFAULT_DURATION_BUCKETS)] },
  });
  const errors = meter.createCounter(`${p}.cache.errors`, { description: 'Layer, bus and coordinator failures (each served as a miss)', unit: '{error}' });
  const rejections = meter.createCounter(`${p}.cache.semantic.rejections`, {
    description: 'Semantic candidates turned down, by the guard that turned them down',
    unit: '{candidate}',
  });
  const skips = meter.createCounter(`${p}.cache.write.skips`, { description: 'Results not stored, by reason', unit: '{write}' });
  const invalidations = meter.createCounter(`${p}.cache.invalidations`, {
    description: 'Invalidations applied (local or from the bus)',
    unit: '{invalidation}',
  });
  const invalidated = meter.createCounter(`${p}.cache.invalidated.entries`, { description: 'Entries removed by invalidations, per layer', unit: '{entry}' });

  // The attribute sets of hits and misses, made once each (a lookup records one per request).
  const lookupAttrs = new Map<string, Attributes>();
  const lookupAttrsOf = (layer: string | undefined, match: string | undefined, tenant: string): Attributes => {
    const t = withTenant ? tenant : '';
    const id = `${layer ?? ''}\u0000${match ?? ''}\u0000${t}`;
    let a = lookupAttrs.get(id);
    if (a === undefined) {
      if (lookupAttrs.size >= 4096) lookupAttrs.clear();
      a = layer === undefined ? attrs({ result: 'miss' }, tenant) : attrs({ result: 'hit', layer, match: match! }, tenant);
      lookupAttrs.set(id, Object.freeze(a));
    }
    return a;
  };
  const onHit: Listener<'hit'> = (e) => {
    duration.record(e.latencyMs / 1000, lookupAttrsOf(e.layer, e.similarity === undefined ? 'exact' : 'semantic', e.key.scope.tenant));
  };
  const onMiss: Listener<'miss'> = (e) => {
    duration.record(e.latencyMs / 1000, lookupAttrsOf(undefined, undefined, e.key.scope.tenant));
  };
  const onError: Listener<'error'> = (e) => {
    errors.add(1, attrs({ layer: e.layer ?? 'cache', operation: e.operation, code: StrataError.isInstance(e.error) ? e.error.code : 'STRATA_LAYER' }));
  };
  const onReject: Listener<'reject'> = (e) => {
    const byGuard = new Map<string, number>();
    for (const r of e.rejected) byGuard.set(r.guard, (byGuard.get(r.guard) ?? 0) + 1);
    for (const [guard, n] of byGuard) rejections.add(n, attrs({ layer: e.layer, guard }, e.key.scope.tenant));
  };
  const onSkip: Listener<'skipWrite'> = (e) => {
    skips.add(1, attrs({ reason: e.reason }, e.key.scope.tenant));
  };
  const onInvalidate: Listener<'invalidate'> = (e) => {
    invalidations.add(1, attrs({ type: e.message.type, origin: e.origin }));
    for (const [layer, n] of Object.entries(e.layers)) if (n > 0) invalidated.add(n, attrs({ layer }));
  };
  cache.on('hit', onHit);
  cache.on('miss', onMiss);
  cache.on('error', onError);
  cache.on('reject', onReject);
  cache.on('skipWrite', onSkip);
  cache.on('invalidate', onInvalidate);

  // ---- from stats(), read at collection time
  const counter = (name: string, description: string, unit: string) => meter.createObservableCounter(`${p}.${name}`, { description, unit });
  const requests = counter('cache.requests', 'Requests seen by the cache', '{request}');
  const hits = counter('cache.hits', 'Requests answered from the cache', '{request}');
  const misses = counter('cache.misses', 'Requests not found in the cache', '{request}');
  const bypassed = counter('cache.bypassed', 'Requests that skipped the cache (per-call bypass or the cache policy)', '{request}');
  const coalesced = counter('cache.coalesced', 'Requests that joined an identical in-flight miss instead of calling upstream', '{request}');
  const joinedSimilar = counter(
    'cache.joined_similar',
    "Semantic misses that waited for a similar request's load in flight, by outcome (served: its answer served them; loaded: they loaded their own)",
    '{request}',
  );
  const loaderCalls = counter('cache.loader.calls', 'Upstream calls made for misses', '{call}');
  const loaderErrors = counter('cache.loader.errors', 'Upstream calls that failed', '{call}');
  const layerHits = counter('layer.hits', 'Lookups a layer answered', '{lookup}');
  const layerMisses = counter('layer.misses', 'Lookups a layer did not answer', '{lookup}');
  const layerErrors = counter('layer.errors', 'Failed layer operations', '{operation}');
  const layerTimeouts = counter('layer.timeouts', 'Layer operations over their time budget', '{operation}');
  const layerWrites = counter('layer.writes', 'Entries written to a layer', '{entry}');
  const tokensSaved = counter('cache.saved.tokens', 'Tokens the hits did not spend upstream', '{token}');
  const usdSaved = counter('cache.saved.usd', 'What the hits would have cost upstream, at list prices', 'USD');
  const upstreamUsd = counter('upstream.cost.usd', 'What the upstream calls cost, at list prices', 'USD');
  const providerUsd = counter('provider_cache.saved.usd', "What the provider's own prompt cache saved on upstream calls", 'USD');
  const providerTokens = counter('provider_cache.tokens', 'Prompt tokens the provider served from its own prompt cache', '{token}');
  const unpriced = counter('cache.unpriced_hits', 'Hits whose model has no price (not in the USD figures)', '{request}');
  const policySkips = counter('cache.policy.skips', 'Requests the cache policy did not cache, by reason', '{request}');
  const layerLatency = meter.createObservableGauge(`${p}.layer.lookup.latency`, {
    description: "Recent lookup latency of a layer at a quantile (core's per-layer sample of the last 4096 lookups)",
    unit: 's',
  });
  const breakerState = meter.createObservableGauge(`${p}.layer.breaker.state`, {
    description: 'Circuit breaker state of a layer: 1 for the current state, 0 for the others',
    unit: '1',
  });
  const breakerOpens = counter('layer.breaker.opens', 'Times a layer circuit breaker opened', '{transition}');

  const observables: Observable[] = [
    requests,
    hits,
    misses,
    bypassed,
    coalesced,
    joinedSimilar,
    loaderCalls,
    loaderErrors,
    layerHits,
    layerMisses,
    layerErrors,
    layerTimeouts,
    layerWrites,
    tokensSaved,
    usdSaved,
    upstreamUsd,
    providerUsd,
    providerTokens,
    unpriced,
    policySkips,
    layerLatency,
    breakerState,
    breakerOpens,
  ];

  const observe: BatchObservableCallback = (r) => {
    const s = cache.stats();
    r.observe(requests, s.requests, base);
    r.observe(hits, s.hits, base);
    r.observe(misses, s.misses, base);
    r.observe(bypassed, s.bypassed, base);
    r.observe(coalesced, s.coalesced, base);
    r.observe(joinedSimilar, s.joinedSimilar.served, { ...base, outcome: 'served' });
    r.observe(joinedSimilar, s.joinedSimilar.waited - s.joinedSimilar.served, { ...base, outcome: 'loaded' });
    r.observe(loaderCalls, s.loaderCalls, base);
    r.observe(loaderErrors, s.loaderErrors, base);
    for (const [layer, l] of Object.entries(s.layers)) {
      const a = { ...base, layer };
      r.observe(layerHits, l.hits, a);
      r.observe(layerMisses, l.misses, a);
      r.observe(layerErrors, l.errors, a);
      r.observe(layerTimeouts, l.timeouts, a);
      r.observe(layerWrites, l.writes, a);
      if (l.p50Ms !== undefined) r.observe(layerLatency, l.p50Ms / 1000, { ...a, quantile: '0.5' });
      if (l.p95Ms !== undefined) r.observe(layerLatency, l.p95Ms / 1000, { ...a, quantile: '0.95' });
    }
    r.observe(tokensSaved, s.tokensSaved.input, { ...base, direction: 'input' });
    r.observe(tokensSaved, s.tokensSaved.output, { ...base, direction: 'output' });
    r.observe(usdSaved, s.usdSaved, base);
    r.observe(upstreamUsd, s.upstreamUsd, base);
    r.observe(providerUsd, s.providerCacheUsdSaved, base);
    r.observe(providerTokens, s.providerCachedTokens, base);
    r.observe(unpriced, s.unpricedHits, base);
    // Policy skips by reason, once core reports them as `stats().skipped` (reason → count); until
    // then they are inside `bypassed`.
    const skipped = (s as { skipped?: unknown }).skipped;
    if (skipped && typeof skipped === 'object') {
      for (const [reason, n] of Object.entries(skipped as Record<string, unknown>)) if (typeof n === 'number') r.observe(policySkips, n, { ...base, reason });
    }
    // Layers with a circuit breaker expose it as `state` (and `stats().opens`), e.g. RedisLayer.
    const names = cache.layerNames;
    cache.layerInstances.forEach((layer, i) => {
      const state = (layer as { state?: unknown }).state;
      if (typeof state !== 'string' || !(BREAKER_STATES as readonly string[]).includes(state)) return;
      const a = { ...base, layer: names[i] ?? layer.name };
      for (const st of BREAKER_STATES) r.observe(breakerState, st === state ? 1 : 0, { ...a, state: st });
      const opens = readOpens(layer);
      if (opens !== undefined) r.observe(breakerOpens, opens, a);
    });
  };
  meter.addBatchObservableCallback(observe, observables);

  let stopped = false;
  return {
    stop() {
      if (stopped) return;
      stopped = true;
      meter.removeBatchObservableCallback(observe, observables);
      cache.off('hit', onHit);
      cache.off('miss', onMiss);
      cache.off('error', onError);
      cache.off('reject', onReject);
      cache.off('skipWrite', onSkip);
      cache.off('invalidate', onInvalidate);
    },
  };
}

function readOpens(layer: unknown): number | undefined {
  const stats = (layer as { stats?: unknown }).stats;
  if (typeof stats !== 'function') return undefined;
  try {
    const opens = (stats.call(layer) as { opens?: unknown } | undefined)?.opens;
    return typeof opens === 'number' ? opens : undefined;
  } catch {
    return undefined;
  }
}

function checkOptions(cache: MultiLayerCache, options: InstrumentOptions): void {
  const c = cache as Partial<MultiLayerCache> | undefined;
  if (!c || typeof c.on !== 'function' || typeof c.off !== 'function' || typeof c.stats !== 'function' || !Array.isArray(c.layerNames)) {
    throw new InvalidOptionError(`${PKG}: instrument() needs a MultiLayerCache from @strata-cache/core`, { field: 'cache' });
  }
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError(`${PKG}: options must be an object`);
  for (const k of Object.keys(options)) {
    if (!(OPTION_KEYS as readonly string[]).includes(k))
      throw new InvalidOptionError(`${PKG}: unknown option "${k}" (known: ${OPTION_KEYS.join(', ')})`, { field: k });
  }
  const m = options.meter as Partial<Meter> | undefined;
  if (m !== undefined && (typeof m.createCounter !== 'function' || typeof m.addBatchObservableCallback !== 'function')) {
    throw new InvalidOptionError(`${PKG}: option "meter" must be an OpenTelemetry Meter (meterProvider.getMeter(name))`, { field: 'meter' });
  }
  if (options.prefix !== undefined && (typeof options.prefix !== 'string' || !/^[A-Za-z][A-Za-z0-9_.-]*$/.test(options.prefix))) {
    throw new InvalidOptionError(`${PKG}: option "prefix" must start with a letter and hold only letters, digits, "_", "." and "-"`, { field: 'prefix' });
  }
  if (options.attributes !== undefined && (typeof options.attributes !== 'object' || options.attributes === null || Array.isArray(options.attributes))) {
    throw new InvalidOptionError(`${PKG}: option "attributes" must be an object of attribute values`, { field: 'attributes' });
  }
  if (options.tenantAttribute !== undefined && typeof options.tenantAttribute !== 'boolean') {
    throw new InvalidOptionError(`${PKG}: option "tenantAttribute" must be a boolean`, { field: 'tenantAttribute' });
  }
  const b = options.durationBuckets;
  if (
    b !== undefined &&
    (!Array.isArray(b) || b.length === 0 || b.some((x, i) => typeof x !== 'number' || !(x > 0) || !Number.isFinite(x) || (i > 0 && x <= b[i - 1]!)))
  ) {
    throw new InvalidOptionError(`${PKG}: option "durationBuckets" must be increasing positive numbers of seconds`, { field: 'durationBuckets' });
  }
}
