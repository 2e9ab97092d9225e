/**
 * Online calibration of semantic hits to a user's error budget.
 *
 * A semantic cache decides, for each lookup, whether its best candidate's stored answer may be
 * served. A fixed similarity threshold is wrong for most traffic: too strict where paraphrases
 * score low, too loose where different questions score high. The calibrator learns where matches
 * can be trusted from the traffic itself and serves only as much as the stated budget allows:
 *
 * - **Evidence at no extra cost.** A lookup that misses calls the model anyway; comparing that
 *   fresh answer with the nearest candidate's stored answer (through an `AnswerJudge`) says
 *   whether serving it would have been right. Near misses teach the calibrator where to loosen.
 * - **Shadow checks.** A sampled share (at most `shadowRate`) of would-be hits is asked upstream
 *   anyway and judged the same way: the audit of what is being served, and evidence where it is thin.
 * - **A noisy judge is modelled, not trusted.** Judge scores are treated as a two-class mixture
 *   (right / wrong answers), fitted by EM over (similarity, score) counts with a non-decreasing
 *   right-rate in similarity. An embedding judge that calls 30% of right answers "different" does
 *   not make the calibrator think 30% of its hits are wrong.
 * - **Neighbourhoods share evidence.** Each stored entry keeps its own observations; candidates
 *   whose stored answers agree (answer vectors) pool theirs, and the global curve is the prior.
 *   Monotone pooling: a wrong answer seen at similarity s counts against every lower similarity,
 *   a right one for every higher similarity.
 * - **The budget is spent where it buys most.** The serving cut-off on the estimated probability
 *   of a wrong answer is chosen so the expected wrong answers over recent lookups stay within
 *   `maxWrongRate` of all lookups: confident matches are served first.
 * - **Feedback** (`feedback(token, 'wrong')`) is a definitive label: the entry should be evicted,
 *   and the wrong answer counts against the neighbourhood of every entry that holds the same answer.
 *
 * Pure and synchronous: no I/O, no timers. State is plain data (`snapshot()` / `restore()`), and
 * observations can be exchanged between processes (`takeDelta()` / `applyDelta()`).
 */
import { InvalidOptionError } from '@strata-cache/core';
import { isotonic, wilson, type Interval } from './stats.js';

/** One candidate of a lookup, most similar first. */
export interface CalibrationCandidate {
  /** Stable id of the stored entry (e.g. the semantic layer's entry key). */
  readonly id: string;
  /** Cosine similarity of the query to the candidate's stored prompt. */
  readonly similarity: number;
  /**
   * False when a guard (or the selector) turned the candidate down: it is never served, but it
   * still counts as a neighbour. @default true
   */
  readonly accepted?: boolean;
  /**
   * The embedding of the candidate's stored answer, unit length. Lets candidates that hold the
   * same answer pool their evidence, and flags a contested match (a nearly-as-similar candidate
   * holding a different answer). Optional: without it each entry learns alone.
   */
  readonly answerVector?: Float32Array;
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
   * How contested the match is: the margin between this candidate and the most similar candidate
   * holding a different answer, as a class from 0 (a rival within 0.01) to 4 (none within 0.1).
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
  maxWrongRate?: number;
  /**
   * At most this share of would-be hits is re-asked upstream as a shadow check.
   * @default 0.05
   */
  shadowRate?: number;
  /**
   * Candidates below this similarity are never served, whatever the evidence.
   * @default 0.6
   */
  minSimilarity?: number;
  /**
   * Near misses below this similarity are not worth judging (`decide` returns no token).
   * @default 0.4
   */
  evidenceFloor?: number;
  /**
   * Weight of the global curve in each neighbourhood's estimate, in pseudo-observations.
   * @default 3
   */
  priorStrength?: number;
  /**
   * Two stored answers with embeddings at least this similar are "the same answer": their entries
   * pool evidence, and a candidate holding one is no rival to the other (the margin to the most
   * similar rival is what the calibrator learns separately).
   * @default 0.9
   */
  allyAnswerSimilarity?: number;
  /**
   * Share of `maxWrongRate` held back against estimation error when choosing the cut-off.
   * @default 0.2
   */
  safetyMargin?: number;
  /**
   * Standard deviations added to each estimate before it is compared with the cut-off: the price
   * of thin evidence.
   * @default 1
   */
  caution?: number;
  /**
   * Lookups over which the serving cut-off is chosen (the expected wrong answers among them stay in budget).
   * @default 2000
   */
  window?: number;
  /**
   * Observations kept per entry (oldest dropped first).
   * @default 24
   */
  maxEvidencePerEntry?: number;
  /**
   * Prior right-rate curve before any evidence: logistic in similarity with this midpoint and scale.
   * Conservative by design: traffic moves it within a few dozen judged lookups.
   * @default { midpoint: 0.88, scale: 0.025, strength: 2 }
   */
  prior?: { midpoint?: number; scale?: number; strength?: number };
  /** Random source in [0, 1) for shadow sampling (tests and simulations pass a seeded one). @default Math.random */
  random?: () => number;
}

