export {
  argumentOrderGuard,
  contentOverlapGuard,
  directionGuard,
  entitiesGuard,
  entityTokens,
  negationCount,
  negationGuard,
  numbersGuard,
  oppositesGuard,
  symbolsGuard,
} from './guards.js';
export type { ContentOverlapOptions, EntitiesGuardOptions, LexiconGuardOptions, NumbersGuardOptions, OppositesGuardOptions } from './guards.js';
export { defaultGuards, explainGuards, runGuards } from './default-guards.js';
export type { GuardOutcome, SemanticGuardsOptions } from './default-guards.js';
export { extractMentions } from './quantities.js';
export type { Mention } from './quantities.js';
export { analyze, stem, tokenize } from './text.js';
export type { Analysis, Token } from './text.js';
export { DIRECTION_GROUPS, OPPOSITE_GROUPS, REVERSING_PREFIXES } from './lexicon.js';
export type { PoleGroup } from './lexicon.js';
export { pairVerifierGuard, sameText } from './verifier.js';
export { sameQuestion, unframed } from './framing.js';
export type { PairModel, PairVerifierOptions } from './verifier.js';
export { USE_LITE_VERIFIER_MIN_PROBABILITY, USE_LITE_VERIFIER_TRUST_ABOVE, useLiteVerifier, useLiteVerifierModel } from './use-lite-verifier.js';
export { lexicalSelector, sameValue, wordOverlap } from './selector.js';
export { answerTextOf, MAX_ANSWER_CHARS } from './answer-text.js';
export { CONSENSUS_DEFAULTS, consensusSelector } from './consensus.js';
export type { ConsensusSelectorOptions } from './consensus.js';
export type { LexicalSelectorOptions } from './selector.js';
export { RECOMMENDED_THRESHOLD, recommendedSetting, verifierFits } from './recommended.js';
export type { SemanticSetting } from './recommended.js';
