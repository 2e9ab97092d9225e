/**
 * The offline calibrator: from labelled pairs or a judged request log, the frontier per domain
 * (hits against false hits at each threshold, with confidence intervals) and the setting that meets
 * an error budget.
 *
 * Beyond a threshold sweep that maximises F1 on a point estimate (RedisVL's optimiser, for one):
 * - the budget is met with confidence: the chosen threshold's *upper* confidence bound on the
 *   false-hit rate is within the budget, so a small sample cannot talk you into a loose setting;
 * - every domain must meet it (traffic mixes drift), and each domain's own frontier is reported;
 * - leave-one-domain-out: the threshold chosen without a domain, scored on it, shows how a setting
 *   carries over to traffic it was not chosen on;
 * - three rates, for the three questions users ask: of the non-matching pairs, how many hit
 *   (`negatives`); of the hits, how many are wrong (`hits`); of all lookups, how many got a wrong
 *   answer (`lookups`, for request logs).
 */
import { InvalidOptionError } from '@strata-cache/core';
import { clopperPearson, type Interval } from './stats.js';

/** One labelled row: a pair (stored prompt, asked prompt) or one lookup of a request log. */
export interface CalibrationRow {
  /** Kind of traffic (frontiers and budgets are per domain). @default 'default' */
  readonly domain?: string;
  /** Similarity of the query to its (best) candidate; `null` for a lookup that found no candidate. */
  readonly similarity: number | null;
  /** 1: serving the candidate would be right (a duplicate / the same answer); 0: wrong. */
  readonly label: 0 | 1;
  /** False when a guard turned the candidate down (it is then never a hit). @default true */
  readonly accepted?: boolean;
}

/** What a false hit is counted against. */
export type FalseHitRate = 'negatives' | 'hits' | 'lookups';

export interface FrontierPoint {
  readonly threshold: number;
  readonly hits: number;
  readonly rightHits: number;
  readonly wrongHits: number;
  /** Right hits ÷ rows labelled right (pairs) — recall. */
  readonly recall: Interval;
  /** Wrong hits ÷ the rate's denominator. */
  readonly falseHitRate: Interval;
}

export interface DomainFrontier {
  readonly domain: string;
  readonly rows: number;
  readonly positives: number;
  readonly negatives: number;
  readonly points: readonly FrontierPoint[];
}

export interface FrontierOptions {
  /** @default 'negatives' */
  rate?: FalseHitRate | undefined;
  /** Two-sided confidence of the intervals. @default 0.95 */
  confidence?: number | undefined;
  /** Thresholds to evaluate. @default 0.50, 0.51, …, 0.99, 0.995 */
  thresholds?: readonly number[] | undefined;
}

const DEFAULT_THRESHOLDS = [...Array.from({ length: 50 }, (_, i) => Math.round((0.5 + i * 0.01) * 100) / 100), 0.995];

function validate(options: FrontierOptions): { [K in keyof FrontierOptions]-?: Exclude<FrontierOptions[K], undefined> } {
  const rate = options.rate ?? 'negatives';
  if (rate !== 'negatives' && rate !== 'hits' && rate !== 'lookups')
    throw new InvalidOptionError(`@strata-cache/semantic-calibration: rate must be negatives, hits or lookups`, { field: 'rate' });
  const confidence = options.confidence ?? 0.95;
  if (typeof confidence !== 'number' || !(confidence > 0 && confidence < 1))
    throw new InvalidOptionError('@strata-cache/semantic-calibration: confidence must be between 0 and 1', { field: 'confidence' });
  const thresholds = [...(options.thresholds ?? DEFAULT_THRESHOLDS)].sort((a, b) => a - b);
  if (thresholds.length === 0 || thresholds.some((t) => typeof t !== 'number' || !Number.isFinite(t)))
    throw new InvalidOptionError('@strata-cache/semantic-calibration: thresholds must be finite numbers', { field: 'thresholds' });
  return { rate, confidence, thresholds };
}

/** Groups rows by domain (rows without one go to 'default'). */
export function byDomain(rows: readonly CalibrationRow[]): Map<string, CalibrationRow[]> {
  const out = new Map<string, CalibrationRow[]>();
  for (const r of rows) {
    const d = r.domain ?? 'default';
    let list = out.get(d);
    if (!list) out.set(d, (list = []));
    list.push(r);
  }
  return out;
}

