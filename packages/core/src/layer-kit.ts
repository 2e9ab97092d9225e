/**
 * `@strata-cache/core/layer-kit`: what a layer, embedder or coordinator implementer needs, and
 * nothing an application needs. Applications import `@strata-cache/core`.
 */
export { LAYER_SPECIFICATION_VERSION, isPromiseLike } from './layer.js';
export type {
  Layer,
  LayerV1,
  LayerCapabilities,
  LayerContext,
  MaybePromise,
  SemanticQuery,
  SemanticSearchResult,
  RejectedCandidate,
  ScanPage,
  CalibrationNote,
  FeedbackVerdict,
} from './layer.js';
export { expiresAt, remainingTtl, isExpired, isCacheEntry, copyEntry, copyValue, deepFreeze, entryStamp } from './entry.js';
export type { CacheEntry, TokenUsage } from './entry.js';
export type { CacheKey, SemanticDescriptor } from './fingerprint.js';
export { scopeId, scopeBaseId, parseScopeId, sameScopeBase } from './scope.js';
export type { Scope } from './scope.js';
export {
  StrataError,
  InvalidOptionError,
  InvalidRequestError,
  LayerError,
  LayerTimeoutError,
  MissingDependencyError,
  DecodeError,
  closedError,
} from './errors.js';
export type { StrataErrorCode, StrataErrorOptions } from './errors.js';
export { TagScopeIndex } from './tag-scope-index.js';
export { lazyImport } from './lazy.js';
export type { LazyImportOptions } from './lazy.js';
export { invalidationCovers } from './invalidation-log.js';
export { watermarkId, watermarkFromId, watermarkScore } from './watermarks.js';
export type { FleetClock, InvalidationBus, InvalidationEnvelope, InvalidationMessage, InvalidationWatermark, WatermarkStore } from './bus.js';
export { DeadlineQueue, withTimeout } from './deadline-queue.js';
export type { LoadCoordinator, LoadTicket } from './coordinator.js';
export type { Embedder } from './embedder.js';
export { embedderFits } from './guard.js';
export type {
  CandidateSelector,
  GuardInput,
  GuardVerdict,
  SelectorCandidate,
  SelectorContext,
  SelectorNeighbour,
  SelectorVerdict,
  SemanticGuard,
} from './guard.js';
export { checkUnknownKeys } from './options.js';
export {
  checkIntegrationOptions,
  checkCacheOption,
  checkTtlOption,
  checkStringListOption,
  checkSemanticOption,
} from './integration-options.js';
export type { IntegrationOptionsCheck } from './integration-options.js';
