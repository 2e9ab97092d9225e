/** The calibrator's public types: what a lookup hands in, what it gets back, and its plain-data state. */
import type { Interval } from './stats.js';

/** One candidate of a lookup, most similar first. */
export interface CalibrationCandidate {
  /** Stable id of the stored entry (e.g. the semantic layer's entry key). */
  readonly id: string;
  /** Cosine similarity of the query to the candidate's stored prompt. */
  readonly similarity: number;
  /**
   * False when a guard (or the selector) turned the candidate down: it is never served, and it
   * makes no match contested, but its answer still counts as a rival's for the judge. @default true
   */
  readonly accepted?: boolean;
  /**
   * The embedding of the candidate's stored answer, unit length. Lets candidates that hold the
   * same answer pool their evidence, and flags a contested match (a nearly-as-similar candidate
   * holding a different answer). Optional: without it each entry learns alone.
   */
  readonly answerVector?: Float32Array;
  /**
   * The query is the stored prompt in other case, punctuation, contractions or number formatting
   * (`sameText` from `@strata-cache/semantic-guards`; `@strata-cache/layer-semantic` also counts
   * conversational framing such as "Hi," or "Thanks!" aside, `sameQuestion`): served without
   * estimating. @default false
   */
  readonly sameText?: boolean;
}

/** What `decide` needs: the lookup's candidates, most similar first. */
export interface DecideInput {
  readonly candidates: readonly CalibrationCandidate[];
}

/**
 * Everything `observe` / `feedback` need to attribute an outcome; plain JSON so it can travel
 * with a result (or to another process).
 */
export interface DecisionToken {
  /** Monotonic per-calibrator lookup number. */
  readonly seq: number;
  /** Entry whose answer was (or would have been) served. */
  readonly id: string;
  readonly similarity: number;
  /** Entries holding the same answer among the candidates (they share this outcome). */
  readonly allies: readonly string[];
  /**
   * The most similar candidates holding a different answer (up to 3, with answer vectors): the
   * judge compares the fresh answer with theirs too. Optional in tokens built elsewhere.
   */
  readonly rivals?: readonly string[];
  /**
   * How contested the match is: the margin between this candidate and the most similar candidate
   * holding a different answer that the guards passed, as a class from 0 (a rival within 0.01)
   * to 4 (none within 0.1).
   */
  readonly context: number;
}

export type CalibrationAction = 'serve' | 'shadow' | 'miss';

export interface CalibrationDecision {
  /**
   * - `serve`: answer from the cache (candidate `candidate`).
   * - `shadow`: ask upstream and serve the fresh answer, then judge it against the candidate's
   *   stored answer and call `observe` (a shadow check).
   * - `miss`: ask upstream; when `token` is set, judge the fresh answer against that candidate's
   *   stored answer and call `observe` (a near miss: free evidence).
   */
  readonly action: CalibrationAction;
  /** Index into `candidates` of the candidate served, shadowed or observed. */
  readonly candidate?: number;
  /** Estimated probability that serving it would be wrong. */
  readonly pWrong?: number;
  /** The serving cut-off on `pWrong` in force. */
  readonly cutoff: number;
  /** Pass back to `observe` / `feedback`; absent when there is nothing to learn from. */
  readonly token?: DecisionToken;
  /** Why (for `rejected` metadata and logs). */
  readonly reason: string;
}

/** An answer judge's verdict on a (cached, fresh) answer pair. */
export interface JudgedOutcome {
  /** Agreement score in [0, 1] (higher = more alike); a binary judge gives 0 or 1. */
  readonly score: number;
  /**
   * The judge is certain the two answers say the same (e.g. near-verbatim text): the stored
   * answer was right, whatever the model thinks of the score.
   */
  readonly certain?: boolean;
}