const PKG = '@strata-cache/semantic-calibration';

const DEFAULTS = {
  maxWrongRate: 0.01,
  shadowRate: 0.05,
  minSimilarity: 0.6,
  evidenceFloor: 0.4,
  priorStrength: 3,
  allyAnswerSimilarity: 0.9,
  safetyMargin: 0.2,
  caution: 1,
  window: 2000,
  maxEvidencePerEntry: 24,
  prior: { midpoint: 0.88, scale: 0.025, strength: 2 },
} as const;

const OPTION_KEYS: readonly (keyof SemanticCalibratorOptions)[] = [...(Object.keys(DEFAULTS) as (keyof typeof DEFAULTS)[]), 'random'];

// Similarity bins: bin 0 holds s < 0.4, then 0.02-wide bins up to 1.
const S_LOW = 0.4;
const S_STEP = 0.02;
const SB = 1 + Math.round((1 - S_LOW) / S_STEP);
// Judge-score bins over [0, 1].
const AB = 20;
// Margin classes: similarity lead over the most similar candidate holding a different answer.
const MARGIN_EDGES = [0.01, 0.025, 0.05, 0.1];
const CONTEXTS = MARGIN_EDGES.length + 1;
const marginClass = (m: number) => {
  let c = 0;
  while (c < MARGIN_EDGES.length && m >= MARGIN_EDGES[c]!) c++;
  return c;
};
const BANDWIDTH = 0.02;
// Lead credited when no fetched candidate holds a different answer (beyond the least similar one).
const NO_RIVAL_BONUS = 0.05;
const REFIT_EVERY = 32;
const ANCHOR_SIMILARITY = 0.97;
// Prior spread of a neighbourhood's shift of the global curve, in log-odds.
const NEIGHBOURHOOD_SD = 1;
const ANCHOR_RIGHT_RATE = 0.98;
const RECUT_EVERY = 25;

const sBin = (s: number) => (s < S_LOW ? 0 : Math.min(SB - 1, 1 + Math.floor((s - S_LOW) / S_STEP)));
const sBinCentre = (b: number) => (b === 0 ? S_LOW - S_STEP : S_LOW + (b - 0.5) * S_STEP);
const aBin = (a: number) => Math.min(AB - 1, Math.max(0, Math.floor(a * AB)));

/** One judged observation attached to an entry: similarity, judge score or label, weight. */
interface Observation {
  s: number;
  /** Judge score (0..1), or -1 when `y` holds a definitive label. */
  a: number;
  /** Definitive label (feedback): 1 right, 0 wrong; -1 when judged. */
  y: number;
  w: number;
  k: number;
}

/** Observations exchanged between processes (`takeDelta` / `applyDelta`). */
export interface CalibrationDelta {
  readonly format: 'strata-calibration-delta';
  readonly version: 1;
  readonly observations: ReadonlyArray<{ readonly ids: readonly string[]; readonly s: number; readonly a: number; readonly y: number; readonly w: number; readonly k: number }>;
  readonly evicted: readonly string[];
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
}

function num(options: SemanticCalibratorOptions, key: keyof typeof DEFAULTS, min: number, max: number, def: number): number {
  const v = (options as Record<string, unknown>)[key];
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw new InvalidOptionError(`${PKG}: option "${key}" must be a number from ${min} to ${max}`, { field: key });
  }
  return v;
}

function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) s += a[i]! * b[i]!;
  return s;
}

/** The online calibrator. See the module comment for how it decides. */
export class SemanticCalibrator {
  readonly maxWrongRate: number;
  readonly shadowRate: number;
  private readonly minSimilarity: number;
  private readonly evidenceFloor: number;
  private readonly priorStrength: number;
  private readonly allyAnswerSimilarity: number;
  private readonly safetyMargin: number;
  private readonly caution: number;
  private readonly windowSize: number;
  private readonly maxEvidence: number;
  private readonly random: () => number;
  private readonly priorPi: Float64Array;
  private readonly priorStrengthPerBin: number;

  // Judged counts [context][sBin][aBin]; labelled counts [context][sBin][right, wrong].
  private judged: Float64Array = new Float64Array(CONTEXTS * SB * AB);
  private labelled: Float64Array = new Float64Array(CONTEXTS * SB * 2);
  // Fitted model.
  private pi: Float64Array[] = [];
  // Observations (judged + labelled, no prior) per class and bin, from the last refit.
  private binWeight: Float64Array[] = Array.from({ length: CONTEXTS }, () => new Float64Array(SB));
  private fR: Float64Array = new Float64Array(AB);
  private fW: Float64Array = new Float64Array(AB);
  private sinceRefit = 0;

