import { performance } from 'node:perf_hooks';
import { randomUUID } from 'node:crypto';
import { type LayerConfig, type LayerStatsSnapshot, type PriceTable, type StatsSnapshot, MultiLayerCache } from '@strata-cache/core';
import { ANTHROPIC_PRICES } from '@strata-cache/anthropic';
import { OPENAI_PRICES } from '@strata-cache/openai';
import { type UseEmbedder, createUseEmbedder } from '@strata-cache/embed-use';
import { createInvalidationEngine, creativeRequests, maxAge, onEvent, tagWhen, timeSensitivePrompts } from '@strata-cache/invalidation';
import { MemoryLayer } from '@strata-cache/layer-memory';
import { RedisInvalidationBus, RedisLayer } from '@strata-cache/layer-redis';
import { RedisSemanticFeed } from '@strata-cache/layer-redis/semantic-feed';
import { SemanticLayer } from '@strata-cache/layer-semantic';
import { recommendedSetting } from '@strata-cache/semantic-guards';
import { type CalibrationFigures, DEMO_CALIBRATION, calibrationFigures, demoAnswerText } from './calibration.js';
import { AnthropicAdapterClient, type ChatCall, type ChatClient, type ChatOutcome, OpenAIAdapterClient } from './client.js';

/** Prompts whose answers quote prices: tagged `topic:pricing` when stored, purged when prices change. */
export const PRICING_PATTERN = /\b(price|prices|pricing|cost|costs|how much|discount|per month|per year|yearly|annually)\b/i;
export const PRICING_TAG = 'topic:pricing';

export interface StackOptions {
  /** Wire format and adapter. */
  readonly api: 'openai' | 'anthropic';
  /** Base URL for the SDK (the simulated provider's, or the real API's). */
  readonly baseURL: string;
  readonly simulated: boolean;
  readonly providerLabel: string;
  readonly apiKey?: string;
  /** Adds the L2 Redis layer, shared by the instances. */
  readonly redisUrl?: string;
  /** App instances (each its own L1 + L3, sharing L2 and the invalidation bus). @default 2 with Redis, else 1 */
  readonly instances?: number;
  readonly semantic: boolean;
  /** Similarity threshold of L3 (the layer's default when unset; with calibration, a floor). */
  readonly threshold?: number;
  /** L3 learns from the traffic where matches can be trusted within this budget (`false`: the static default). @default DEMO_CALIBRATION */
  readonly calibration?: false | { readonly maxWrongRate: number; readonly shadowRate: number };
  /** Fault injection: every tenant in one cache scope. */
  readonly sharedScope?: boolean;
  /** Redis key prefix; processes of one fleet pass the same. @default a run-unique one */
  readonly prefix?: string;
  /**
   * Fleet mode (needs `redisUrl`): L3 follows every other process's writes, deletes and purges
   * through a RedisSemanticFeed (vectors included), and rebuilds from L2. @default false
   */
  readonly replicate?: boolean;
  /** Worker threads of the local embedder. @default embed-use's (2 on this machine) */
  readonly embedderWorkers?: number;
  /** Remove everything under the prefix on close (off in fleet workers: the fleet's parent does it). @default true */
  readonly clearOnClose?: boolean;
  readonly prices?: PriceTable;
  readonly log: (line: string) => void;
}

export interface Stack {
  /** Requests are spread over the instances by `ChatCall.route`, like a load balancer. */
  readonly client: ChatClient;
  readonly instances: number;
  /** One line per component, for the summary. */
  readonly components: string[];
  /** What is missing from the full stack and why. */
  readonly missing: string[];
  readonly prices: PriceTable;
  /** The caches' counters, summed over the instances. */
  stats(): StatsSnapshot;
  /** Each instance's cache (for `--metrics` and a fleet worker's reports) and semantic layers. */
  readonly caches: readonly MultiLayerCache[];
  readonly semanticLayers: readonly SemanticLayer[];
  /** The L3 layers' calibration, summed over the instances (undefined when it is off). */
  calibration(): CalibrationFigures | undefined;
  flush(): Promise<void>;
  /** Purges what a "pricing changed" event makes stale; resolves once every instance has applied it. */
  pricingChanged(tenant: string): Promise<{ purged: Record<string, number>; detail: string }>;
  close(): Promise<void>;
}

