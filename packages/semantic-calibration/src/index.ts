export { SemanticCalibrator } from './calibrator.js';
export type {
  CalibrationAction,
  CalibrationCandidate,
  CalibrationCounters,
  CalibrationDecision,
  CalibrationDelta,
  CalibrationSnapshot,
  CalibrationStats,
  DecideInput,
  DecisionToken,
  JudgedOutcome,
  SemanticCalibratorOptions,
} from './types.js';
export { embeddingAnswerJudge, llmAnswerJudge, LexicalAgreement } from './judge.js';
// The readable text of an answer lives in semantic-guards (the selectors compare answers by it too).
export { answerTextOf, MAX_ANSWER_CHARS } from '@strata-cache/semantic-guards';
export type { AnswerJudge, AnswerJudgeInput, AnswerVerdict, EmbeddingAnswerJudgeOptions, LlmAnswerJudgeOptions } from './judge.js';
export { betaQuantile, clopperPearson, incompleteBeta, isotonic, normalQuantile, wilson } from './stats.js';
export type { Interval } from './stats.js';
export { byDomain, chooseSetting, frontier, leaveOneDomainOut } from './frontier.js';
export type { CalibrationRow, ChosenSetting, DomainFrontier, FalseHitRate, FrontierOptions, FrontierPoint } from './frontier.js';
