export { withCache, createCachedAnthropic, createAnthropicCachingFetch } from './client.js';
export type { AnthropicCacheOptions, CreateCachedAnthropicOptions, AnthropicClientLike } from './client.js';
export { getCacheInfo, cacheControl, uncachedRequests } from '@strata-cache/http';
export type { CacheInfo, RequestCacheControl, ScopeContext, FetchLike, RecordedEvent } from '@strata-cache/http';
export { anthropicMessagesProfile, anthropicProfile, anthropicUsage, isAnthropicReasoningRequest, withoutCacheControl } from './profiles.js';
export { assembleMessage, messagesEndpoint } from './endpoints.js';
export { ANTHROPIC_PRICES } from './prices.js';
