import { type CachingOptions, type FetchLike, type ProviderSpec, createCachedClient, createProviderCachingFetch, withCachingFetch } from '@strata-cache/http';
import { Anthropic, type ClientOptions } from '@anthropic-ai/sdk';
import { messagesEndpoint } from './endpoints.js';

const PKG = '@strata-cache/anthropic';

/** Options of `withCache` (and, with `client` / `clientOptions`, of `createCachedAnthropic`). */
export interface AnthropicCacheOptions extends CachingOptions {}

export interface CreateCachedAnthropicOptions extends AnthropicCacheOptions {
  /** An existing client; a copy that caches is returned and the original is left untouched. @default new Anthropic(clientOptions) */
  client?: Anthropic | undefined;
  /** Options for a new client when `client` is not given. @default {} (reads ANTHROPIC_API_KEY like the SDK) */
  clientOptions?: ClientOptions | undefined;
}

const ANTHROPIC: ProviderSpec<Anthropic, AnthropicCacheOptions> = {
  packageName: PKG,
  clientHint: 'new Anthropic(...)',
  isClient: (client) => client instanceof Anthropic,
  endpoints: (options) => [messagesEndpoint(options.reasoningModels ?? [])],
  // The API version and beta flags select behaviour; x-api-key / Authorization never enter the key.
  keyHeaders: ['anthropic-version', 'anthropic-beta'],
  requestIdHeader: 'request-id',
};

/**
 * What `withCache` takes: an `Anthropic` instance. Described by shape rather than by class, so a
 * client from another copy of `@anthropic-ai/sdk` in the same project (a monorepo with two
 * installs) type-checks too; the SDK's classes compare by their private fields otherwise.
 */
export interface AnthropicClientLike {
  withOptions(options: never): unknown;
  readonly messages: object;
}

/**
 * Returns a copy of `client` whose `messages` requests go through the cache. The copy has the
 * client's own type: `messages.create` (plain and `stream: true`), `messages.stream()`, tool
 * use and thinking blocks work unchanged. `const anthropic = withCache(new Anthropic(), { cache })`.
 */
export function withCache<C extends AnthropicClientLike>(client: C, options: AnthropicCacheOptions): C {
  return withCachingFetch(client as unknown as Anthropic, options, ANTHROPIC) as unknown as C;
}

/** A new cached Anthropic client (or a cached copy of `client`). */
export function createCachedAnthropic(options: CreateCachedAnthropicOptions): Anthropic {
  return createCachedClient(ANTHROPIC, options, 'createCachedAnthropic', (clientOptions) => new Anthropic(clientOptions));
}

/** The caching `fetch` alone, for other clients of the Messages API. */
export function createAnthropicCachingFetch(options: AnthropicCacheOptions & { fetch?: FetchLike | undefined }): FetchLike {
  return createProviderCachingFetch(ANTHROPIC, options);
}