  private readonly entries = new Map<string, Observation[]>();
  // Recent lookups' estimated wrong probability of their best servable candidate (1 when none).
  private recent: number[] = [];
  private recentAt = 0;
  private sinceRecut = 0;
  private cutoff = 0;
  private tokens = 1;
  private seq = 0;
  private delta: { observations: Array<{ ids: string[]; s: number; a: number; y: number; w: number; k: number }>; evicted: string[] } = { observations: [], evicted: [] };
  private counters: CalibrationCounters = {
    lookups: 0,
    served: 0,
    shadowed: 0,
    missed: 0,
    observedShadows: 0,
    observedNearMisses: 0,
    feedbackWrong: 0,
    feedbackRight: 0,
    shadowWrongMass: 0,
  };

  constructor(options: SemanticCalibratorOptions = {}) {
    if (typeof options !== 'object' || options === null) throw new InvalidOptionError(`${PKG}: options must be an object`);
    for (const k of Object.keys(options)) {
      if (!(OPTION_KEYS as readonly string[]).includes(k)) throw new InvalidOptionError(`${PKG}: unknown option "${k}" (known: ${OPTION_KEYS.join(', ')})`, { field: k });
    }
    this.maxWrongRate = num(options, 'maxWrongRate', 0, 1, DEFAULTS.maxWrongRate);
    this.shadowRate = num(options, 'shadowRate', 0, 1, DEFAULTS.shadowRate);
    this.minSimilarity = num(options, 'minSimilarity', -1, 1, DEFAULTS.minSimilarity);
    this.evidenceFloor = num(options, 'evidenceFloor', -1, 1, DEFAULTS.evidenceFloor);
    this.priorStrength = num(options, 'priorStrength', 0, 1e6, DEFAULTS.priorStrength);
    this.allyAnswerSimilarity = num(options, 'allyAnswerSimilarity', -1, 1, DEFAULTS.allyAnswerSimilarity);
    this.safetyMargin = num(options, 'safetyMargin', 0, 0.99, DEFAULTS.safetyMargin);
    this.caution = num(options, 'caution', 0, 10, DEFAULTS.caution);
    this.windowSize = Math.round(num(options, 'window', 10, 1e7, DEFAULTS.window));
    this.maxEvidence = Math.round(num(options, 'maxEvidencePerEntry', 1, 1e4, DEFAULTS.maxEvidencePerEntry));
    if (options.random !== undefined && typeof options.random !== 'function') throw new InvalidOptionError(`${PKG}: option "random" must be a function returning [0, 1)`, { field: 'random' });
    this.random = options.random ?? Math.random;
    const prior = options.prior ?? {};
    if (typeof prior !== 'object' || prior === null) throw new InvalidOptionError(`${PKG}: option "prior" must be an object`, { field: 'prior' });
    for (const k of Object.keys(prior)) {
      if (!['midpoint', 'scale', 'strength'].includes(k)) throw new InvalidOptionError(`${PKG}: unknown option "prior.${k}" (known: midpoint, scale, strength)`, { field: `prior.${k}` });
    }
    const mid = prior.midpoint ?? DEFAULTS.prior.midpoint;
    const scale = prior.scale ?? DEFAULTS.prior.scale;
    const strength = prior.strength ?? DEFAULTS.prior.strength;
    for (const [k, v, lo, hi] of [['midpoint', mid, -1, 1], ['scale', scale, 1e-4, 1], ['strength', strength, 0, 1e6]] as const) {
      if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi) throw new InvalidOptionError(`${PKG}: option "prior.${k}" must be a number from ${lo} to ${hi}`, { field: `prior.${k}` });
    }
    this.priorPi = new Float64Array(SB);
    for (let b = 0; b < SB; b++) this.priorPi[b] = 1 / (1 + Math.exp(-(sBinCentre(b) - mid) / scale));
    this.priorStrengthPerBin = strength;
    this.resetModel();
  }

  private resetModel(): void {
    this.pi = Array.from({ length: CONTEXTS }, () => Float64Array.from(this.priorPi));
    // Judge-score densities before evidence: right answers score high, wrong ones low.
    for (let i = 0; i < AB; i++) {
      const a = (i + 0.5) / AB;
      this.fR[i] = Math.exp(4 * a);
      this.fW[i] = Math.exp(-4 * a);
    }
    normalise(this.fR);
    normalise(this.fW);
  }

  // ---------------------------------------------------------------------------------------------
  // Deciding

  /**
   * Decide one lookup. Cheap (a few microseconds for `topK` candidates): no I/O, no model fit.
   * Candidates must be most similar first; only accepted ones (guards passed) can be served.
   */
  decide(input: DecideInput): CalibrationDecision {
    const seq = ++this.seq;
    this.counters.lookups++;
    const cands = input.candidates;
    let best = -1;
    for (let i = 0; i < cands.length; i++) {
      if (cands[i]!.accepted !== false) {
        best = i;
        break;
      }
    }
    const nearest = cands.length > 0 ? 0 : -1;
    if (best < 0 || cands[best]!.similarity < this.minSimilarity) {
      this.record(1);
      this.counters.missed++;
      const at = best >= 0 ? best : nearest;
      const token = at >= 0 && cands[at]!.similarity >= this.evidenceFloor ? this.tokenFor(seq, cands, at) : undefined;
      return { action: 'miss', ...(at >= 0 ? { candidate: at } : {}), cutoff: this.cutoff, ...(token ? { token } : {}), reason: best < 0 ? (cands.length ? 'no candidate passed the guards' : 'no candidate') : `similarity ${cands[best]!.similarity.toFixed(3)} is below the calibrator's floor ${this.minSimilarity}` };
    }
    const token = this.tokenFor(seq, cands, best);
    const { pWrong, n } = this.estimate(token);
    this.record(pWrong);
    if (pWrong > this.cutoff) {
      this.counters.missed++;
      return { action: 'miss', candidate: best, pWrong, cutoff: this.cutoff, token, reason: `estimated wrong-answer probability ${pWrong.toFixed(3)} is above the cut-off ${this.cutoff.toFixed(3)}` };
    }
    // A would-be hit: audit a share of them, more where the neighbourhood's own evidence is thin.
    this.tokens = Math.min(this.tokens + this.shadowRate, 2 + 20 * this.shadowRate);
    const p = Math.min(1, this.shadowRate * (1 + 3 / (1 + n)));
    if (this.tokens >= 1 && this.random() < p) {
      this.tokens -= 1;
      this.counters.shadowed++;
      return { action: 'shadow', candidate: best, pWrong, cutoff: this.cutoff, token, reason: 'shadow check' };
    }
    this.counters.served++;
    return { action: 'serve', candidate: best, pWrong, cutoff: this.cutoff, token, reason: 'within the error budget' };
  }

  private tokenFor(seq: number, cands: readonly CalibrationCandidate[], at: number): DecisionToken {
    const c = cands[at]!;
    const allies: string[] = [];
    // The most similar candidate holding a different answer (without answer vectors, any other candidate).
    let rival = -Infinity;
    let lowest = c.similarity;
    for (let i = 0; i < cands.length; i++) {
      if (i === at) continue;
      const o = cands[i]!;
      lowest = Math.min(lowest, o.similarity);
      const same = c.answerVector !== undefined && o.answerVector !== undefined && dot(c.answerVector, o.answerVector) >= this.allyAnswerSimilarity;
      if (same) allies.push(o.id);
      else rival = Math.max(rival, o.similarity);
    }
    // No rival among the candidates: the lead is at least over the least similar one fetched.
    const margin = rival > -Infinity ? c.similarity - rival : c.similarity - lowest + NO_RIVAL_BONUS;
    return { seq, id: c.id, similarity: c.similarity, allies, context: marginClass(margin) };
  }

  /**
   * Estimated probability that serving the token's candidate is wrong, and the weight of local
   * evidence behind it. Two layers of sharing:
   *
   * 1. The neighbourhood (the entry and the candidates holding the same answer) gets its own shift
   *    of the global curve in log-odds, fitted to all its judged lookups at any similarity with a
   *    shrinkage prior: answers that disagree where the curve expects agreement tighten it
   *    everywhere, agreement where the curve expects doubt loosens it (partial pooling).
   * 2. Around this similarity, the neighbourhood's own outcomes count directly, monotonically: a
   *    wrong answer at similarity s' ≥ s counts against s, a right one at s' ≤ s for it.
   */
  estimate(token: DecisionToken): { pWrong: number; n: number } {
    const s = token.similarity;
    const obs: Array<[Observation, number]> = [];
    const own = this.entries.get(token.id);
    if (own) for (const o of own) obs.push([o, 1]);
    for (const id of token.allies) {
      const list = this.entries.get(id);
      if (list) for (const o of list) obs.push([o, 0.5]);
    }
    // (1) Log-odds shift, two Newton steps from 0 under a N(0, 1) prior.
    let delta = 0;
    const rs = obs.map(([o]) => (o.y >= 0 ? o.y : this.posterior(o.k, o.s, o.a)));
    const ls = obs.map(([o]) => logit(this.piAt(o.k, o.s)));
    for (let step = 0; step < 2 && obs.length > 0; step++) {
      let g = -delta / NEIGHBOURHOOD_SD ** 2;
      let h = 1 / NEIGHBOURHOOD_SD ** 2;
      for (let i = 0; i < obs.length; i++) {
        const w = obs[i]![1] * obs[i]![0].w;
        const p = sigmoid(ls[i]! + delta);
        g += w * (rs[i]! - p);
        h += w * p * (1 - p);
      }
      delta += g / h;
    }
    const piS = sigmoid(logit(this.piAt(token.context, s)) + delta);
    // (2) Monotone local counts around s, with the shifted curve as their prior.
    let wrong = 0;
    let right = 0;
    for (let i = 0; i < obs.length; i++) {
      const [o, weight] = obs[i]!;
      if (o.s >= s - BANDWIDTH) wrong += weight * o.w * (1 - rs[i]!);
      if (o.s <= s + BANDWIDTH) right += weight * o.w * rs[i]!;
    }
    const m = this.priorStrength;
    const mean = (wrong + m * (1 - piS)) / (wrong + right + m);
    // Serve on an upper estimate: thin evidence (few judged lookups in this similarity bin and this
    // neighbourhood) costs more of the budget than the same estimate backed by many.
    const nEff = this.binCount(token.context, s) + wrong + right;
    const pWrong = Math.min(1, mean + this.caution * Math.sqrt((mean * (1 - mean)) / (nEff + 1)));
    return { pWrong, n: wrong + right };
  }

  /** Observations behind the global curve at this similarity (the bin and its two neighbours). */
  private binCount(k: number, s: number): number {
    const b = sBin(s);
    const w = this.binWeight[k]!;
    return w[b]! + 0.5 * ((w[b - 1] ?? 0) + (w[b + 1] ?? 0));
  }

  private piAt(k: number, s: number): number {
    const pi = this.pi[k]!;
    // Linear interpolation between bin centres.
    if (s < S_LOW) return pi[0]!;
    const x = (s - S_LOW) / S_STEP + 0.5;
    const i = Math.min(SB - 2, Math.max(1, Math.floor(x)));
    const t = Math.min(1, Math.max(0, x - i));
    return pi[i]! * (1 - t) + pi[i + 1]! * t;
  }

  private posterior(k: number, s: number, a: number): number {
    const p = this.piAt(k, s);
    const b = aBin(a);
    const r = p * this.fR[b]!;
    return r / (r + (1 - p) * this.fW[b]!);
  }

  private record(pWrong: number): void {
    if (this.recent.length < this.windowSize) this.recent.push(pWrong);
    else {
      this.recent[this.recentAt] = pWrong;
      this.recentAt = (this.recentAt + 1) % this.windowSize;
    }
    if (++this.sinceRecut >= RECUT_EVERY) this.recut();
  }

  /**
   * Chooses the serving cut-off: the largest estimated wrong-answer probability such that serving
   * every recent lookup at or below it would have cost at most the budget (less the safety margin).
   */
  private recut(): void {
    this.sinceRecut = 0;
    const sorted = Float64Array.from(this.recent).sort();
    const allowed = this.maxWrongRate * (1 - this.safetyMargin) * sorted.length;
    let spent = 0;
    let cut = 0;
    for (let i = 0; i < sorted.length; i++) {
      const p = sorted[i]!;
      if (p >= 1) break;
      if (spent + p > allowed) break;
      spent += p;
      cut = p;
    }
    this.cutoff = cut;
  }

  /** The expected wrong answers per lookup over the recent window at the current cut-off. */
  private expectedWrongRate(): number {
    if (this.recent.length === 0) return 0;
    let spent = 0;
    for (const p of this.recent) if (p <= this.cutoff) spent += p;
    return spent / this.recent.length;
  }

  // ---------------------------------------------------------------------------------------------
  // Learning

  /**
   * Records a judged outcome for a `shadow` or near-`miss` decision: the judge compared the fresh
   * upstream answer with the candidate's stored answer. `shadow` says which it was (counters only).
   */
  observe(token: DecisionToken, outcome: JudgedOutcome, kind: 'shadow' | 'miss' = 'miss'): void {
    const score = outcome.score;
    if (typeof score !== 'number' || !Number.isFinite(score)) throw new InvalidOptionError(`${PKG}: observe() needs a finite judge score`, { field: 'score' });
    const a = Math.min(1, Math.max(0, score));
    const obs: Observation = outcome.certain === true ? { s: token.similarity, a: -1, y: 1, w: 1, k: token.context } : { s: token.similarity, a, y: -1, w: 1, k: token.context };
    if (kind === 'shadow') {
      this.counters.observedShadows++;
      this.counters.shadowWrongMass += obs.y >= 0 ? 1 - obs.y : 1 - this.posterior(obs.k, obs.s, a);
    } else this.counters.observedNearMisses++;
    this.addObservation([token.id], obs, true);
  }

  /**
   * A definitive verdict on a served answer (a user's thumbs-down or -up). Returns whether the
   * entry should be evicted (`'wrong'`): the layer removes it; the wrong answer keeps counting
   * against the entries that hold the same answer.
   */
  feedback(token: DecisionToken, verdict: 'wrong' | 'right'): { evict: boolean } {
    if (verdict !== 'wrong' && verdict !== 'right') throw new InvalidOptionError(`${PKG}: feedback verdict must be 'wrong' or 'right'`, { field: 'verdict' });
    const y = verdict === 'right' ? 1 : 0;
    if (y === 1) this.counters.feedbackRight++;
    else this.counters.feedbackWrong++;
    // A person's verdict outweighs a judge's.
    const obs: Observation = { s: token.similarity, a: -1, y, w: 3, k: token.context };
    const ids = y === 0 ? [...token.allies] : [token.id, ...token.allies];
    this.addObservation(ids, obs, true);
    if (y === 0) this.evict(token.id);
    return { evict: y === 0 };
  }

  /** Drop an entry's own evidence (the layer evicted or invalidated it). */
  evict(id: string): void {
    if (this.entries.delete(id)) this.delta.evicted.push(id);
  }

  private addObservation(ids: readonly string[], obs: Observation, local: boolean): void {
    for (const id of ids) {
      let list = this.entries.get(id);
      if (!list) this.entries.set(id, (list = []));
      list.push(obs);
      if (list.length > this.maxEvidence) list.shift();
    }
    const sb = sBin(obs.s);
    if (obs.y >= 0) this.labelled[(obs.k * SB + sb) * 2 + (obs.y === 1 ? 0 : 1)]! += obs.w;
    else this.judged[(obs.k * SB + sb) * AB + aBin(obs.a)]! += obs.w;
    if (local) this.delta.observations.push({ ids: [...ids], s: obs.s, a: obs.a, y: obs.y, w: obs.w, k: obs.k });
    if (++this.sinceRefit >= REFIT_EVERY) this.refit();
  }

  /**
   * Refits the mixture by EM: right-rate per similarity bin and margin class (non-decreasing in
   * both: a closer match or a clearer lead is never less reliable), and the
   * judge-score densities of right and wrong answers (shared), from the judged and labelled counts.
   */
  refit(iterations = 25): void {
    this.sinceRefit = 0;
    const num = new Float64Array(SB);
    const den = new Float64Array(SB);
    const nR = new Float64Array(AB);
    const nW = new Float64Array(AB);
    for (let it = 0; it < iterations; it++) {
      nR.fill(0.5);
      nW.fill(0.5);
      // The densities' weak prior keeps them ordered before evidence: a bit of mass where each class usually scores.
      for (let i = 0; i < AB; i++) {
        const a = (i + 0.5) / AB;
        nR[i]! += 2 * a;
        nW[i]! += 2 * (1 - a);
      }
      const raw: Float64Array[] = [];
      const wts: Float64Array[] = [];
      for (let k = 0; k < CONTEXTS; k++) {
        num.fill(0);
        den.fill(0);
        for (let b = 0; b < SB; b++) {
          const p = this.pi[k]![b]!;
          for (let j = 0; j < AB; j++) {
            const c = this.judged[(k * SB + b) * AB + j]!;
            if (c === 0) continue;
            const rr = p * this.fR[j]!;
            const r = rr / (rr + (1 - p) * this.fW[j]!);
            num[b]! += c * r;
            den[b]! += c;
            nR[j]! += c * r;
            nW[j]! += c * (1 - r);
          }
          const lr = this.labelled[(k * SB + b) * 2]!;
          const lw = this.labelled[(k * SB + b) * 2 + 1]!;
          num[b]! += lr;
          den[b]! += lr + lw;
          num[b]! += this.priorStrengthPerBin * this.priorPi[b]!;
          den[b]! += this.priorStrengthPerBin;
        }
        raw.push(Float64Array.from(num, (x, b) => x / den[b]!));
        wts.push(Float64Array.from(den));
        if (it === iterations - 1) this.binWeight[k] = Float64Array.from(den, (d) => Math.max(0, d - this.priorStrengthPerBin));
      }
      const newPi = monotone2d(raw, wts);
      // Near-identical prompts with a clear lead get the same answer: this anchors which judge
      // scores right answers get (the judge's misses included), so a judge that calls some right
      // answers different is not read as a cache that serves wrong ones.
      for (let k = 2; k < CONTEXTS; k++) for (let b = sBin(ANCHOR_SIMILARITY); b < SB; b++) newPi[k]![b] = Math.max(newPi[k]![b]!, ANCHOR_RIGHT_RATE);
      this.pi = newPi;
      // Monotone likelihood ratio: a higher judge score never makes a right answer less likely.
      const fR = normalise(Float64Array.from(nR));
      // Wrong answers' scores form one bump: a second bump at high scores is right answers the
      // mixture has not told apart yet (the least similar matches still hold some right ones).
      const fW = normalise(unimodal(Float64Array.from(nW)));
      const logLr = isotonic(
        Array.from(fR, (r, j) => Math.log(r / fW[j]!)),
        Array.from(nR, (r, j) => r + nW[j]!),
      );
      for (let j = 0; j < AB; j++) fR[j] = fW[j]! * Math.exp(logLr[j]!);
      this.fR = normalise(fR);
      this.fW = fW;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // State

  /** Counters, the cut-off, the learned curve and the audit of served answers. */
  stats(): CalibrationStats {
    const c = this.counters;
    const curve = [];
    for (let b = 1; b < SB; b++) curve.push({ similarity: Math.round(sBinCentre(b) * 1000) / 1000, clear: round4(this.pi[CONTEXTS - 1]![b]!), contested: round4(this.pi[0]![b]!) });
    const wouldBe = c.served + c.shadowed;
    return {
      counters: { ...c },
      cutoff: this.cutoff,
      expectedWrongRate: this.expectedWrongRate(),
      auditedWrongShareOfHits: wilson(c.shadowWrongMass, c.observedShadows),
      shadowShare: wouldBe === 0 ? 0 : c.shadowed / wouldBe,
      curve,
      entriesWithEvidence: this.entries.size,
    };
  }

  /** The fitted model (for inspection): right-rate per margin class and similarity bin, judge-score densities. */
  model(): { readonly similarityBins: number[]; readonly rightRate: number[][]; readonly scoreDensityRight: number[]; readonly scoreDensityWrong: number[] } {
    return {
      similarityBins: Array.from({ length: SB }, (_, b) => Math.round(sBinCentre(b) * 1000) / 1000),
      rightRate: this.pi.map((r) => Array.from(r, round4)),
      scoreDensityRight: Array.from(this.fR, round4),
      scoreDensityWrong: Array.from(this.fW, round4),
    };
  }

  /** Plain-JSON state: persist it with the index snapshot. */
  snapshot(): CalibrationSnapshot {
    const entries: Array<[string, number[]]> = [];
    for (const [id, list] of this.entries) {
      const flat: number[] = [];
      for (const o of list) flat.push(round6(o.s), o.a < 0 ? -1 : round6(o.a), o.y, o.w, o.k);
      entries.push([id, flat]);
    }
    const recent = this.recent.length < this.windowSize ? [...this.recent] : [...this.recent.slice(this.recentAt), ...this.recent.slice(0, this.recentAt)];
    return {
      format: 'strata-calibration',
      version: 1,
      judged: Array.from(this.judged),
      labelled: Array.from(this.labelled),
      entries,
      recent: recent.map(round6),
      model: { pi: this.pi.map((r) => Array.from(r)), fR: Array.from(this.fR), fW: Array.from(this.fW), binWeight: this.binWeight.map((r) => Array.from(r)) },
      cutoff: this.cutoff,
      tokens: this.tokens,
      counters: { ...this.counters },
    };
  }

  /** Replaces this calibrator's state with a snapshot's (validated first: a bad snapshot changes nothing). */
  restore(snapshot: CalibrationSnapshot): void {
    const s = snapshot as Partial<CalibrationSnapshot> | null;
    const bad = (why: string) => new InvalidOptionError(`${PKG}: not a calibration snapshot (${why})`, { field: 'snapshot' });
    if (!s || typeof s !== 'object' || s.format !== 'strata-calibration') throw bad('format');
    if (s.version !== 1) throw bad(`version ${String(s.version)}`);
    const finiteArray = (x: unknown, n: number) => Array.isArray(x) && x.length === n && x.every((v) => typeof v === 'number' && Number.isFinite(v) && v >= 0);
    if (!finiteArray(s.judged, this.judged.length)) throw bad('judged counts');
    if (!finiteArray(s.labelled, this.labelled.length)) throw bad('labelled counts');
    if (!Array.isArray(s.entries) || !s.entries.every((e) => Array.isArray(e) && typeof e[0] === 'string' && Array.isArray(e[1]) && e[1].length % 5 === 0 && e[1].every((v) => typeof v === 'number' && Number.isFinite(v)))) throw bad('entries');
    if (!Array.isArray(s.recent) || !s.recent.every((v) => typeof v === 'number' && v >= 0 && v <= 1)) throw bad('recent');
    if (typeof s.cutoff !== 'number' || !(s.cutoff >= 0 && s.cutoff <= 1) || typeof s.tokens !== 'number' || !Number.isFinite(s.tokens)) throw bad('cut-off');
    if (!s.counters || typeof s.counters !== 'object') throw bad('counters');
    const m = s.model;
    const rows = (x: unknown, n: number) => Array.isArray(x) && x.length === CONTEXTS && x.every((r) => finiteArray(r, n));
    if (!m || !rows(m.pi, SB) || !rows(m.binWeight, SB) || !finiteArray(m.fR, AB) || !finiteArray(m.fW, AB)) throw bad('model');
    this.judged = Float64Array.from(s.judged!);
    this.labelled = Float64Array.from(s.labelled!);
    this.entries.clear();
    for (const [id, flat] of s.entries!) {
      const list: Observation[] = [];
      for (let i = 0; i < flat.length; i += 5) list.push({ s: flat[i]!, a: flat[i + 1]!, y: flat[i + 2]!, w: flat[i + 3]!, k: clampClass(flat[i + 4]!) });
      this.entries.set(id, list.slice(-this.maxEvidence));
    }
    this.recent = s.recent!.slice(-this.windowSize);
    this.recentAt = 0;
    this.cutoff = s.cutoff;
    this.tokens = s.tokens;
    this.counters = { ...this.counters, ...s.counters };
    this.delta = { observations: [], evicted: [] };
    this.pi = m.pi.map((r) => Float64Array.from(r));
    this.binWeight = m.binWeight.map((r) => Float64Array.from(r));
    this.fR = Float64Array.from(m.fR);
    this.fW = Float64Array.from(m.fW);
    this.sinceRefit = 0;
  }

  /**
   * Observations and evictions recorded by this process since the last call, for other processes
   * (publish through L2 and `applyDelta` there). Counts add up, so applying each process's deltas
   * once gives every process the fleet's evidence.
   */
  takeDelta(): CalibrationDelta {
    const d = this.delta;
    this.delta = { observations: [], evicted: [] };
    return { format: 'strata-calibration-delta', version: 1, observations: d.observations, evicted: d.evicted };
  }

  /** Adds another process's observations (never this process's own: they are already counted). */
  applyDelta(delta: CalibrationDelta): void {
    if (!delta || delta.format !== 'strata-calibration-delta' || delta.version !== 1 || !Array.isArray(delta.observations) || !Array.isArray(delta.evicted)) {
      throw new InvalidOptionError(`${PKG}: not a calibration delta`, { field: 'delta' });
    }
    for (const o of delta.observations) {
      if (!Array.isArray(o.ids) || ![o.s, o.a, o.y, o.w].every((v) => typeof v === 'number' && Number.isFinite(v))) continue;
      this.addObservation(o.ids, { s: o.s, a: o.a, y: o.y, w: o.w, k: clampClass(o.k) }, false);
    }
    for (const id of delta.evicted) this.entries.delete(id);
  }
}

const clampClass = (k: number) => (Number.isInteger(k) && k >= 0 && k < CONTEXTS ? k : 0);

/** Least-squares unimodal fit (rises to one mode, then falls) of a non-negative histogram. */
function unimodal(h: Float64Array): Float64Array {
  const n = h.length;
  const ones = new Float64Array(n).fill(1);
  let best: Float64Array = h;
  let bestErr = Infinity;
  for (let m = 0; m < n; m++) {
    const up = isotonic(h.subarray(0, m + 1), ones.subarray(0, m + 1));
    const downRev = isotonic(Float64Array.from(h.subarray(m)).reverse(), ones.subarray(m));
    const fit = new Float64Array(n);
    fit.set(up, 0);
    const down = downRev.reverse();
    // The mode belongs to both halves: keep the larger fit there.
    for (let i = m; i < n; i++) fit[i] = i === m ? Math.max(up[m]!, down[0]!) : down[i - m]!;
    let err = 0;
    for (let i = 0; i < n; i++) err += (fit[i]! - h[i]!) ** 2;
    if (err < bestErr) {
      bestErr = err;
      best = fit;
    }
  }
  return best;
}

/** Non-decreasing in both indices (class, similarity bin): alternating weighted isotonic fits. */
function monotone2d(raw: Float64Array[], wts: Float64Array[]): Float64Array[] {
  let fit: Float64Array[] = raw.map((r) => Float64Array.from(r));
  for (let round = 0; round < 4; round++) {
    fit = fit.map((r, k) => isotonic(r, wts[k]!));
    for (let b = 0; b < SB; b++) {
      const col = isotonic(
        fit.map((r) => r[b]!),
        wts.map((w) => w[b]!),
      );
      for (let k = 0; k < fit.length; k++) fit[k]![b] = col[k]!;
    }
  }
  return fit;
}

function normalise(f: Float64Array): Float64Array {
  let t = 0;
  for (const x of f) t += x;
  for (let i = 0; i < f.length; i++) f[i] = f[i]! / t;
  return f;
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const logit = (p: number) => {
  const q = Math.min(1 - 1e-6, Math.max(1e-6, p));
  return Math.log(q / (1 - q));
};
const round4 = (x: number) => Math.round(x * 1e4) / 1e4;
const round6 = (x: number) => Math.round(x * 1e6) / 1e6;
