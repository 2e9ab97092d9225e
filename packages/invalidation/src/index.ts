export { InvalidationEngine, createInvalidationEngine } from './engine.js';
export { covers, storedText, PROMPT_META_KEY, STARTED_META_KEY } from './internals.js';
export type { InvalidationEngineOptions, InvalidationAudit, PromptPurgeOptions, PromptPurgeReport, VersionStore } from './types.js';
export {
  maxAge,
  tagWhen,
  noCache,
  onEvent,
  staleAfterModelChange,
  creativeRequests,
  timeSensitivePrompts,
  DEFAULT_TIME_SENSITIVE_WORDS,
} from './rules.js';
export type {
  InvalidationRule,
  MaxAgeRule,
  TagRule,
  TagRuleTags,
  NoCacheRule,
  EventRule,
  EventTargets,
  InvalidationTarget,
  StaleAfterModelChangeRule,
  Match,
  RuleContext,
  CreativeRequestsOptions,
  TimeSensitivePromptsOptions,
} from './rules.js';
export { compilePattern, compileTemplate, defaultPromptText } from './patterns.js';
export type { PatternInput, Template } from './patterns.js';
