/**
 * The global model behind the calibrator: a two-class mixture over (similarity, judge score) counts.
 * Right answers and wrong answers each have a judge-score density (shared by all lookups); the share
 * of right answers (`pi`) depends on the similarity bin and the margin class, non-decreasing in both.
 * Fitted by EM from judged counts plus definitively labelled counts (feedback, certain verdicts).
 */
import { isotonic } from './stats.js';

// Similarity bins: bin 0 holds s < 0.4, then 0.02-wide bins up to 1.
export const S_LOW = 0.4;
export const S_STEP = 0.02;
export const SB = 1 + Math.round((1 - S_LOW) / S_STEP);
// Judge-score bins over [0, 1].
export const AB = 20;
// Margin classes: similarity lead over the most similar candidate holding a different answer.
const MARGIN_EDGES = [0.01, 0.025, 0.05, 0.1];
export const CONTEXTS = MARGIN_EDGES.length + 1;
export const marginClass = (m: number) => {
  let c = 0;
  while (c < MARGIN_EDGES.length && m >= MARGIN_EDGES[c]!) c++;
  return c;
};
export const BANDWIDTH = 0.02;
// Lead credited when no fetched candidate holds a different answer (beyond the least similar one).
export const NO_RIVAL_BONUS = 0.05;
export const REFIT_EVERY = 32;
const ANCHOR_SIMILARITY = 0.97;
// Prior spread of a neighbourhood's shift of the global curve, in log-odds.
export const NEIGHBOURHOOD_SD = 1;
const ANCHOR_RIGHT_RATE = 0.98;
export const RECUT_EVERY = 25;

export const sBin = (s: number) => (s < S_LOW ? 0 : Math.min(SB - 1, 1 + Math.floor((s - S_LOW) / S_STEP)));
export const sBinCentre = (b: number) => (b === 0 ? S_LOW - S_STEP : S_LOW + (b - 0.5) * S_STEP);
export const aBin = (a: number) => Math.min(AB - 1, Math.max(0, Math.floor(a * AB)));

/** One judged observation attached to an entry: similarity, judge score or label, weight. */
export interface Observation {
  s: number;
  /** Judge score (0..1), or -1 when `y` holds a definitive label. */
  a: number;
  /** Definitive label (feedback): 1 right, 0 wrong; -1 when judged. */
  y: number;
  w: number;
  k: number;
}

/** Counts and fitted parameters; plain arrays so the calibrator can snapshot them. */
export class JudgeMixture {
  // Judged counts [context][sBin][aBin]; labelled counts [context][sBin][right, wrong].
  judged: Float64Array = new Float64Array(CONTEXTS * SB * AB);
  labelled: Float64Array = new Float64Array(CONTEXTS * SB * 2);
  pi: Float64Array[] = [];
  // Observations (judged + labelled, no prior) per class and bin, from the last refit.
  binWeight: Float64Array[] = Array.from({ length: CONTEXTS }, () => new Float64Array(SB));
  fR: Float64Array = new Float64Array(AB);
  fW: Float64Array = new Float64Array(AB);
  private readonly priorPi: Float64Array;

  constructor(
    prior: { midpoint: number; scale: number },
    private readonly priorStrengthPerBin: number,
  ) {
    this.priorPi = new Float64Array(SB);
    for (let b = 0; b < SB; b++) this.priorPi[b] = 1 / (1 + Math.exp(-(sBinCentre(b) - prior.midpoint) / prior.scale));
    this.reset();
  }

  /** Parameters before any evidence: the prior curve; right answers score high, wrong ones low. */
  reset(): void {
    this.pi = Array.from({ length: CONTEXTS }, () => Float64Array.from(this.priorPi));
    for (let i = 0; i < AB; i++) {
      const a = (i + 0.5) / AB;
      this.fR[i] = Math.exp(4 * a);
      this.fW[i] = Math.exp(-4 * a);
    }
    normalise(this.fR);
    normalise(this.fW);
  }

  /** Counts one observation. */
  add(obs: Observation): void {
    const sb = sBin(obs.s);
    if (obs.y >= 0) this.labelled[(obs.k * SB + sb) * 2 + (obs.y === 1 ? 0 : 1)]! += obs.w;
    else this.judged[(obs.k * SB + sb) * AB + aBin(obs.a)]! += obs.w;
  }

  /** Right-rate at a similarity (linear between bin centres). */
  piAt(k: number, s: number): number {
    const pi = this.pi[k]!;
    if (s < S_LOW) return pi[0]!;
    const x = (s - S_LOW) / S_STEP + 0.5;
    const i = Math.min(SB - 2, Math.max(1, Math.floor(x)));
    const t = Math.min(1, Math.max(0, x - i));
    return pi[i]! * (1 - t) + pi[i + 1]! * t;
  }

  /** Probability that an observation with this similarity and judge score was a right answer. */
  posterior(k: number, s: number, a: number): number {
    const p = this.piAt(k, s);
    const b = aBin(a);
    const r = p * this.fR[b]!;
    return r / (r + (1 - p) * this.fW[b]!);
  }

  /** Observations behind the curve at this similarity (the bin and half of its two neighbours). */
  binCount(k: number, s: number): number {
    const b = sBin(s);
    const w = this.binWeight[k]!;
    return w[b]! + 0.5 * ((w[b - 1] ?? 0) + (w[b + 1] ?? 0));
  }

  /**
   * Refits the mixture by EM: right-rate per similarity bin and margin class (non-decreasing in
   * both: a closer match or a clearer lead is never less reliable), and the
   * judge-score densities of right and wrong answers (shared), from the judged and labelled counts.
   */
  refit(iterations = 25): void {
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
}

export const clampClass = (k: number) => (Number.isInteger(k) && k >= 0 && k < CONTEXTS ? k : 0);

/** Least-squares unimodal fit (rises to one mode, then falls) of a non-negative histogram. */
export function unimodal(h: Float64Array): Float64Array {
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
export function monotone2d(raw: Float64Array[], wts: Float64Array[]): Float64Array[] {
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

export function normalise(f: Float64Array): Float64Array {
  let t = 0;
  for (const x of f) t += x;
  for (let i = 0; i < f.length; i++) f[i] = f[i]! / t;
  return f;
}

export const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
export const logit = (p: number) => {
  const q = Math.min(1 - 1e-6, Math.max(1e-6, p));
  return Math.log(q / (1 - q));
};
export const round4 = (x: number) => Math.round(x * 1e4) / 1e4;
export const round6 = (x: number) => Math.round(x * 1e6) / 1e6;
