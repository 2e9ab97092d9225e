export { withCache, createCachedOpenAI, createOpenAICachingFetch } from './client.js';
export type { OpenAICacheOptions, CreateCachedOpenAIOptions, OpenAIClientLike } from './client.js';
export type { CachedEndpoint } from './endpoints.js';
export { assembleChatCompletion, openaiEndpoints, responsesUncachedReason } from './endpoints.js';
export { getCacheInfo, cacheControl, uncachedRequests } from '@strata-cache/http';
export type { CacheInfo, RequestCacheControl, ScopeContext, FetchLike, RecordedEvent } from '@strata-cache/http';
export {
  OPENAI_IGNORED_FIELDS,
  openaiChatProfile,
  openaiResponsesProfile,
  openaiEmbeddingsProfile,
  openaiProfiles,
  isOpenAIReasoningRequest,
  responsesSemanticSplit,
  chatUsage,
  responsesUsage,
  embeddingsUsage,
} from './profiles.js';
export { OPENAI_PRICES } from './prices.js';
export { OpenAIEmbedder } from './embedder.js';
export type { OpenAIEmbedderOptions } from './embedder.js';
export { layoutChatPrompt, layoutResponsesPrompt } from './prompt-layout.js';
export type { OpenAIPromptLayoutOptions, ChatPromptLayout, ResponsesPromptLayout } from './prompt-layout.js';
export type { PromptParts } from '@strata-cache/http';