interface Instance {
  readonly cache: MultiLayerCache;
  readonly client: ChatClient;
  readonly engine: ReturnType<typeof createInvalidationEngine>;
  readonly redis?: RedisLayer;
}

export async function buildStack(options: StackOptions): Promise<Stack> {
  const components: string[] = [];
  const missing: string[] = [];
  const n = Math.max(1, options.instances ?? (options.redisUrl ? 2 : 1));
  const scopeOf = (tenant: string) => (options.sharedScope ? 'shared' : tenant);
  const prices = { ...OPENAI_PRICES, ...ANTHROPIC_PRICES, ...(options.prices ?? {}) };
  // A run-unique prefix: the demo never reads or clears anything it did not write, even on a shared Redis.
  const prefix = options.prefix ?? `strata-demo:${randomUUID().slice(0, 8)}`;

  let embedder: UseEmbedder | undefined;
  let guardNames = '';
  let loadMs = 0;
  if (options.semantic) {
    const t0 = performance.now();
    options.log('Loading the local sentence encoder (USE-lite, TF.js wasm) …');
    try {
      embedder = await createUseEmbedder(options.embedderWorkers !== undefined ? { workers: options.embedderWorkers } : {});
      loadMs = performance.now() - t0;
    } catch (error) {
      // The demo must still run (and say so) where the encoder cannot start.
      missing.push(`L3 semantic — off: the local embedder could not start (${(error as Error).message})`);
    }
  }
  if (embedder) {
    // The layer's measured default setting (guards, the learned verifier for USE-lite, the selector, the threshold).
    const m = recommendedSetting(embedder);
    guardNames = m.guards.map((g) => g.name).join(', ');
    const i = embedder.info;
    components.push(
      (options.calibration === false
        ? `L3 semantic — @strata-cache/layer-semantic, threshold ${options.threshold ?? m.threshold}, guards ${guardNames}, selector ${m.selector.name} (@strata-cache/semantic-guards defaults); `
        : `L3 semantic — @strata-cache/layer-semantic, calibrated (maxWrongRate ${(options.calibration ?? DEMO_CALIBRATION).maxWrongRate}, shadowRate ${(options.calibration ?? DEMO_CALIBRATION).shadowRate}${options.threshold !== undefined ? `, floor ${options.threshold}` : ''}; @strata-cache/semantic-calibration), guards ${guardNames}; `) +
        `embedder @strata-cache/embed-use ${i.id} on ${i.backend}${i.simd ? ' SIMD' : ''}, ${i.workers} workers, loaded in ${Math.round(loadMs)} ms`,
    );
  } else if (!options.semantic) components.push('L3 semantic — off (--no-semantic)');

  const instances: Instance[] = [];
  const semanticLayers: SemanticLayer[] = [];
  const calibration = options.calibration === false ? undefined : (options.calibration ?? DEMO_CALIBRATION);
  for (let k = 0; k < n; k++) {
    const layers: LayerConfig[] = [{ layer: new MemoryLayer({ maxEntries: 50_000 }) }];
    let redis: RedisLayer | undefined;
    if (options.redisUrl) {
      // 150 ms rather than the 50 ms default: this process also runs the embedder and up to
      // --concurrency SDK calls, so its event loop can be late; a real service would keep 50.
      redis = new RedisLayer({ url: options.redisUrl, prefix, maxTtlMs: 3_600_000, timeoutMs: 150 });
      await redis.connect();
      layers.push({ layer: redis, budgetMs: 150 });
    }
    if (embedder) {
      const replication = options.replicate && redis ? { replication: { feed: new RedisSemanticFeed({ layer: redis }) }, rebuildFrom: redis } : {};
      const semantic = new SemanticLayer({
        embedder,
        ...(options.threshold !== undefined ? { threshold: options.threshold } : {}),
        // Calibrated L3: the instances share what they learn over the L2 Redis when there is one.
        ...(calibration
          ? { calibration: { ...calibration, ...(redis ? { share: { via: redis, channel: `${prefix}:calibration` } } : {}) }, answerText: demoAnswerText }
          : {}),
        ...replication,
      });
      // Open now: a replicating layer joins the feed at start-up, not at its first request.
      await semantic.ready();
      semanticLayers.push(semantic);
      // One embedding on a busy 2-core machine can take tens of ms: give L3 room, still far below a provider call.
      layers.push({ layer: semantic, budgetMs: 1_000 });
    }
    const cache = new MultiLayerCache({
      layers,
      policy: 'deterministic',
      prices,
      budgetMs: 50,
      ...(redis ? { bus: new RedisInvalidationBus({ layer: redis }), coordinator: redis.coordinator } : {}),
    });
    await cache.ready();
    const engine = createInvalidationEngine({
      cache,
      events: { pricing_changed: ['tenant'] },
      rules: [
        tagWhen({ prompt: PRICING_PATTERN }, [PRICING_TAG], 'pricing-answers'),
        onEvent('pricing_changed', (d) => ({ tag: PRICING_TAG, scope: scopeOf(String(d['tenant'])) })),
        maxAge(72 * 3_600_000, undefined, 'faq-72h'),
        creativeRequests(),
        timeSensitivePrompts(),
      ],
    });
    const clientOptions = {
      cache,
      baseURL: options.baseURL,
      apiKey: options.apiKey ?? 'sk-simulated-no-key-needed',
      scopeOf,
      label: options.providerLabel,
      simulated: options.simulated,
    };
    const client: ChatClient = options.api === 'anthropic' ? new AnthropicAdapterClient(clientOptions) : new OpenAIAdapterClient(clientOptions);
    instances.push({ cache, client, engine, ...(redis ? { redis } : {}) });
  }
  components.unshift(
    'L1 memory — @strata-cache/layer-memory (in-process LRU)',
    options.redisUrl
      ? `L2 redis — @strata-cache/layer-redis at ${redactUrl(options.redisUrl)} (keys under ${prefix}:), shared by ${n} app instances; RedisInvalidationBus fans purges out, the Redis lock coalesces misses across instances`
      : 'L2 redis — off (pass --redis URL or set REDIS_URL)',
  );
  if (n > 1) components.push(`${n} app instances, each with its own L1${embedder ? ' and L3' : ''}; requests spread round-robin by conversation`);
  if (semanticLayers.length > 0 && options.replicate && options.redisUrl) {
    components.push(
      "L3 replication — @strata-cache/layer-redis/semantic-feed: each process's semantic index follows every other's writes, deletes and purges through Redis Streams (vectors included: nothing is embedded twice); rebuilds from L2 when it lost its place",
    );
  }
  components.push(
    `invalidation — @strata-cache/invalidation: tag ${PRICING_TAG} on ${PRICING_PATTERN}, event pricing_changed → purge the tag in the tenant's scope, 72 h max age, no caching of creative or time-sensitive prompts`,
  );

  const router: ChatClient = {
    description: instances[0]!.client.description,
    chat(call: ChatCall): Promise<ChatOutcome> {
      return instances[(call.route ?? 0) % n]!.client.chat(call);
    },
  };

  return {
    client: router,
    instances: n,
    components,
    missing,
    prices,
    stats: () => mergeStats(instances.map((i) => i.cache.stats())),
    caches: instances.map((i) => i.cache),
    semanticLayers,
    calibration: () =>
      calibration
        ? calibrationFigures(
            semanticLayers.map((l) => l.stats().calibration),
            calibration,
          )
        : undefined,
    flush: async () => {
      await Promise.all(instances.map((i) => i.cache.flush()));
    },
    async pricingChanged(tenant) {
      const [first, ...others] = instances;
      // The event is applied once every instance has dropped the entries (the bus's fan-out delay).
      const t0 = performance.now();
      const remote = others.map(
        (o, k) =>
          new Promise<{ k: number; counts: Record<string, number>; ms: number }>((resolve) => {
            const onInvalidate = (e: { origin: 'local' | 'remote'; layers: Readonly<Record<string, number>>; message: { type: string } }) => {
              if (e.origin !== 'remote' || e.message.type !== 'tag') return;
              o.cache.off('invalidate', onInvalidate);
              clearTimeout(timer);
              resolve({ k: k + 2, counts: { ...e.layers }, ms: performance.now() - t0 });
            };
            const timer = setTimeout(() => {
              o.cache.off('invalidate', onInvalidate);
              resolve({ k: k + 2, counts: {}, ms: Number.NaN });
            }, 5_000);
            o.cache.on('invalidate', onInvalidate);
          }),
      );
      const audit = await first!.engine.emit('pricing_changed', { tenant });
      const purged: Record<string, number> = { ...audit.layers };
      const delays: string[] = [];
      for (const r of await Promise.all(remote)) {
        for (const [layer, count] of Object.entries(r.counts)) purged[`${layer} (instance ${r.k})`] = count;
        delays.push(Number.isNaN(r.ms) ? `instance ${r.k}: not reached within 5 s` : `reached instance ${r.k} in ${r.ms.toFixed(1)} ms`);
      }
      return { purged, detail: `engine.emit('pricing_changed', { tenant: '${tenant}' })${delays.length ? ` (${delays.join(', ')})` : ''}` };
    },
    async close() {
      await Promise.all(instances.map((i) => i.cache.flush()));
      // Leave nothing behind on a shared Redis: everything this run wrote is under its prefix.
      if (instances[0]!.redis && options.clearOnClose !== false) await instances[0]!.redis.clear().catch(() => undefined);
      for (const i of instances) {
        await i.engine.close();
        await i.cache.close();
      }
      await embedder?.close();
    },
  };
}

