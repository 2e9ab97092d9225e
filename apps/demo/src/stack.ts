import { type CachePlugin, type Layer, type MultiLayerCache as Cache, type PriceTable, DEFAULT_PRICES, MultiLayerCache, chatSemanticSplit } from '@strata-cache/core';
import { MemoryLayer } from '@strata-cache/layer-memory';
import { type ChatClient, FetchChatClient } from './client.js';
import { projectOf } from './knowledge.js';

/** Prompts whose answers quote prices: tagged `topic:pricing` when stored, purged when prices change. */
export const PRICING_PATTERN = /\b(price|prices|pricing|cost|costs|how much|discount|per month|per year|yearly|annually)\b/i;
export const PRICING_TAG = 'topic:pricing';

export interface StackOptions {
  /** Base URL of an OpenAI-compatible endpoint (the simulated provider's). */
  readonly baseURL: string;
  readonly providerLabel: string;
  readonly apiKey?: string;
  readonly redisUrl?: string;
  readonly semantic: boolean;
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

/**
 * Fallback used when @strata-cache/invalidation is not installed: a write-time tag rule over
 * the last user turn, and the event purges the tag in the tenant's scope.
 */
function pricingTagPlugin(): CachePlugin {
  return {
    name: 'demo-pricing-tags',
    onRequest: ({ request }) => {
      const text = chatSemanticSplit(request)?.text;
      return text && PRICING_PATTERN.test(text) ? { tags: [PRICING_TAG] } : undefined;
    },
  };
}

export async function buildStack(options: StackOptions): Promise<Stack> {
  const components: string[] = [];
  const missing: string[] = [];
  const layers: Layer[] = [new MemoryLayer({ maxEntries: 50_000 })];
  components.push('L1 memory — @strata-cache/layer-memory (in-process LRU)');
  if (options.redisUrl) missing.push('L2 redis — @strata-cache/layer-redis is not available in this build');
  else components.push('L2 redis — off (pass --redis URL or set REDIS_URL)');
  if (options.semantic) missing.push('L3 semantic — @strata-cache/layer-semantic / embed-use are not available in this build');
  const prices = { ...DEFAULT_PRICES, ...(options.prices ?? {}) };
  const cache = new MultiLayerCache({ layers, policy: 'deterministic', prices, plugins: [pricingTagPlugin()], budgetMs: 250 });
  components.push(`invalidation — built-in tag rule (${PRICING_TAG} on ${PRICING_PATTERN}); @strata-cache/invalidation not available`);
  const client: ChatClient = new FetchChatClient(
    cache,
    options.baseURL,
    (tenant) => ({ 'openai-project': projectOf(tenant), ...(options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {}) }),
    options.providerLabel,
    (tenant) => (options.sharedScope ? 'shared' : tenant),
  );
  return {
    cache,
    client,
    components,
    missing,
    prices,
    async pricingChanged(tenant) {
      const scope = options.sharedScope ? 'shared' : tenant;
      const r = await cache.invalidateTag(PRICING_TAG, { scope });
      return { purged: { ...r.layers }, detail: `invalidateTag(${PRICING_TAG}, scope ${scope})` };
    },
    async close() {
      await client.close?.();
      await cache.close();
    },
  };
}
