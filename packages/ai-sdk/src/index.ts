export { strataCache } from './middleware.js';
export type { StrataCacheOptions, StrataCallOptions, ScopeContext } from './middleware.js';
export { getCacheInfo } from './result.js';
export type { CacheInfo } from './result.js';
export { aiSdkProfile, aiSdkSemanticSplit, keyRequestOf, DEFAULT_KEY_HEADERS, IGNORED_PROVIDER_OPTIONS } from './key.js';
export type { AiSdkKeyRequest, CallKind, KeySettings } from './key.js';
export type { StoredStreamSummary } from './stream.js';
