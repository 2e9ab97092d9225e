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
} from './calibrator.js';
export { embeddingAnswerJudge, llmAnswerJudge, LexicalAgreement } from './judge.js';
export type { AnswerJudge, AnswerJudgeInput, AnswerVerdict, EmbeddingAnswerJudgeOptions, LlmAnswerJudgeOptions } from './judge.js';
export { betaQuantile, clopperPearson, incompleteBeta, isotonic, normalQuantile, wilson } from './stats.js';
export type { Interval } from './stats.js';
