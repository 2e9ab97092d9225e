import { performance } from 'node:perf_hooks';
import { type LayerConfig, type MultiLayerCache as Cache, type PriceTable, DEFAULT_PRICES, MultiLayerCache } from '@strata-cache/core';
import { type UseEmbedder, createUseEmbedder } from '@strata-cache/embed-use';
import { createInvalidationEngine, creativeRequests, maxAge, onEvent, tagWhen, timeSensitivePrompts } from '@strata-cache/invalidation';
import { MemoryLayer } from '@strata-cache/layer-memory';
import { SemanticLayer } from '@strata-cache/layer-semantic';
import { defaultGuards } from '@strata-cache/semantic-guards';
import { AnthropicAdapterClient, type ChatClient, OpenAIAdapterClient } from './client.js';

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
  readonly redisUrl?: string;
  readonly semantic: boolean;
  /** Similarity threshold of L3 (the layer's default when unset). */
  readonly threshold?: number;
  /** Fault injection: every tenant in one cache scope. */
  readonly sharedScope?: boolean;
  readonly prices?: PriceTable;
  readonly log: (line: string) => void;
}

export interface Stack {
  readonly cache: Cache;
  readonly client: ChatClient;
  /** One line per component, for the summary ("L1 memory (@strata-cache/layer-memory)"). */
  readonly components: string[];
  /** What is missing from the full stack and why. */
  readonly missing: string[];
  readonly prices: PriceTable;
  /** Purges what a "pricing changed" event makes stale. */
  pricingChanged(tenant: string): Promise<{ purged: Record<string, number>; detail: string }>;
  close(): Promise<void>;
}

export async function buildStack(options: StackOptions): Promise<Stack> {
  const components: string[] = [];
  const missing: string[] = [];
  const layers: LayerConfig[] = [{ layer: new MemoryLayer({ maxEntries: 50_000 }) }];
  components.push('L1 memory — @strata-cache/layer-memory (in-process LRU)');
  if (options.redisUrl) missing.push('L2 redis — @strata-cache/layer-redis is not available in this build');
  else components.push('L2 redis — off (pass --redis URL or set REDIS_URL)');
  let embedder: UseEmbedder | undefined;
  if (options.semantic) {
    const t0 = performance.now();
    options.log('Loading the local sentence encoder (USE-lite, TF.js wasm) …');
    embedder = await createUseEmbedder();
    const guards = defaultGuards();
    const semantic = new SemanticLayer({ embedder, guards, ...(options.threshold !== undefined ? { threshold: options.threshold } : {}) });
    // One embedding on a busy 2-core machine can take tens of ms: give L3 room, it is still far below a provider call.
    layers.push({ layer: semantic, budgetMs: 1_000 });
    const i = embedder.info;
    components.push(
      `L3 semantic — @strata-cache/layer-semantic, threshold ${options.threshold ?? 'default'}, guards ${guards.map((g) => g.name).join(', ')} (@strata-cache/semantic-guards); ` +
        `embedder @strata-cache/embed-use ${i.id} on ${i.backend}${i.simd ? ' SIMD' : ''}, ${i.workers} workers, loaded in ${Math.round(performance.now() - t0)} ms`,
    );
  } else components.push('L3 semantic — off (--no-semantic)');
  const prices = { ...DEFAULT_PRICES, ...(options.prices ?? {}) };
  const cache = new MultiLayerCache({ layers, policy: 'deterministic', prices, budgetMs: 50 });
  const scopeOf = (tenant: string) => (options.sharedScope ? 'shared' : tenant);
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
  components.push(
    `invalidation — @strata-cache/invalidation: tag ${PRICING_TAG} on ${PRICING_PATTERN}, event pricing_changed → purge the tag in the tenant's scope, 72 h max age, no caching of creative or time-sensitive prompts`,
  );
  const clientOptions = {
    cache,
    baseURL: options.baseURL,
    apiKey: options.apiKey ?? 'sk-simulated-no-key-needed',
    scopeOf,
    label: options.providerLabel,
  };
  const client: ChatClient =
    options.api === 'anthropic' ? new AnthropicAdapterClient({ ...clientOptions, simulated: options.simulated }) : new OpenAIAdapterClient(clientOptions);
  return {
    cache,
    client,
    components,
    missing,
    prices,
    async pricingChanged(tenant) {
      const audit = await engine.emit('pricing_changed', { tenant });
      return { purged: { ...audit.layers }, detail: `engine.emit('pricing_changed', { tenant: '${tenant}' })` };
    },
    async close() {
      await client.close?.();
      await engine.close();
      await cache.close();
      await embedder?.close();
    },
  };
}