/** The frontier of one domain's rows: each threshold's hits and false hits, with exact intervals. */
export function frontier(domain: string, rows: readonly CalibrationRow[], options: FrontierOptions = {}): DomainFrontier {
  const { rate, confidence, thresholds } = validate(options);
  let positives = 0;
  let negatives = 0;
  for (const r of rows) {
    if (r.label !== 0 && r.label !== 1)
      throw new InvalidOptionError(`@strata-cache/semantic-calibration: every row needs a label of 0 or 1 (domain ${domain})`, { field: 'label' });
    if (r.label === 1) positives++;
    else negatives++;
  }
  const points: FrontierPoint[] = thresholds.map((t) => {
    let right = 0;
    let wrong = 0;
    for (const r of rows) {
      if (r.similarity === null || r.similarity < t || r.accepted === false) continue;
      if (r.label === 1) right++;
      else wrong++;
    }
    const denom = rate === 'negatives' ? negatives : rate === 'hits' ? right + wrong : rows.length;
    return {
      threshold: t,
      hits: right + wrong,
      rightHits: right,
      wrongHits: wrong,
      recall: clopperPearson(right, positives, confidence),
      falseHitRate: clopperPearson(wrong, denom, confidence),
    };
  });
  return { domain, rows: rows.length, positives, negatives, points };
}

export interface ChosenSetting {
  /** The lowest threshold whose false-hit rate's upper bound is within the budget in every domain; undefined when none is. */
  readonly threshold: number | undefined;
  readonly budget: number;
  readonly rate: FalseHitRate;
  readonly confidence: number;
  readonly perDomain: ReadonlyArray<{ readonly domain: string; readonly point: FrontierPoint | undefined }>;
}

/**
 * The setting that meets `budget` (a rate, e.g. 0.01) with confidence in every domain: the lowest
 * threshold whose one-sided upper bound on the false-hit rate is within the budget everywhere
 * (lower thresholds hit more, so the lowest safe one keeps the most hits).
 */
export function chooseSetting(frontiers: readonly DomainFrontier[], budget: number, options: FrontierOptions = {}): ChosenSetting {
  const { rate, confidence } = validate(options);
  if (typeof budget !== 'number' || !(budget >= 0 && budget <= 1))
    throw new InvalidOptionError('@strata-cache/semantic-calibration: budget must be a rate from 0 to 1 (0.01 = 1%)', { field: 'budget' });
  const thresholds = frontiers[0]?.points.map((p) => p.threshold) ?? [];
  // The upper end of the two-sided interval: a one-sided bound at (1 + confidence) / 2.
  const passes = (t: number) =>
    frontiers.every((f) => {
      const p = f.points.find((x) => x.threshold === t);
      return p !== undefined && p.falseHitRate.high <= budget;
    });
  // Lower thresholds hit more: the lowest one from which every higher threshold also passes
  // (a sample is not always monotone; a lone passing threshold below a failing one is luck).
  let threshold: number | undefined;
  for (let i = thresholds.length - 1; i >= 0; i--) {
    if (!passes(thresholds[i]!)) break;
    threshold = thresholds[i];
  }
  return {
    threshold,
    budget,
    rate,
    confidence,
    perDomain: frontiers.map((f) => ({ domain: f.domain, point: threshold === undefined ? undefined : f.points.find((p) => p.threshold === threshold) })),
  };
}

/** For each domain: the threshold chosen on the others, scored on it. */
export function leaveOneDomainOut(
  frontiers: readonly DomainFrontier[],
  budget: number,
  options: FrontierOptions = {},
): Array<{
  readonly heldOut: string;
  readonly threshold: number | undefined;
  readonly point: FrontierPoint | undefined;
  readonly withinBudget: boolean | undefined;
}> {
  if (frontiers.length < 2) return [];
  return frontiers.map((f) => {
    const others = frontiers.filter((x) => x !== f);
    const c = chooseSetting(others, budget, options);
    const point = c.threshold === undefined ? undefined : f.points.find((p) => p.threshold === c.threshold);
    return { heldOut: f.domain, threshold: c.threshold, point, withinBudget: point === undefined ? undefined : point.falseHitRate.estimate <= budget };
  });
}
