export { withCache, createCachedAnthropic, createAnthropicCachingFetch } from './client.js';
export type { AnthropicCacheOptions, CreateCachedAnthropicOptions } from './client.js';
export { getCacheInfo, cacheControl } from './http-cache.js';
export type { CacheInfo, RequestCacheControl, ScopeContext, FetchLike, RecordedEvent } from './http-cache.js';
export { anthropicMessagesProfile, anthropicUsage, assembleMessage, withoutCacheControl } from './profiles.js';
