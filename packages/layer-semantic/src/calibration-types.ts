// The shapes a calibrating semantic layer shares with its host and reports in stats().
import type { CalibrationNote, RejectedCandidate, SemanticGuard } from '@strata-cache/core';
import type { Interval } from '@strata-cache/semantic-calibration';
import type { CachingEmbedder } from './caching-embedder.js';
import type { Rec, RecordStore } from './records.js';

/** `stats().calibration` of a calibrating semantic layer. */
export interface SemanticCalibrationStats {
  /** Calibrators in memory (one per tenant, or one). */
  readonly calibrators: number;
  /** Lookups the calibrators decided. */
  readonly lookups: number;
  /** Hits served on the calibrators' say (same-text matches included). */
  readonly served: number;
  /** Would-be hits re-asked upstream to audit them (upstream calls spent on calibration). */
  readonly shadowChecks: number;
  /** Shadow checks ÷ would-be hits (never above `shadowRate`, but for the first one). */
  readonly shadowShare: number;
  /** Upstream answers of near misses judged against the nearest candidate's answer (free evidence). */
  readonly nearMissesJudged: number;
  /** Shadow checks judged. */
  readonly shadowsJudged: number;
  /** Users' verdicts (`cache.feedback`). */
  readonly feedback: { readonly wrong: number; readonly right: number };
  /** Neighbourhoods (stored entries) with evidence of their own: each has its own learned boundary. */
  readonly boundariesLearned: number;
  /**
   * The similarity from which a clear match (no rival answer within 0.1) with no evidence of its
   * own is served now, per calibrator (the most lenient and the strictest); undefined: none is.
   */
  readonly clearBoundary: { readonly lowest: number | undefined; readonly highest: number | undefined };
  /** Wrong answers among the audited would-be hits (as the judge and the model read them), with a 95% interval. */
  readonly auditedWrongShare: Interval;
  /** The model's expected wrong answers per lookup over the recent window (lookup-weighted mean over calibrators). */
  readonly expectedWrongRate: number;
  /** Upstream answers waiting to be judged now. */
  readonly pendingJudgements: number;
  /** Upstream answers not judged: too many waiting, the candidate gone, no text, or the judge failed. */
  readonly dropped: number;
  readonly judgeErrors: number;
  /** Stored answers with an embedding (entries without one pool less evidence). */
  readonly answerVectors: number;
  /** Evidence exchanged with other processes (`calibration.share`). */
  readonly shared: { readonly published: number; readonly applied: number; readonly errors: number } | undefined;
}

/** A candidate as the layer's search found it. */
export interface FoundCandidate {
  readonly rec: Rec;
  readonly similarity: number;
  readonly text: string;
}

export interface CalibratedSearch {
  /** Index into the candidates of the one to serve. */
  readonly pick: number | undefined;
  readonly note: CalibrationNote;
  readonly rejected: RejectedCandidate[];
}

export interface CalibrationHost {
  readonly name: string;
  readonly store: RecordStore;
  readonly vectors: CachingEmbedder;
  readonly guards: readonly SemanticGuard[];
  readonly embedder: { readonly id: string; readonly dimensions: number; readonly represents?: ((text: string) => boolean) | undefined };
  warn(message: string): void;
  /** Something changed that a snapshot should include. */
  changed(): void;
}