export interface SemanticCalibratorOptions {
  /**
   * Share of lookups the cache may answer wrongly (wrong cached answers ÷ all lookups the
   * calibrator decided). 0.01 = one wrong answer per 100 requests.
   * @default 0.01
   */
  maxWrongRate?: number | undefined;
  /**
   * At most this share of would-be hits is re-asked upstream as a shadow check.
   * @default 0.05
   */
  shadowRate?: number | undefined;
  /**
   * Candidates below this similarity are never served, whatever the evidence.
   * @default 0.6
   */
  minSimilarity?: number | undefined;
  /**
   * Near misses below this similarity are not worth judging (`decide` returns no token).
   * @default 0.4
   */
  evidenceFloor?: number | undefined;
  /**
   * Weight of the global curve in each neighbourhood's estimate, in pseudo-observations.
   * @default 3
   */
  priorStrength?: number | undefined;
  /**
   * Two stored answers with embeddings at least this similar are "the same answer": their entries
   * pool evidence, and a candidate holding one is no rival to the other (the margin to the most
   * similar rival is what the calibrator learns separately).
   * @default 0.9
   */
  allyAnswerSimilarity?: number | undefined;
  /**
   * Share of `maxWrongRate` held back against estimation error when choosing the cut-off.
   * @default 0.2
   */
  safetyMargin?: number | undefined;
  /**
   * The most an individual answer's estimated probability of being wrong may be: beyond it a
   * match is never served, however much of the budget is left (the budget is an average; no
   * single user should get a near coin-flip answer to make it).
   * @default 0.25
   */
  maxWrongPerAnswer?: number | undefined;
  /**
   * Standard deviations added to each estimate before it is compared with the cut-off: the price
   * of thin evidence (chosen on the support-bot simulation's dev split).
   * @default 2
   */
  caution?: number | undefined;
  /**
   * Lookups over which the serving cut-off is chosen (the expected wrong answers among them stay in budget).
   * @default 2000
   */
  window?: number | undefined;
  /**
   * Observations kept per entry (oldest dropped first).
   * @default 24
   */
  maxEvidencePerEntry?: number | undefined;
  /**
   * Prior right-rate curve before any evidence: logistic in similarity with this midpoint and scale.
   * Conservative by design: traffic moves it within a few dozen judged lookups.
   * @default { midpoint: 0.88, scale: 0.025, strength: 2 }
   */
  prior?: { midpoint?: number | undefined; scale?: number | undefined; strength?: number | undefined } | undefined;
  /** Random source in [0, 1) for shadow sampling (tests and simulations pass a seeded one). @default Math.random */
  random?: (() => number) | undefined;
}

/** Observations exchanged between processes (`takeDelta` / `applyDelta`). */
export interface CalibrationDelta {
  readonly format: 'strata-calibration-delta';
  readonly version: 1;
  readonly observations: ReadonlyArray<{
    readonly ids: readonly string[];
    readonly s: number;
    readonly a: number;
    readonly y: number;
    readonly w: number;
    readonly k: number;
  }>;
  readonly evicted: readonly string[];
  /** Shadow checks' audits: [wrong mass found, wrong probability expected] each. Optional (older deltas). */
  readonly audit?: ReadonlyArray<readonly [number, number]>;
}

/** Serialisable calibrator state (`snapshot()` / `restore()`), plain JSON. */
export interface CalibrationSnapshot {
  readonly format: 'strata-calibration';
  readonly version: 1;
  readonly judged: number[];
  readonly labelled: number[];
  readonly entries: Array<[string, number[]]>;
  readonly recent: number[];
  /** The fitted model, so a restored calibrator decides exactly as the saved one did. */
  readonly model: { readonly pi: number[][]; readonly fR: number[]; readonly fW: number[]; readonly binWeight: number[][] };
  readonly cutoff: number;
  readonly tokens: number;
  readonly counters: CalibrationCounters;
  /** The audit: wrong answers the shadow checks found, and the wrong answers their estimates expected. Absent in older snapshots. */
  readonly audit?: { readonly found: number; readonly expected: number };
}

export interface CalibrationCounters {
  lookups: number;
  served: number;
  shadowed: number;
  missed: number;
  observedShadows: number;
  observedNearMisses: number;
  feedbackWrong: number;
  feedbackRight: number;
  /** Shadow checks whose judged score the model reads as a wrong answer (posterior-weighted). */
  shadowWrongMass: number;
}

export interface CalibrationStats {
  readonly counters: Readonly<CalibrationCounters>;
  /** Serving cut-off on the estimated probability of a wrong answer. */
  readonly cutoff: number;
  /** Expected wrong answers per lookup over the recent window, at the current cut-off. */
  readonly expectedWrongRate: number;
  /** Wrong answers among shadow checks (posterior-weighted), per shadowed would-be hit, with a 95% interval. */
  readonly auditedWrongShareOfHits: Interval;
  /** Shadow checks spent ÷ would-be hits. */
  readonly shadowShare: number;
  /** Learned right-rate by similarity (bin centres): clear matches (no rival within 0.1) and contested ones (a rival within 0.01). */
  readonly curve: ReadonlyArray<{ readonly similarity: number; readonly clear: number; readonly contested: number }>;
  /** Entries with evidence of their own. */
  readonly entriesWithEvidence: number;
  /**
   * How many times more wrong answers the shadow checks found than the estimates they were
   * served on expected (at least 1): every estimate is scaled up by it.
   */
  readonly auditFactor: number;
}
