import { type MultiLayerCache, type ScopeInput, InvalidOptionError } from '@strata-cache/core';
import { type ClientOptions, OpenAI } from 'openai';
import { type EndpointSpec, type FetchLike, type ScopeContext, checkPacing, createCachingFetch } from './http-cache.js';
import { chatEndpoint, embeddingsEndpoint, responsesEndpoint } from './profiles.js';

const PKG = '@strata-cache/openai';

/** An OpenAI endpoint this package can cache. */
export type CachedEndpoint = 'chat.completions' | 'responses' | 'embeddings';

const ENDPOINTS: Record<CachedEndpoint, EndpointSpec> = {
  'chat.completions': chatEndpoint,
  responses: responsesEndpoint,
  embeddings: embeddingsEndpoint,
};

/** Options of `withCache` (and, with `client` / `clientOptions`, of `createCachedOpenAI`). */
export interface OpenAICacheOptions {
  /** The cache that stores answers (build it with `MultiLayerCache` from @strata-cache/core). */
  cache: MultiLayerCache;
  /**
   * Tenant / namespace of every request, or a function of the request body returning it
   * (e.g. reading an AsyncLocalStorage). Tenants never share entries.
   * @default the cache's default scope
   */
  scope?: ScopeInput | ((ctx: ScopeContext) => ScopeInput | undefined);
  /** Which endpoints are cached; other requests go straight to the API. @default ['chat.completions', 'responses', 'embeddings'] */
  endpoints?: readonly CachedEndpoint[];
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

export interface CreateCachedOpenAIOptions extends OpenAICacheOptions {
  /** An existing client; a copy that caches is returned and the original is left untouched. @default new OpenAI(clientOptions) */
  client?: OpenAI;
  /** Options for a new client when `client` is not given. @default {} (reads OPENAI_API_KEY like the SDK) */
  clientOptions?: ClientOptions;
}

const CACHE_KEYS = ['cache', 'scope', 'endpoints', 'replay', 'ttlMs', 'tags'];

/**
 * Returns a copy of `client` whose requests go through the cache. The copy has the client's
 * own type, so every method, helper and stream class keeps working:
 * `const openai = withCache(new OpenAI(), { cache })`.
 */
export function withCache<C extends OpenAI>(client: C, options: OpenAICacheOptions): C {
  if (!(client instanceof OpenAI) && typeof (client as { withOptions?: unknown })?.withOptions !== 'function') {
    throw new InvalidOptionError(`${PKG}: withCache needs an OpenAI client instance (new OpenAI(...))`, { field: 'client' });
  }
  checkOptions(options, CACHE_KEYS);
  const upstream = ((client as unknown as { fetch?: FetchLike }).fetch ?? globalThis.fetch) as FetchLike;
  const fetch = cachingFetch(options, upstream);
  return client.withOptions({ fetch: fetch as ClientOptions['fetch'] }) as C;
}

/** A new cached OpenAI client (or a cached copy of `client`). */
export function createCachedOpenAI(options: CreateCachedOpenAIOptions): OpenAI {
  checkOptions(options, [...CACHE_KEYS, 'client', 'clientOptions']);
  const { client, clientOptions, ...cacheOptions } = options;
  if (client && clientOptions) throw new InvalidOptionError(`${PKG}: pass either "client" or "clientOptions", not both`, { field: 'clientOptions' });
  return withCache(client ?? new OpenAI(clientOptions), cacheOptions);
}

/** The caching `fetch` alone, for OpenAI-compatible clients other than the official SDK. */
export function createOpenAICachingFetch(options: OpenAICacheOptions & { fetch?: FetchLike }): FetchLike {
  const { fetch, ...rest } = options;
  checkOptions(rest, CACHE_KEYS);
  return cachingFetch(rest, fetch ?? (globalThis.fetch as FetchLike));
}

function cachingFetch(options: OpenAICacheOptions, upstream: FetchLike): FetchLike {
  const names = options.endpoints ?? (Object.keys(ENDPOINTS) as CachedEndpoint[]);
  if (!Array.isArray(names) || names.some((n: unknown) => typeof n !== 'string' || !(n in ENDPOINTS))) {
    throw new InvalidOptionError(`${PKG}: option "endpoints" lists endpoints among ${Object.keys(ENDPOINTS).join(', ')}`, { field: 'endpoints' });
  }
  if (options.ttlMs !== undefined && !(options.ttlMs > 0)) throw new InvalidOptionError(`${PKG}: option "ttlMs" must be a positive number of ms`, { field: 'ttlMs' });
  return createCachingFetch({
    packageName: PKG,
    cache: options.cache,
    scope: options.scope,
    endpoints: names.map((n: CachedEndpoint) => ENDPOINTS[n]),
    // Beta headers select API behaviour; organisation/project ids and auth never enter the key.
    keyHeaders: ['openai-beta'],
    requestIdHeader: 'x-request-id',
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