function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'the given URL';
  }
}

/** Sums the instances' counters (latency quantiles are not summable: the run measures its own). */
export function mergeStats(all: StatsSnapshot[]): StatsSnapshot {
  if (all.length === 1) return all[0]!;
  const layers: Record<string, LayerStatsSnapshot> = {};
  for (const s of all) {
    for (const [name, l] of Object.entries(s.layers)) {
      const m = layers[name];
      layers[name] = m
        ? {
            hits: m.hits + l.hits,
            misses: m.misses + l.misses,
            errors: m.errors + l.errors,
            timeouts: m.timeouts + l.timeouts,
            writes: m.writes + l.writes,
            p50Ms: undefined,
            p95Ms: undefined,
          }
        : { ...l, p50Ms: undefined, p95Ms: undefined };
    }
  }
  const sum = (f: (s: StatsSnapshot) => number) => all.reduce((a, s) => a + f(s), 0);
  const hits = sum((s) => s.hits);
  const misses = sum((s) => s.misses);
  return {
    requests: sum((s) => s.requests),
    hits,
    misses,
    hitRate: hits + misses === 0 ? 0 : hits / (hits + misses),
    bypassed: sum((s) => s.bypassed),
    policySkips: all.reduce<Record<string, number>>((acc, s) => {
      for (const [reason, n] of Object.entries(s.policySkips ?? {})) acc[reason] = (acc[reason] ?? 0) + n;
      return acc;
    }, {}),
    loaderCalls: sum((s) => s.loaderCalls),
    loaderErrors: sum((s) => s.loaderErrors),
    coalesced: sum((s) => s.coalesced),
    joinedSimilar: { waited: sum((s) => s.joinedSimilar.waited), served: sum((s) => s.joinedSimilar.served) },
    layers,
    tokensSaved: { input: sum((s) => s.tokensSaved.input), output: sum((s) => s.tokensSaved.output) },
    usdSaved: sum((s) => s.usdSaved),
    providerCacheUsdSaved: sum((s) => s.providerCacheUsdSaved),
    providerCachedTokens: sum((s) => s.providerCachedTokens),
    upstreamUsd: sum((s) => s.upstreamUsd),
    unpricedHits: sum((s) => s.unpricedHits),
    calibration: {
      shadowChecks: sum((s) => s.calibration.shadowChecks),
      observed: sum((s) => s.calibration.observed),
      feedback: { wrong: sum((s) => s.calibration.feedback.wrong), right: sum((s) => s.calibration.feedback.right) },
    },
  };
}
