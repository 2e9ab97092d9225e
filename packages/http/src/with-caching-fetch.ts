import { InvalidOptionError } from '@strata-cache/core';
import { createCachingFetch } from './caching-fetch.js';
import { CACHING_DEFAULTS, CACHING_OPTION_NAMES, type CachingOptions, checkCachingOptions, checkPacing } from './options.js';
import type { EndpointSpec, FetchLike } from './types.js';

/** What a provider adapter tells `withCachingFetch` about its SDK and API. */
export interface ProviderSpec<C, O extends CachingOptions = CachingOptions> {
  /** Named in every error: `@strata-cache/openai`. */
  readonly packageName: string;
  /** How to build the client, for the error a wrong `client` gets: `new OpenAI(...)`. */
  readonly clientHint: string;
  /** True for an instance of the SDK's client class. */
  isClient(client: unknown): boolean;
  /** Option names the adapter adds to `CachingOptions`. @default [] */
  readonly extraOptions?: readonly (keyof O & string)[] | undefined;
  /** Checks the adapter's own options (the shared ones are checked already). */
  checkOptions?(options: O): void;
  /** The endpoints a client with these options caches, with their profiles. */
  endpoints(options: O): readonly EndpointSpec[];
  /** Request headers that change the answer (API version, beta flags); lower-case. */
  readonly keyHeaders: readonly string[];
  /** Query parameters that change the answer (Azure's `api-version`). @default [] */
  readonly keyQuery?: readonly string[] | undefined;
  /** Response header the SDK reads into `_request_id`. */
  readonly requestIdHeader: string;
  /**
   * A copy of `client` that sends every request through `fetch`, the original left as it was.
   * @default client.withOptions({ fetch })
   */
  copyWithFetch?(client: C, fetch: FetchLike): C;
}

/** The option names a provider's `withCache` accepts. */
export function optionNames<C, O extends CachingOptions>(spec: ProviderSpec<C, O>): readonly string[] {
  return [...CACHING_OPTION_NAMES, ...(spec.extraOptions ?? [])];
}

/**
 * Returns a copy of `client` whose requests go through the cache. The copy has the client's own
 * type, so every method, helper and stream class keeps working. Adapters call this with their
 * `ProviderSpec`: `withCache(client, options)` is `withCachingFetch(client, options, OPENAI)`.
 */
export function withCachingFetch<C, O extends CachingOptions>(client: C, options: O, spec: ProviderSpec<C, O>): C {
  const c = client as { withOptions?: unknown; fetch?: unknown } | null;
  if (!spec.isClient(client) && typeof c?.withOptions !== 'function') {
    throw new InvalidOptionError(`${spec.packageName}: withCache needs a client instance (${spec.clientHint})`, { field: 'client' });
  }
  const upstream = (typeof c?.fetch === 'function' ? c.fetch : globalThis.fetch) as FetchLike;
  const fetch = createProviderFetch(options, spec, upstream);
  const copy = spec.copyWithFetch ? spec.copyWithFetch(client, fetch) : (c as { withOptions(o: { fetch: FetchLike }): C }).withOptions({ fetch });
  // A client that keeps a fetch of its own (openai 7 with an X.509 workload identity sends every
  // request through its mTLS fetch) would never reach the cache: say so instead of not caching.
  const used = (copy as { fetch?: unknown } | null)?.fetch;
  if (used !== undefined && used !== fetch) {
    throw new InvalidOptionError(
      `${spec.packageName}: this client sends its requests through a fetch of its own (e.g. an mTLS / X.509 workload-identity client), not the one withCache gives it, so its requests cannot be cached`,
      { field: 'client' },
    );
  }
  return copy;
}

/** What a provider's `createCached…` takes besides its caching options: a client, or options for a new one. */
export interface ClientChoice<C, CO> {
  client?: C | undefined;
  clientOptions?: CO | undefined;
}

/**
 * A provider's `createCached…` (`createCachedOpenAI`, `createCachedAnthropic`): the options
 * checked (the caching ones, `client` and `clientOptions`, never both), then a caching copy of
 * `client`, or of `newClient(clientOptions)`.
 */
export function createCachedClient<C, O extends CachingOptions, CO>(
  spec: ProviderSpec<C, O>,
  options: O & ClientChoice<C, CO>,
  takenBy: string,
  newClient: (clientOptions: CO | undefined) => C,
): C {
  checkCachingOptions(spec.packageName, options, [...optionNames(spec), 'client', 'clientOptions'], takenBy);
  const { client, clientOptions, ...cacheOptions } = options;
  if (client && clientOptions)
    throw new InvalidOptionError(`${spec.packageName}: pass either "client" or "clientOptions", not both`, { field: 'clientOptions' });
  return withCachingFetch(client ?? newClient(clientOptions), cacheOptions as unknown as O, spec);
}

/** A provider's `create…CachingFetch`: its caching fetch in front of `options.fetch` (default: the global fetch). */
export function createProviderCachingFetch<C, O extends CachingOptions>(spec: ProviderSpec<C, O>, options: O & { fetch?: FetchLike | undefined }): FetchLike {
  const { fetch, ...rest } = options;
  return createProviderFetch(rest as unknown as O, spec, fetch ?? (globalThis.fetch as FetchLike));
}

/** The caching fetch alone for a provider, in front of `upstream` (for clients other than the official SDK). */
export function createProviderFetch<C, O extends CachingOptions>(options: O, spec: ProviderSpec<C, O>, upstream: FetchLike): FetchLike {
  checkCachingOptions(spec.packageName, options, optionNames(spec));
  spec.checkOptions?.(options);
  return createCachingFetch({
    packageName: spec.packageName,
    cache: options.cache,
    scope: options.scope,
    endpoints: spec.endpoints(options),
    keyHeaders: spec.keyHeaders,
    keyQuery: spec.keyQuery ?? [],
    requestIdHeader: spec.requestIdHeader,
    upstream,
    pacing: checkPacing(spec.packageName, options.replay),
    ttlMs: options.ttlMs,
    tags: [...(options.tags ?? CACHING_DEFAULTS.tags)],
  });
}
