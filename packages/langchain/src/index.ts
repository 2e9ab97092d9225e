export { StrataLangChainCache, IGNORED_LLM_FIELDS } from './cache.js';
export type { StrataLangChainCacheOptions, StoredGenerations } from './cache.js';
export { langChainProfile, langChainSemanticSplit, keyRequestOf, parseLlmString, isCredentialField, hasUnrenderedContent } from './key.js';
export type { LangChainKeyRequest } from './key.js';
