export { withCache, createCachedOpenAI, createOpenAICachingFetch } from './client.js';
export type { OpenAICacheOptions, CreateCachedOpenAIOptions, CachedEndpoint } from './client.js';
export { getCacheInfo, cacheControl } from './http-cache.js';
export type { CacheInfo, RequestCacheControl, ScopeContext, FetchLike, RecordedEvent } from './http-cache.js';
export {
  openaiChatProfile,
  openaiResponsesProfile,
  openaiEmbeddingsProfile,
  responsesSemanticSplit,
  chatUsage,
  responsesUsage,
  assembleChatCompletion,
} from './profiles.js';
export { OpenAIEmbedder } from './embedder.js';
export type { OpenAIEmbedderOptions } from './embedder.js';
