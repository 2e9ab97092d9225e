/**
 * `@strata-cache/core`: what an application uses (MultiLayerCache, keys, scopes, profiles, errors).
 * Layer, embedder and coordinator implementers import `@strata-cache/core/layer-kit`; the Layer
 * contract types, entry functions and `lazyImport` stay exported here too for existing code.
 */
export {
  StrataError,
  InvalidRequestError,
  InvalidOptionError,
  LayerError,
  LayerTimeoutError,
  MissingDependencyError,
  DecodeError,
  LoadAbandonedError,
} from './errors.js';
export type { StrataErrorCode, StrataErrorOptions } from './errors.js';
export { canonicalize, sha256 } from './canonical.js';
export { resolveScope, scopeId, scopeBaseId, parseScopeId, sameScopeBase, DEFAULT_TENANT, DEFAULT_NAMESPACE } from './scope.js';
export type { Scope, ScopeInput } from './scope.js';
export {
  COMMON_IGNORED_FIELDS,
  chatProfile,
  genericProfile,
  defineProfile,
  chatSemanticSplit,
  messageText,
  samplingIsDeterministic,
} from './profile.js';
export type { RequestProfile, SemanticSplit } from './profile.js';
export { KEY_SCHEMA_VERSION, computeKey, computeSemantic, makeKey, fingerprint, explainKeyDifference, sealRequest } from './fingerprint.js';
export type { CacheKey, SemanticDescriptor, FingerprintOptions, FieldDifference, KeyExplanation } from './fingerprint.js';
export { expiresAt, remainingTtl, isExpired, entryStamp } from './entry.js';
export type { CacheEntry, TokenUsage } from './entry.js';
export { LAYER_SPECIFICATION_VERSION, isPromiseLike } from './layer.js';
export type {
  Layer,
  LayerV1,
  LayerCapabilities,
  LayerContext,
  MaybePromise,
  SemanticQuery,
  SemanticSearchResult,
  InFlightMatch,
  RejectedCandidate,
  ScanPage,
  CalibrationNote,
  FeedbackVerdict,
} from './layer.js';
export type { Embedder } from './embedder.js';
export { LocalInvalidationBus } from './bus.js';
export type { FleetClock, InvalidationBus, InvalidationEnvelope, InvalidationMessage, InvalidationWatermark, WatermarkStore } from './bus.js';
export type { InvalidationStatus } from './invalidation-sync.js';
export type { LoadCoordinator, LoadTicket } from './coordinator.js';
export {
  findPrice,
  costUsd,
  providerCacheSavingsUsd,
  projectMonthlySavings,
  LatencyRecorder,
} from './stats.js';
export type { ModelPrice, PriceTable, StatsSnapshot, LayerStatsSnapshot } from './stats.js';
export { MultiLayerCache } from './multi-layer-cache.js';
export { loaded } from './types.js';
export { CACHE_DEFAULTS } from './options.js';
export type { Begun, BegunHit, JoinedLoad, PendingLoad } from './load-path.js';
export type {
  Call,
  StoreOptions,
  WrapOptions,
  MultiLayerCacheOptions,
  LayerConfig,
  CachePolicy,
  PolicyDecision,
  PolicyContext,
  CachePlugin,
  WriteContext,
  HitContext,
  CallOptions,
  Loaded,
  Loader,
  CacheResult,
  CalibrationInfo,
  FeedbackResult,
  LookupHit,
  InvalidationResult,
  CacheEvents,
} from './types.js';
export { lazyImport } from './lazy.js';
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
export { embedderFits } from './guard.js';
