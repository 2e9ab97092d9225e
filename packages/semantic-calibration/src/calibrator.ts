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
 *   whose stored answers agree (answer vectors) pool theirs. The neighbourhood shifts the global
 *   curve in log-odds (partial pooling across similarities), and its outcomes count monotonically
 *   around the query's similarity: a wrong answer at s counts against every lower similarity, a
 *   right one for every higher similarity.
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
import {
  BANDWIDTH,
  CONTEXTS,
  JudgeMixture,
  NEIGHBOURHOOD_SD,
  NO_RIVAL_BONUS,
  RECUT_EVERY,
  REFIT_EVERY,
  SB,
  clampClass,
  logit,
  marginClass,
  round4,
  round6,
  sBinCentre,
  sigmoid,
  type Observation,
} from './mixture.js';
import { DEFAULTS, OPTION_KEYS, PKG, num } from './options.js';
import { checkSnapshot } from './snapshot.js';
import { wilson } from './stats.js';
import type {
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

// The audit's pseudo-counts (a few shadow checks cannot move it much) and its largest factor.
const AUDIT_PSEUDO = 1;
const AUDIT_MAX = 10;
// Each shadow check's weight in the audit decays by this factor per later check (memory ≈ 100 checks).
const AUDIT_DECAY = 0.99;

// Rival candidates named in a token (their answers sharpen the judge's contrast).
const MAX_RIVALS = 3;

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
  /** Never served below this similarity. */
  readonly minSimilarity: number;
  /** Near misses below this similarity are not judged. */
  readonly evidenceFloor: number;
  private readonly priorStrength: number;
  private readonly allyAnswerSimilarity: number;
  private readonly safetyMargin: number;
  private readonly maxWrongPerAnswer: number;
  private readonly caution: number;
  private readonly windowSize: number;
  private readonly maxEvidence: number;
  private readonly random: () => number;
  private readonly mix: JudgeMixture;
  private sinceRefit = 0;

  private readonly entries = new Map<string, Observation[]>();
  // Recent lookups' estimated wrong probability of their best servable candidate (1 when none).
  private recent: number[] = [];
  private recentAt = 0;
  private sinceRecut = 0;
  private cutoff = 0;
  private tokens = 1;
  private seq = 0;
  /** The audit of served estimates by shadow checks: wrong answers found, and expected. */
  private audit = { found: 0, expected: 0 };
  private delta: {
    observations: Array<{ ids: string[]; s: number; a: number; y: number; w: number; k: number }>;
    evicted: string[];
    audit: Array<[number, number]>;
  } = { observations: [], evicted: [], audit: [] };
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
      if (!(OPTION_KEYS as readonly string[]).includes(k))
        throw new InvalidOptionError(`${PKG}: unknown option "${k}" (known: ${OPTION_KEYS.join(', ')})`, { field: k });
    }
    this.maxWrongRate = num(options, 'maxWrongRate', 0, 1, DEFAULTS.maxWrongRate);
    this.shadowRate = num(options, 'shadowRate', 0, 1, DEFAULTS.shadowRate);
    this.minSimilarity = num(options, 'minSimilarity', -1, 1, DEFAULTS.minSimilarity);
    this.evidenceFloor = num(options, 'evidenceFloor', -1, 1, DEFAULTS.evidenceFloor);
    this.priorStrength = num(options, 'priorStrength', 0, 1e6, DEFAULTS.priorStrength);
    this.allyAnswerSimilarity = num(options, 'allyAnswerSimilarity', -1, 1, DEFAULTS.allyAnswerSimilarity);
    this.safetyMargin = num(options, 'safetyMargin', 0, 0.99, DEFAULTS.safetyMargin);
    this.maxWrongPerAnswer = num(options, 'maxWrongPerAnswer', 0, 1, DEFAULTS.maxWrongPerAnswer);
    this.caution = num(options, 'caution', 0, 10, DEFAULTS.caution);
    this.windowSize = Math.round(num(options, 'window', 10, 1e7, DEFAULTS.window));
    this.maxEvidence = Math.round(num(options, 'maxEvidencePerEntry', 1, 1e4, DEFAULTS.maxEvidencePerEntry));
    if (options.random !== undefined && typeof options.random !== 'function')
      throw new InvalidOptionError(`${PKG}: option "random" must be a function returning [0, 1)`, { field: 'random' });
    this.random = options.random ?? Math.random;
    const prior = options.prior ?? {};
    if (typeof prior !== 'object' || prior === null) throw new InvalidOptionError(`${PKG}: option "prior" must be an object`, { field: 'prior' });
    for (const k of Object.keys(prior)) {
      if (!['midpoint', 'scale', 'strength'].includes(k))
        throw new InvalidOptionError(`${PKG}: unknown option "prior.${k}" (known: midpoint, scale, strength)`, { field: `prior.${k}` });
    }
    const mid = prior.midpoint ?? DEFAULTS.prior.midpoint;
    const scale = prior.scale ?? DEFAULTS.prior.scale;
    const strength = prior.strength ?? DEFAULTS.prior.strength;
    for (const [k, v, lo, hi] of [
      ['midpoint', mid, -1, 1],
      ['scale', scale, 1e-4, 1],
      ['strength', strength, 0, 1e6],
    ] as const) {
      if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi)
        throw new InvalidOptionError(`${PKG}: option "prior.${k}" must be a number from ${lo} to ${hi}`, { field: `prior.${k}` });
    }
    this.mix = new JudgeMixture({ midpoint: mid, scale }, strength);
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
      return {
        action: 'miss',
        ...(at >= 0 ? { candidate: at } : {}),
        cutoff: this.cutoff,
        ...(token ? { token } : {}),
        reason:
          best < 0
            ? cands.length
              ? 'no candidate passed the guards'
              : 'no candidate'
            : `similarity ${cands[best]!.similarity.toFixed(3)} is below the calibrator's floor ${this.minSimilarity}`,
      };
    }
    const token = this.tokenFor(seq, cands, best);
    if (cands[best]!.sameText === true) {
      // The same words as the stored prompt (case, punctuation, contractions, number formatting
      // aside): nothing to estimate, and nothing a look-alike could slip through.
      this.record(0);
      this.counters.served++;
      return { action: 'serve', candidate: best, pWrong: 0, cutoff: this.cutoff, token, reason: 'the same text as the stored prompt' };
    }
    const { pWrong, mean, n } = this.estimate(token);
    // An answer too likely wrong is never served, however much of the budget is left.
    const servable = mean <= this.maxWrongPerAnswer;
    this.record(servable ? pWrong : 1);
    if (!servable || pWrong > this.cutoff) {
      this.counters.missed++;
      const reason = servable
        ? `estimated wrong-answer probability ${pWrong.toFixed(3)} is above the cut-off ${this.cutoff.toFixed(3)}`
        : `estimated wrong-answer probability ${mean.toFixed(3)} is above maxWrongPerAnswer ${this.maxWrongPerAnswer}`;
      return { action: 'miss', candidate: best, pWrong, cutoff: this.cutoff, token, reason };
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
    const rivals: string[] = [];
    // The most similar candidate holding a different answer (without answer vectors, any other
    // candidate) that the guards passed: one they turned down (a named difference, another number)
    // is no alternative the lookup could be confused with. Its answer still sharpens the judge.
    let rival = -Infinity;
    let lowest = c.similarity;
    for (let i = 0; i < cands.length; i++) {
      if (i === at) continue;
      const o = cands[i]!;
      lowest = Math.min(lowest, o.similarity);
      const same = c.answerVector !== undefined && o.answerVector !== undefined && dot(c.answerVector, o.answerVector) >= this.allyAnswerSimilarity;
      if (same) allies.push(o.id);
      else {
        if (o.accepted !== false) rival = Math.max(rival, o.similarity);
        if (rivals.length < MAX_RIVALS && o.answerVector !== undefined) rivals.push(o.id);
      }
    }
    // No rival among the candidates: the lead is at least over the least similar one fetched.
    const margin = rival > -Infinity ? c.similarity - rival : c.similarity - lowest + NO_RIVAL_BONUS;
    return { seq, id: c.id, similarity: c.similarity, allies, rivals, context: marginClass(margin) };
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
  estimate(token: DecisionToken): { pWrong: number; mean: number; n: number } {
    const e = this.estimateAt(this.neighbourhood(token), token.context, token.similarity);
    const k = this.auditFactor();
    return { pWrong: Math.min(1, e.pWrong * k), mean: Math.min(1, e.mean * k), n: e.n };
  }

  /**
   * How many times more wrong answers the audit found among shadow checks (the judge's posterior
   * wrong mass) than the estimates they were served on expected; at least 1. Every estimate is
   * scaled by it: the audit only ever tightens.
   */
  private auditFactor(): number {
    return Math.min(AUDIT_MAX, Math.max(1, (this.audit.found + AUDIT_PSEUDO) / (this.audit.expected + AUDIT_PSEUDO)));
  }

  /**
   * The lowest similarity at which the token's neighbourhood would be served now (estimated
   * wrong-answer probability within the cut-off), or undefined when no similarity up to 1 is.
   * The neighbourhood's learned boundary, for results and reports.
   */
  boundary(token: DecisionToken): number | undefined {
    const nb = this.neighbourhood(token);
    const k = this.auditFactor();
    const ok = (s: number) => k * this.estimateAt(nb, token.context, s).pWrong <= this.cutoff;
    if (!ok(1)) return undefined;
    let lo = this.minSimilarity;
    if (ok(lo)) return round4(lo);
    let hi = 1;
    for (let i = 0; i < 12; i++) {
      const mid = (lo + hi) / 2;
      if (ok(mid)) hi = mid;
      else lo = mid;
    }
    return round4(hi);
  }

  /**
   * The similarity from which a clear match (no rival answer within 0.1 of it) without evidence
   * of its own is served now: the boundary the global curve and the cut-off give. Undefined when
   * none is (early on, or a budget too small for the traffic).
   */
  clearBoundary(): number | undefined {
    return this.boundary({ seq: 0, id: '', similarity: 1, allies: [], context: CONTEXTS - 1 });
  }

  /** The evidence of a token's neighbourhood and its log-odds shift of the global curve. */
  private neighbourhood(token: DecisionToken): { obs: Array<[Observation, number]>; rs: number[]; delta: number } {
    const obs: Array<[Observation, number]> = [];
    const own = this.entries.get(token.id);
    if (own) for (const o of own) obs.push([o, 1]);
    for (const id of token.allies) {
      const list = this.entries.get(id);
      if (list) for (const o of list) obs.push([o, 0.5]);
    }
    // (1) Log-odds shift, two Newton steps from 0 under a N(0, 1) prior.
    let delta = 0;
    const rs = obs.map(([o]) => (o.y >= 0 ? o.y : this.mix.posterior(o.k, o.s, o.a)));
    const ls = obs.map(([o]) => logit(this.mix.piAt(o.k, o.s)));
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
    return { obs, rs, delta };
  }

  private estimateAt(
    nb: { obs: Array<[Observation, number]>; rs: number[]; delta: number },
    context: number,
    s: number,
  ): { pWrong: number; mean: number; n: number } {
    const { obs, rs, delta } = nb;
    const piS = sigmoid(logit(this.mix.piAt(context, s)) + delta);
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
    const nEff = this.mix.binCount(context, s) + wrong + right;
    const pWrong = Math.min(1, mean + this.caution * Math.sqrt((mean * (1 - mean)) / (nEff + 1)));
    return { pWrong, mean, n: wrong + right };
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
    const obs: Observation =
      outcome.certain === true ? { s: token.similarity, a: -1, y: 1, w: 1, k: token.context } : { s: token.similarity, a, y: -1, w: 1, k: token.context };
    if (kind === 'shadow') {
      const wrong = obs.y >= 0 ? 1 - obs.y : 1 - this.mix.posterior(obs.k, obs.s, a);
      this.counters.observedShadows++;
      this.counters.shadowWrongMass += wrong;
      const expected = this.estimateAt(this.neighbourhood(token), token.context, token.similarity).pWrong;
      this.audited(wrong, expected);
      this.delta.audit.push([round6(wrong), round6(expected)]);
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

  /** One shadow check's audit: recent checks count most (the traffic may change under a calibrated cache). */
  private audited(wrong: number, expected: number): void {
    this.audit.found = AUDIT_DECAY * this.audit.found + wrong;
    this.audit.expected = AUDIT_DECAY * this.audit.expected + expected;
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
    this.mix.add(obs);
    if (local) this.delta.observations.push({ ids: [...ids], s: obs.s, a: obs.a, y: obs.y, w: obs.w, k: obs.k });
    if (++this.sinceRefit >= REFIT_EVERY) this.refit();
  }

  /** Refits the global model now (it also refits itself every few dozen observations). */
  refit(iterations = 25): void {
    this.sinceRefit = 0;
    this.mix.refit(iterations);
  }

  // ---------------------------------------------------------------------------------------------
  // State

  /** Counters, the cut-off, the learned curve and the audit of served answers. */
  stats(): CalibrationStats {
    const c = this.counters;
    const curve = [];
    for (let b = 1; b < SB; b++)
      curve.push({
        similarity: Math.round(sBinCentre(b) * 1000) / 1000,
        clear: round4(this.mix.pi[CONTEXTS - 1]![b]!),
        contested: round4(this.mix.pi[0]![b]!),
      });
    const wouldBe = c.served + c.shadowed;
    return {
      counters: { ...c },
      cutoff: this.cutoff,
      expectedWrongRate: this.expectedWrongRate(),
      auditedWrongShareOfHits: wilson(c.shadowWrongMass, c.observedShadows),
      shadowShare: wouldBe === 0 ? 0 : c.shadowed / wouldBe,
      curve,
      entriesWithEvidence: this.entries.size,
      auditFactor: round4(this.auditFactor()),
    };
  }

  /** The fitted model (for inspection): right-rate per margin class and similarity bin, judge-score densities. */
  model(): { readonly similarityBins: number[]; readonly rightRate: number[][]; readonly scoreDensityRight: number[]; readonly scoreDensityWrong: number[] } {
    return {
      similarityBins: Array.from({ length: SB }, (_, b) => Math.round(sBinCentre(b) * 1000) / 1000),
      rightRate: this.mix.pi.map((r) => Array.from(r, round4)),
      scoreDensityRight: Array.from(this.mix.fR, round4),
      scoreDensityWrong: Array.from(this.mix.fW, round4),
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
      judged: Array.from(this.mix.judged),
      labelled: Array.from(this.mix.labelled),
      entries,
      recent: recent.map(round6),
      model: {
        pi: this.mix.pi.map((r) => Array.from(r)),
        fR: Array.from(this.mix.fR),
        fW: Array.from(this.mix.fW),
        binWeight: this.mix.binWeight.map((r) => Array.from(r)),
      },
      cutoff: this.cutoff,
      tokens: this.tokens,
      counters: { ...this.counters },
      audit: { ...this.audit },
    };
  }

  /** Replaces this calibrator's state with a snapshot's (validated first: a bad snapshot changes nothing). */
  restore(snapshot: CalibrationSnapshot): void {
    const s = checkSnapshot(snapshot);
    const m = s.model;
    this.mix.judged = Float64Array.from(s.judged);
    this.mix.labelled = Float64Array.from(s.labelled);
    this.entries.clear();
    for (const [id, flat] of s.entries) {
      const list: Observation[] = [];
      for (let i = 0; i < flat.length; i += 5) list.push({ s: flat[i]!, a: flat[i + 1]!, y: flat[i + 2]!, w: flat[i + 3]!, k: clampClass(flat[i + 4]!) });
      this.entries.set(id, list.slice(-this.maxEvidence));
    }
    this.recent = s.recent.slice(-this.windowSize);
    this.recentAt = 0;
    this.cutoff = s.cutoff;
    this.tokens = s.tokens;
    this.counters = { ...this.counters, ...s.counters };
    this.audit = s.audit ? { found: s.audit.found, expected: s.audit.expected } : { found: 0, expected: 0 };
    this.delta = { observations: [], evicted: [], audit: [] };
    this.mix.pi = m.pi.map((r) => Float64Array.from(r));
    this.mix.binWeight = m.binWeight.map((r) => Float64Array.from(r));
    this.mix.fR = Float64Array.from(m.fR);
    this.mix.fW = Float64Array.from(m.fW);
    this.sinceRefit = 0;
  }

  /**
   * Observations and evictions recorded by this process since the last call, for other processes
   * (publish through L2 and `applyDelta` there). Counts add up, so applying each process's deltas
   * once gives every process the fleet's evidence.
   */
  takeDelta(): CalibrationDelta {
    const d = this.delta;
    this.delta = { observations: [], evicted: [], audit: [] };
    return { format: 'strata-calibration-delta', version: 1, observations: d.observations, evicted: d.evicted, audit: d.audit };
  }

  /** Adds another process's observations (never this process's own: they are already counted). */
  applyDelta(delta: CalibrationDelta): void {
    if (delta?.format !== 'strata-calibration-delta' || delta.version !== 1 || !Array.isArray(delta.observations) || !Array.isArray(delta.evicted)) {
      throw new InvalidOptionError(`${PKG}: not a calibration delta`, { field: 'delta' });
    }
    for (const o of delta.observations) {
      if (!Array.isArray(o.ids) || ![o.s, o.a, o.y, o.w].every((v) => typeof v === 'number' && Number.isFinite(v))) continue;
      this.addObservation(o.ids, { s: o.s, a: o.a, y: o.y, w: o.w, k: clampClass(o.k) }, false);
    }
    for (const id of delta.evicted) this.entries.delete(id);
    // The fleet's audits add up like its observations (absent in deltas of older versions).
    if (Array.isArray(delta.audit)) {
      for (const x of delta.audit) {
        if (Array.isArray(x) && x.length === 2 && x.every((v) => typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= 1)) this.audited(x[0]!, x[1]!);
      }
    }
  }
}
