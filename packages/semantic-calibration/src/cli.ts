#!/usr/bin/env node
/**
 * strata-calibrate: the offline calibrator.
 *
 *   strata-calibrate <rows.jsonl ...> [--budget 0.01] [--rate negatives|hits|lookups]
 *                    [--confidence 0.95] [--guards] [--thresholds 0.8:0.99:0.01]
 *                    [--write setting.json] [--json]
 *
 * Each line of the input is one labelled pair or one judged lookup:
 *   {"domain": "support", "similarity": 0.91, "label": 1}
 *   {"domain": "qqp", "similarity": 0.95, "verdict": "different", "query": "…", "candidate": "…"}
 * `label` 1/0 (or true/false, or `verdict` same/right vs different/wrong); `similarity` null for a
 * lookup that found no candidate; `accepted: false` when a guard turned the candidate down.
 * With --guards, rows with `query` and `candidate` texts go through the default guards first.
 */
import { createReadStream, realpathSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { byDomain, chooseSetting, frontier, leaveOneDomainOut, type CalibrationRow, type DomainFrontier, type FalseHitRate } from './frontier.js';

const USAGE = `usage: strata-calibrate <rows.jsonl ...|-> [--budget 0.01] [--rate negatives|hits|lookups] [--confidence 0.95] [--guards] [--thresholds from:to:step] [--write setting.json] [--json]`;

interface Args {
  files: string[];
  budget: number;
  rate: FalseHitRate;
  confidence: number;
  guards: boolean;
  thresholds?: number[];
  write?: string;
  json: boolean;
}

export function parseArgs(argv: readonly string[]): Args {
  const a: Args = { files: [], budget: 0.01, rate: 'negatives', confidence: 0.95, guards: false, json: false };
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i]!;
    const next = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${x} needs a value\n${USAGE}`);
      return v;
    };
    if (x === '--budget') a.budget = Number(next());
    else if (x === '--rate') a.rate = next() as FalseHitRate;
    else if (x === '--confidence') a.confidence = Number(next());
    else if (x === '--guards') a.guards = true;
    else if (x === '--json') a.json = true;
    else if (x === '--write') a.write = next();
    else if (x === '--thresholds') {
      const [from, to, step] = next().split(':').map(Number);
      if (!(from! < to!) || !(step! > 0)) throw new Error(`--thresholds wants from:to:step, e.g. 0.8:0.99:0.01\n${USAGE}`);
      a.thresholds = [];
      for (let t = from!; t <= to! + 1e-9; t += step!) a.thresholds.push(Math.round(t * 1e6) / 1e6);
    } else if (x === '--help' || x === '-h') throw new Error(USAGE);
    else if (x.startsWith('--')) throw new Error(`unknown option ${x}\n${USAGE}`);
    else a.files.push(x);
  }
  if (a.files.length === 0) throw new Error(USAGE);
  if (!(a.budget >= 0 && a.budget <= 1)) throw new Error('--budget is a rate from 0 to 1 (0.01 = 1%)');
  return a;
}

/** One input line → a row (throws with the line number on malformed input). */
export function parseRow(line: string, where: string): (CalibrationRow & { query?: string; candidate?: string }) | undefined {
  if (!line.trim()) return undefined;
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    throw new Error(`${where}: not JSON`);
  }
  const sim = o.similarity;
  if (!(sim === null || (typeof sim === 'number' && Number.isFinite(sim)))) throw new Error(`${where}: "similarity" must be a number or null`);
  let label: 0 | 1;
  const l = o.label ?? o.verdict;
  if (l === 1 || l === true || l === 'same' || l === 'right' || l === '1') label = 1;
  else if (l === 0 || l === false || l === 'different' || l === 'wrong' || l === '0') label = 0;
  else throw new Error(`${where}: needs "label" (1/0) or "verdict" (same/different)`);
  return {
    similarity: sim as number | null,
    label,
    ...(typeof o.domain === 'string' ? { domain: o.domain } : {}),
    ...(o.accepted === false ? { accepted: false } : {}),
    ...(typeof o.query === 'string' ? { query: o.query } : {}),
    ...(typeof o.candidate === 'string' ? { candidate: o.candidate } : {}),
  };
}

async function readRows(file: string): Promise<Array<CalibrationRow & { query?: string; candidate?: string }>> {
  const rows: Array<CalibrationRow & { query?: string; candidate?: string }> = [];
  const rl = createInterface({ input: file === '-' ? process.stdin : createReadStream(file), crlfDelay: Infinity });
  let n = 0;
  for await (const line of rl) {
    n++;
    const r = parseRow(line, `${file}:${n}`);
    if (r) rows.push(r);
  }
  return rows;
}

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

/** Human-readable report. */
export function render(frontiers: readonly DomainFrontier[], args: Args): string {
  const chosen = chooseSetting(frontiers, args.budget, { rate: args.rate, confidence: args.confidence });
  const out: string[] = [];
  const rateName = { negatives: 'false hits / non-matching rows', hits: 'wrong share of hits', lookups: 'wrong answers / lookups' }[args.rate];
  for (const f of frontiers) {
    out.push(`\n${f.domain}: ${f.rows} rows (${f.positives} right, ${f.negatives} wrong) — ${rateName}, ${Math.round(args.confidence * 100)}% intervals`);
    out.push('  threshold   hits   recall [interval]              false-hit rate [interval]');
    for (const p of f.points) {
      if (p.hits === 0 && p.threshold > 0.9) continue;
      const mark = chosen.threshold === p.threshold ? '  ← chosen' : p.falseHitRate.high <= args.budget ? '  (within budget)' : '';
      out.push(
        `  ${p.threshold.toFixed(3).padEnd(10)} ${String(p.hits).padStart(6)}   ${pct(p.recall.estimate).padStart(7)} [${pct(p.recall.low)}, ${pct(p.recall.high)}]`.padEnd(
          58,
        ) + `${pct(p.falseHitRate.estimate).padStart(7)} [${pct(p.falseHitRate.low)}, ${pct(p.falseHitRate.high)}]${mark}`,
      );
    }
  }
  out.push('');
  if (chosen.threshold === undefined)
    out.push(
      `No threshold keeps the ${rateName} within ${pct(args.budget)} with ${Math.round(args.confidence * 100)}% confidence in every domain: collect more data or loosen the budget.`,
    );
  else {
    out.push(
      `Chosen: threshold ${chosen.threshold} — the lowest whose upper bound stays within ${pct(args.budget)} in every domain (and at every higher threshold):`,
    );
    for (const d of chosen.perDomain)
      out.push(
        `  ${d.domain}: recall ${pct(d.point!.recall.estimate)}, ${rateName} ${pct(d.point!.falseHitRate.estimate)} (≤ ${pct(d.point!.falseHitRate.high)})`,
      );
  }
  const lodo = leaveOneDomainOut(frontiers, args.budget, { rate: args.rate, confidence: args.confidence });
  if (lodo.length) {
    out.push('', 'Leave one domain out (chosen on the others, scored on it):');
    for (const x of lodo)
      out.push(
        `  ${x.heldOut}: ${x.threshold === undefined ? 'no setting meets the budget on the others' : `threshold ${x.threshold} → ${x.point ? pct(x.point.falseHitRate.estimate) : '?'} (${x.withinBudget ? 'within' : 'over'} budget)`}`,
      );
  }
  return out.join('\n');
}

export async function main(argv: readonly string[]): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (e) {
    console.error((e as Error).message);
    return 2;
  }
  let rows: Array<CalibrationRow & { query?: string; candidate?: string }> = [];
  try {
    for (const f of args.files) rows.push(...(await readRows(f)));
  } catch (e) {
    console.error(`strata-calibrate: ${(e as Error).message}`);
    return 1;
  }
  if (args.guards) {
    const { defaultGuards, runGuards } = await import('@strata-cache/semantic-guards');
    const guards = defaultGuards();
    rows = rows.map((r) =>
      r.query !== undefined &&
      r.candidate !== undefined &&
      r.similarity !== null &&
      !runGuards(guards, { query: r.query, candidate: r.candidate, similarity: r.similarity, threshold: 0 }).accept
        ? { ...r, accepted: false }
        : r,
    );
  }
  const opts = { rate: args.rate, confidence: args.confidence, ...(args.thresholds ? { thresholds: args.thresholds } : {}) };
  const frontiers = [...byDomain(rows)].map(([d, rs]) => frontier(d, rs, opts));
  const chosen = chooseSetting(frontiers, args.budget, opts);
  if (args.json) console.log(JSON.stringify({ frontiers, chosen, leaveOneDomainOut: leaveOneDomainOut(frontiers, args.budget, opts) }, null, 2));
  else console.log(render(frontiers, args));
  if (args.write) {
    if (chosen.threshold === undefined) {
      console.error('strata-calibrate: no setting meets the budget; nothing written');
      return 1;
    }
    const setting = {
      threshold: chosen.threshold,
      guards: args.guards ? 'defaultGuards()' : 'none',
      budget: args.budget,
      rate: args.rate,
      confidence: args.confidence,
      perDomain: chosen.perDomain,
    };
    writeFileSync(args.write, JSON.stringify(setting, null, 2) + '\n');
    console.error(`strata-calibrate: wrote ${args.write}`);
  }
  return 0;
}

// Run when executed as the bin (through its symlink too), not when imported.
const invoked = process.argv[1] ? realpathSync(process.argv[1]) : '';
if (invoked && import.meta.url === pathToFileURL(invoked).href) {
  void main(process.argv.slice(2)).then((code) => process.exit(code));
}
