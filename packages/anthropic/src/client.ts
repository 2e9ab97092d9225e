import { type MultiLayerCache, type ScopeInput, InvalidOptionError } from '@strata-cache/core';
import { Anthropic, type ClientOptions } from '@anthropic-ai/sdk';
import { type FetchLike, type ScopeContext, checkPacing, createCachingFetch } from './http-cache.js';
import { messagesEndpoint } from './profiles.js';

const PKG = '@strata-cache/anthropic';

/** Options of `withCache` (and, with `client` / `clientOptions`, of `createCachedAnthropic`). */
export interface AnthropicCacheOptions {
  /** The cache that stores answers (build it with `MultiLayerCache` from @strata-cache/core). */
  cache: MultiLayerCache;
  /**
   * Tenant / namespace of every request, or a function of the request body returning it
   * (e.g. reading an AsyncLocalStorage). Tenants never share entries.
   * @default the cache's default scope
   */
  scope?: ScopeInput | ((ctx: ScopeContext) => ScopeInput | undefined);
  /**
   * How cached streams are replayed. `pacing: 'none'` sends events as fast as they are read;
   * `'recorded'` keeps the original gaps (each at most `maxGapMs`); a number is a fixed gap in ms.
   * @default { pacing: 'none', maxGapMs: 1000 }
   */
  replay?: { pacing?: 'none' | 'recorded' | number; maxGapMs?: number };
  /** TTL of stored answers, ms. @default the cache's defaultTtlMs */
  ttlMs?: number;
  /** Tags added to every stored answer. @default [] */
  tags?: readonly string[];
}

export interface CreateCachedAnthropicOptions extends AnthropicCacheOptions {
  /** An existing client; a copy that caches is returned and the original is left untouched. @default new Anthropic(clientOptions) */
  client?: Anthropic;
  /** Options for a new client when `client` is not given. @default {} (reads ANTHROPIC_API_KEY like the SDK) */
  clientOptions?: ClientOptions;
}

const CACHE_KEYS = ['cache', 'scope', 'replay', 'ttlMs', 'tags'];

/**
 * Returns a copy of `client` whose `messages` requests go through the cache. The copy has the
 * client's own type: `messages.create` (plain and `stream: true`), `messages.stream()`, tool
 * use and thinking blocks work unchanged. `const anthropic = withCache(new Anthropic(), { cache })`.
 */
export function withCache<C extends Anthropic>(client: C, options: AnthropicCacheOptions): C {
  if (!(client instanceof Anthropic) && typeof (client as { withOptions?: unknown })?.withOptions !== 'function') {
    throw new InvalidOptionError(`${PKG}: withCache needs an Anthropic client instance (new Anthropic(...))`, { field: 'client' });
  }
  checkOptions(options, CACHE_KEYS);
  const upstream = ((client as unknown as { fetch?: FetchLike }).fetch ?? globalThis.fetch) as FetchLike;
  return client.withOptions({ fetch: cachingFetch(options, upstream) as ClientOptions['fetch'] }) as C;
}

/** A new cached Anthropic client (or a cached copy of `client`). */
export function createCachedAnthropic(options: CreateCachedAnthropicOptions): Anthropic {
  checkOptions(options, [...CACHE_KEYS, 'client', 'clientOptions']);
  const { client, clientOptions, ...cacheOptions } = options;
  if (client && clientOptions) throw new InvalidOptionError(`${PKG}: pass either "client" or "clientOptions", not both`, { field: 'clientOptions' });
  return withCache(client ?? new Anthropic(clientOptions), cacheOptions);
}

/** The caching `fetch` alone, for other clients of the Messages API. */
export function createAnthropicCachingFetch(options: AnthropicCacheOptions & { fetch?: FetchLike }): FetchLike {
  const { fetch, ...rest } = options;
  checkOptions(rest, CACHE_KEYS);
  return cachingFetch(rest, fetch ?? (globalThis.fetch as FetchLike));
}

function cachingFetch(options: AnthropicCacheOptions, upstream: FetchLike): FetchLike {
  if (options.ttlMs !== undefined && !(options.ttlMs > 0)) throw new InvalidOptionError(`${PKG}: option "ttlMs" must be a positive number of ms`, { field: 'ttlMs' });
  return createCachingFetch({
    packageName: PKG,
    cache: options.cache,
    scope: options.scope,
    endpoints: [messagesEndpoint],
    // The API version and beta flags select behaviour; x-api-key / Authorization never enter the key.
    keyHeaders: ['anthropic-version', 'anthropic-beta'],
    requestIdHeader: 'request-id',
    upstream,
    pacing: checkPacing(PKG, options.replay),
    ttlMs: options.ttlMs,
    tags: [...(options.tags ?? [])],
  });
}

function checkOptions(options: object, known: readonly string[]): void {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError(`${PKG}: options must be an object with at least "cache"`);
  for (const k of Object.keys(options)) {
    if (!known.includes(k)) throw new InvalidOptionError(`${PKG}: unknown option "${k}"`, { field: k });
  }
  const cache = (options as { cache?: unknown }).cache;
  if (!cache || typeof (cache as MultiLayerCache).getOrLoad !== 'function' || typeof (cache as MultiLayerCache).lookup !== 'function') {
    throw new InvalidOptionError(`${PKG}: option "cache" must be a MultiLayerCache from @strata-cache/core`, { field: 'cache' });
  }
}
