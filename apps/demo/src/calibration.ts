/**
 * The demo's calibrating L3: the layer learns from the day's own traffic where paraphrases can be
 * served within an error budget (`@strata-cache/semantic-calibration`), and the report shows it at
 * work — shadow checks spent, near misses judged, boundaries learned, the audited wrong share.
 */
import type { SemanticCalibrationStats } from '@strata-cache/layer-semantic';
import { answerTextOf, wilson } from '@strata-cache/semantic-calibration';

/** The budget the demo states: at most 1 wrong cached answer per 200 L3 lookups; 10% of would-be hits audited. */
export const DEMO_CALIBRATION = Object.freeze({ maxWrongRate: 0.005, shadowRate: 0.1 });

/** The simulated provider's reference line names what an answer was written for: the ground truth. */
const REF_LINE = /\n?\[simulated answer · ref [^\]]*\]/g;

/**
 * What the answer judge reads of a stored or fresh answer: its text without the simulation's
 * reference line. The judge must see what a user sees, never the labels the run checks with.
 */
export function demoAnswerText(value: unknown): string | undefined {
  const text = answerTextOf(value)?.replace(REF_LINE, '').trim();
  return text ? text : undefined;
}

/** Calibration figures summed over the app instances' L3 layers. */
export interface CalibrationFigures {
  readonly budget: { readonly maxWrongRate: number; readonly shadowRate: number };
  readonly lookups: number;
  readonly served: number;
  readonly shadowChecks: number;
  /** Shadow checks ÷ would-be hits. */
  readonly shadowShare: number;
  readonly nearMissesJudged: number;
  readonly boundariesLearned: number;
  /** The similarity from which a clear match is served now (the most lenient and strictest instance). */
  readonly clearBoundary: { readonly lowest: number | null; readonly highest: number | null };
  /** Wrong answers the audit found among shadowed would-be hits, with a 95% interval. */
  readonly auditedWrongShare: { readonly estimate: number; readonly low: number; readonly high: number; readonly of: number };
  readonly expectedWrongRate: number;
  readonly dropped: number;
  readonly shared: { readonly published: number; readonly applied: number } | null;
}

export function calibrationFigures(
  all: ReadonlyArray<SemanticCalibrationStats | undefined>,
  budget: CalibrationFigures['budget'],
): CalibrationFigures | undefined {
  const xs = all.filter((x): x is SemanticCalibrationStats => x !== undefined);
  if (xs.length === 0) return undefined;
  const sum = (f: (s: SemanticCalibrationStats) => number) => xs.reduce((a, s) => a + f(s), 0);
  const served = sum((s) => s.served);
  const shadowChecks = sum((s) => s.shadowChecks);
  const judged = sum((s) => s.shadowsJudged);
  const wrongMass = sum((s) => s.auditedWrongShare.estimate * s.shadowsJudged);
  const audited = wilson(wrongMass, judged);
  const lows = xs.map((s) => s.clearBoundary.lowest).filter((x): x is number => x !== undefined);
  const highs = xs.map((s) => s.clearBoundary.highest).filter((x): x is number => x !== undefined);
  const lookups = sum((s) => s.lookups);
  const shared = xs.some((s) => s.shared) ? { published: sum((s) => s.shared?.published ?? 0), applied: sum((s) => s.shared?.applied ?? 0) } : null;
  return {
    budget,
    lookups,
    served,
    shadowChecks,
    shadowShare: served + shadowChecks === 0 ? 0 : shadowChecks / (served + shadowChecks),
    nearMissesJudged: sum((s) => s.nearMissesJudged),
    boundariesLearned: sum((s) => s.boundariesLearned),
    clearBoundary: { lowest: lows.length ? Math.min(...lows) : null, highest: highs.length ? Math.max(...highs) : null },
    auditedWrongShare: { estimate: audited.estimate, low: audited.low, high: audited.high, of: judged },
    expectedWrongRate: lookups === 0 ? 0 : sum((s) => s.expectedWrongRate * s.lookups) / lookups,
    dropped: sum((s) => s.dropped),
    shared,
  };
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

/** The summary's calibration lines (text). */
export function calibrationText(c: CalibrationFigures): string[] {
  const b = c.clearBoundary;
  const boundary = b.lowest === null ? 'none yet' : b.lowest === b.highest ? b.lowest.toFixed(3) : `${b.lowest.toFixed(3)}–${b.highest!.toFixed(3)}`;
  return [
    `Calibration (L3, budget ${pct(c.budget.maxWrongRate)} wrong answers, up to ${pct(c.budget.shadowRate)} of would-be hits audited): ` +
      `${c.served} served on trust of ${c.lookups} lookups; ${c.shadowChecks} shadow checks spent (${pct(c.shadowShare)} of would-be hits, each served the fresh answer); ` +
      `${c.nearMissesJudged} near misses judged for free; ${c.boundariesLearned} neighbourhoods with boundaries of their own; a clear match is served from similarity ${boundary}`,
    `  audited wrong share of would-be hits: ${pct(c.auditedWrongShare.estimate)} (95% ${pct(c.auditedWrongShare.low)}–${pct(c.auditedWrongShare.high)}, ${c.auditedWrongShare.of} checks, as the answer judge reads them); ` +
      `expected wrong answers per lookup ${pct(c.expectedWrongRate)}` +
      (c.shared ? `; evidence shared across instances: ${c.shared.published} messages sent, ${c.shared.applied} applied` : '') +
      (c.dropped ? `; ${c.dropped} upstream answers not judged (busy or gone)` : ''),
  ];
}

/** The report's calibration section (HTML). */
export function calibrationHtml(c: CalibrationFigures, esc: (x: unknown) => string): string {
  const rows: Array<[string, string]> = [
    ['budget', `${pct(c.budget.maxWrongRate)} wrong answers per lookup; up to ${pct(c.budget.shadowRate)} of would-be hits audited`],
    ['served on trust', `${c.served} of ${c.lookups} L3 lookups`],
    ['shadow checks spent', `${c.shadowChecks} (${pct(c.shadowShare)} of would-be hits; the caller got the fresh answer)`],
    ['near misses judged', `${c.nearMissesJudged} (free: the upstream answer was needed anyway)`],
    [
      'boundaries learned',
      `${c.boundariesLearned} neighbourhoods; a clear match is served from similarity ${c.clearBoundary.lowest === null ? '— (none yet)' : c.clearBoundary.lowest.toFixed(3)}`,
    ],
    [
      'audited wrong share',
      `${pct(c.auditedWrongShare.estimate)} (95% ${pct(c.auditedWrongShare.low)}–${pct(c.auditedWrongShare.high)}) of ${c.auditedWrongShare.of} checks`,
    ],
    ['expected wrong answers', `${pct(c.expectedWrongRate)} per lookup (the model's estimate)`],
  ];
  if (c.shared) rows.push(['shared across instances', `${c.shared.published} messages sent, ${c.shared.applied} applied`]);
  return `<h2>Calibration (L3)</h2><table>${rows.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('')}</table>`;
}
