/**
 * Small, dependency-free statistics the calibrator and the offline frontier share: binomial
 * confidence intervals (Wilson, exact Clopper–Pearson) and isotonic regression.
 */

/** Standard normal quantile (Acklam's rational approximation, |error| < 1.2e-9). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) return p <= 0 ? -Infinity : Infinity;
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  }
  if (p > 1 - lo) return -normalQuantile(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) / (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1)
  );
}

/** A proportion with a two-sided confidence interval. */
export interface Interval {
  readonly estimate: number;
  readonly low: number;
  readonly high: number;
}

/** Wilson score interval for k successes in n trials (works for fractional, weighted counts). */
export function wilson(k: number, n: number, confidence = 0.95): Interval {
  if (!(n > 0)) return { estimate: 0, low: 0, high: 1 };
  const z = normalQuantile(1 - (1 - confidence) / 2);
  const p = Math.min(1, Math.max(0, k / n));
  const z2 = z * z;
  const centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / (1 + z2 / n);
  return { estimate: p, low: Math.max(0, centre - half), high: Math.min(1, centre + half) };
}

function logGamma(x: number): number {
  // Lanczos approximation (g = 7, n = 9).
  const g = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012,
    9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  x -= 1;
  let a = g[0]!;
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += g[i]! / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Regularised incomplete beta I_x(a, b) (continued fraction, Numerical Recipes' betacf). */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x));
  const cf = (xx: number, aa: number, bb: number) => {
    const TINY = 1e-300;
    let c = 1;
    let d = 1 - ((aa + bb) * xx) / (aa + 1);
    if (Math.abs(d) < TINY) d = TINY;
    d = 1 / d;
    let h = d;
    for (let m = 1; m <= 300; m++) {
      const m2 = 2 * m;
      let num = (m * (bb - m) * xx) / ((aa + m2 - 1) * (aa + m2));
      d = 1 + num * d;
      if (Math.abs(d) < TINY) d = TINY;
      c = 1 + num / c;
      if (Math.abs(c) < TINY) c = TINY;
      d = 1 / d;
      h *= d * c;
      num = (-(aa + m) * (aa + bb + m) * xx) / ((aa + m2) * (aa + m2 + 1));
      d = 1 + num * d;
      if (Math.abs(d) < TINY) d = TINY;
      c = 1 + num / c;
      if (Math.abs(c) < TINY) c = TINY;
      d = 1 / d;
      const del = d * c;
      h *= del;
      if (Math.abs(del - 1) < 1e-12) break;
    }
    return h;
  };
  return x < (a + 1) / (a + b + 2) ? (front * cf(x, a, b)) / a : 1 - (front * cf(1 - x, b, a)) / b;
}

/** The q-quantile of Beta(a, b), by bisection on the incomplete beta function. */
export function betaQuantile(q: number, a: number, b: number): number {
  let lo = 0;
  let hi = 1;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (incompleteBeta(mid, a, b) < q) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** Exact (Clopper–Pearson) interval for k successes in n trials. Conservative: covers at least `confidence`. */
export function clopperPearson(k: number, n: number, confidence = 0.95): Interval {
  if (!(n > 0)) return { estimate: 0, low: 0, high: 1 };
  const alpha = 1 - confidence;
  const low = k <= 0 ? 0 : betaQuantile(alpha / 2, k, n - k + 1);
  const high = k >= n ? 1 : betaQuantile(1 - alpha / 2, k + 1, n - k);
  return { estimate: k / n, low, high };
}

/**
 * Isotonic (non-decreasing) least-squares fit of `values` with `weights` (pool adjacent violators).
 * Returns one fitted value per input, in order.
 */
export function isotonic(values: ArrayLike<number>, weights: ArrayLike<number>): Float64Array {
  const n = values.length;
  const v: number[] = [];
  const w: number[] = [];
  const len: number[] = [];
  for (let i = 0; i < n; i++) {
    v.push(values[i]!);
    w.push(Math.max(weights[i]!, 1e-12));
    len.push(1);
    while (v.length > 1 && v[v.length - 2]! > v[v.length - 1]!) {
      const w2 = w.pop()!;
      const v2 = v.pop()!;
      const l2 = len.pop()!;
      const w1 = w[w.length - 1]!;
      v[v.length - 1] = (v[v.length - 1]! * w1 + v2 * w2) / (w1 + w2);
      w[w.length - 1] = w1 + w2;
      len[len.length - 1]! += l2;
    }
  }
  const out = new Float64Array(n);
  let k = 0;
  for (let b = 0; b < v.length; b++) for (let j = 0; j < len[b]!; j++) out[k++] = v[b]!;
  return out;
}
