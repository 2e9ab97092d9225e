import { InvalidOptionError } from '@strata-cache/core';
import { type CachingOptions, type FetchLike, type ProviderSpec, createCachedClient, createProviderCachingFetch, withCachingFetch } from '@strata-cache/http';
import { type ClientOptions, OpenAI } from 'openai';
import { CACHED_ENDPOINTS, type CachedEndpoint, openaiEndpoints } from './endpoints.js';

const PKG = '@strata-cache/openai';

/** Options of `withCache` (and, with `client` / `clientOptions`, of `createCachedOpenAI`). */
export interface OpenAICacheOptions extends CachingOptions {
  /** Which endpoints are cached; other requests go straight to the API. @default ['chat.completions', 'responses', 'embeddings'] */
  endpoints?: readonly CachedEndpoint[] | undefined;
}

export interface CreateCachedOpenAIOptions extends OpenAICacheOptions {
  /** An existing client; a copy that caches is returned and the original is left untouched. @default new OpenAI(clientOptions) */
  client?: OpenAI | undefined;
  /** Options for a new client when `client` is not given. @default {} (reads OPENAI_API_KEY like the SDK) */
  clientOptions?: ClientOptions | undefined;
}

const OPENAI: ProviderSpec<OpenAI, OpenAICacheOptions> = {
  packageName: PKG,
  clientHint: 'new OpenAI(...) or new AzureOpenAI(...)',
  isClient: (client) => client instanceof OpenAI,
  extraOptions: ['endpoints'],
  checkOptions(options) {
    const names = options.endpoints;
    if (
      names !== undefined &&
      (!Array.isArray(names) || names.some((n: unknown) => typeof n !== 'string' || !CACHED_ENDPOINTS.includes(n as CachedEndpoint)))
    ) {
      throw new InvalidOptionError(`${PKG}: option "endpoints" lists endpoints among ${CACHED_ENDPOINTS.join(', ')}`, { field: 'endpoints' });
    }
  },
  endpoints(options) {
    const all = openaiEndpoints(options.reasoningModels ?? []);
    return (options.endpoints ?? CACHED_ENDPOINTS).map((n) => all[n]);
  },
  // Beta headers select API behaviour; organisation/project ids and auth never enter the key.
  keyHeaders: ['openai-beta'],
  // Azure selects the API version by query parameter.
  keyQuery: ['api-version'],
  requestIdHeader: 'x-request-id',
  copyWithFetch(client, fetch) {
    // `withOptions` rebuilds the client from its constructor options. Before openai 7 that drops
    // AzureOpenAI's `apiVersion` and `deployment` (the copy then throws without
    // OPENAI_API_VERSION, or calls the wrong deployment) and its Entra ID token provider (kept
    // as `_azureADTokenProvider` in openai 5, as a function `apiKey` in 6, which the copy turns
    // into its last token). Hand those back explicitly.
    const c = client as OpenAI & { apiVersion?: unknown; deploymentName?: unknown; _azureADTokenProvider?: unknown; _options?: { apiKey?: unknown } };
    const keep: Record<string, unknown> = {};
    if (typeof c.apiVersion === 'string' && c.apiVersion !== '') keep['apiVersion'] = c.apiVersion;
    if (typeof c.deploymentName === 'string' && c.deploymentName !== '') keep['deployment'] = c.deploymentName;
    if (typeof c._azureADTokenProvider === 'function') Object.assign(keep, { azureADTokenProvider: c._azureADTokenProvider, apiKey: undefined });
    else if (typeof c._options?.apiKey === 'function') keep['apiKey'] = c._options.apiKey;
    return client.withOptions({ ...keep, fetch: fetch as ClientOptions['fetch'] });
  },
};

/**
 * What `withCache` takes: an `OpenAI` or `AzureOpenAI` instance. Described by shape rather than
 * by class, so a client from another copy of `openai` in the same project (a monorepo with two
 * installs) type-checks too; the SDK's classes compare by their private fields otherwise.
 */
export interface OpenAIClientLike {
  withOptions(options: never): unknown;
  readonly chat: object;
  readonly responses: object;
  readonly embeddings: object;
}

/**
 * Returns a copy of `client` whose requests go through the cache. The copy has the client's
 * own type, so every method, helper and stream class keeps working:
 * `const openai = withCache(new OpenAI(), { cache })`. AzureOpenAI clients work the same way.
 */
export function withCache<C extends OpenAIClientLike>(client: C, options: OpenAICacheOptions): C {
  return withCachingFetch(client as unknown as OpenAI, options, OPENAI) as unknown as C;
}

/** A new cached OpenAI client (or a cached copy of `client`). */
export function createCachedOpenAI(options: CreateCachedOpenAIOptions): OpenAI {
  return createCachedClient(OPENAI, options, 'createCachedOpenAI', (clientOptions) => new OpenAI(clientOptions));
}

/** The caching `fetch` alone, for OpenAI-compatible clients other than the official SDK. */
export function createOpenAICachingFetch(options: OpenAICacheOptions & { fetch?: FetchLike | undefined }): FetchLike {
  return createProviderCachingFetch(OPENAI, options);
}
