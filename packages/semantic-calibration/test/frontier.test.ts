import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidOptionError } from '@strata-cache/core';
import { describe, expect, it } from 'vitest';
import { parseArgs, parseRow } from '../src/cli.js';
import { betaQuantile, byDomain, chooseSetting, clopperPearson, frontier, isotonic, leaveOneDomainOut, wilson, type CalibrationRow } from '../src/index.js';

describe('statistics', () => {
  it('gives the textbook binomial intervals', () => {
    // Clopper–Pearson 95% for 0/10: [0, 0.3085]; for 5/10: [0.1871, 0.8129].
    expect(clopperPearson(0, 10).high).toBeCloseTo(0.3085, 3);
    expect(clopperPearson(5, 10).low).toBeCloseTo(0.1871, 3);
    expect(clopperPearson(5, 10).high).toBeCloseTo(0.8129, 3);
    // Wilson 95% for 10/100: [0.0552, 0.1744].
    const w = wilson(10, 100);
    expect(w.low).toBeCloseTo(0.0552, 3);
    expect(w.high).toBeCloseTo(0.1744, 3);
    expect(betaQuantile(0.5, 1, 1)).toBeCloseTo(0.5, 6);
  });

  it('fits a non-decreasing curve', () => {
    expect(Array.from(isotonic([1, 3, 2, 4], [1, 1, 1, 1]))).toEqual([1, 2.5, 2.5, 4]);
    expect(Array.from(isotonic([5, 1], [1, 3]))).toEqual([2, 2]);
  });
});

/** Rows whose label is 1 with a probability rising with similarity, deterministic. */
function rows(domain: string, n: number, midpoint: number): CalibrationRow[] {
  const out: CalibrationRow[] = [];
  for (let i = 0; i < n; i++) {
    const s = 0.7 + (0.3 * i) / n;
    // Deterministic "coin": right when above the midpoint, except every 50th below-line row.
    const label = s >= midpoint ? (i % 97 === 0 ? 0 : 1) : i % 50 === 0 ? 1 : 0;
    out.push({ domain, similarity: s, label });
  }
  return out;
}

describe('frontier and chooseSetting', () => {
  it('reports hits, recall and false-hit rates per threshold, with intervals', () => {
    const f = frontier('a', rows('a', 2000, 0.85), { thresholds: [0.8, 0.85, 0.9] });
    expect(f.positives + f.negatives).toBe(2000);
    const [p80, p85, p90] = f.points;
    expect(p80!.hits).toBeGreaterThan(p85!.hits);
    expect(p85!.falseHitRate.estimate).toBeLessThan(p80!.falseHitRate.estimate);
    expect(p90!.recall.estimate).toBeLessThan(p85!.recall.estimate);
    expect(p85!.falseHitRate.low).toBeLessThanOrEqual(p85!.falseHitRate.estimate);
    expect(p85!.falseHitRate.high).toBeGreaterThanOrEqual(p85!.falseHitRate.estimate);
  });

  it('chooses the lowest threshold whose upper bound meets the budget in every domain', () => {
    const all = [...rows('easy', 3000, 0.8), ...rows('hard', 3000, 0.9)];
    const fs = [...byDomain(all)].map(([d, r]) => frontier(d, r));
    const c = chooseSetting(fs, 0.02);
    expect(c.threshold).toBeDefined();
    // The hard domain decides: nothing below its midpoint can pass.
    expect(c.threshold!).toBeGreaterThanOrEqual(0.9);
    for (const d of c.perDomain) expect(d.point!.falseHitRate.high).toBeLessThanOrEqual(0.02);
    // The easy domain alone would allow a looser setting.
    expect(chooseSetting([fs.find((f) => f.domain === 'easy')!], 0.02).threshold!).toBeLessThan(c.threshold!);
  });

  it('wants enough evidence: a tiny sample meets no strict budget', () => {
    const f = frontier('tiny', [
      { similarity: 0.99, label: 1 },
      { similarity: 0.98, label: 1 },
    ]);
    expect(chooseSetting([f], 0.01).threshold).toBeUndefined();
  });

  it('counts false hits against negatives, hits or lookups', () => {
    const r: CalibrationRow[] = [
      { similarity: 0.95, label: 1 },
      { similarity: 0.95, label: 0 },
      { similarity: 0.5, label: 0 },
      { similarity: null, label: 0 },
      { similarity: 0.96, label: 0, accepted: false },
    ];
    const at = (rate: 'negatives' | 'hits' | 'lookups') => frontier('x', r, { rate, thresholds: [0.9] }).points[0]!.falseHitRate.estimate;
    expect(at('negatives')).toBeCloseTo(1 / 4);
    expect(at('hits')).toBeCloseTo(1 / 2);
    expect(at('lookups')).toBeCloseTo(1 / 5);
    expect(() => frontier('x', r, { rate: 'all' as never })).toThrow(InvalidOptionError);
  });

  it('scores each domain with the setting chosen on the others', () => {
    const fs = [...byDomain([...rows('a', 3000, 0.8), ...rows('b', 3000, 0.8), ...rows('c', 3000, 0.92)])].map(([d, r]) => frontier(d, r));
    const l = leaveOneDomainOut(fs, 0.02);
    expect(l.map((x) => x.heldOut)).toEqual(['a', 'b', 'c']);
    // Chosen on a and b (easy), c (hard) is over budget: the table shows the domain that does not carry over.
    expect(l.find((x) => x.heldOut === 'c')!.withinBudget).toBe(false);
    expect(l.find((x) => x.heldOut === 'a')!.withinBudget).toBe(true);
  });
});

describe('strata-calibrate', () => {
  it('parses rows and options, with clear errors', () => {
    expect(parseRow('{"similarity":0.9,"verdict":"same","domain":"d"}', 'f:1')).toEqual({ similarity: 0.9, label: 1, domain: 'd' });
    expect(parseRow('{"similarity":null,"label":0}', 'f:2')).toEqual({ similarity: null, label: 0 });
    expect(parseRow('   ', 'f:3')).toBeUndefined();
    expect(() => parseRow('{"similarity":"x","label":1}', 'f:4')).toThrow(/f:4.*similarity/);
    expect(() => parseRow('{"similarity":0.9}', 'f:5')).toThrow(/label/);
    expect(() => parseRow('nope', 'f:6')).toThrow(/not JSON/);
    expect(parseArgs(['a.jsonl', '--budget', '0.02', '--rate', 'hits', '--thresholds', '0.9:0.95:0.01']).thresholds).toEqual([
      0.9, 0.91, 0.92, 0.93, 0.94, 0.95,
    ]);
    expect(() => parseArgs([])).toThrow(/usage/);
    expect(() => parseArgs(['a', '--frob'])).toThrow(/unknown option --frob/);
  });

  it('runs as a bin: prints the frontier, writes the setting, runs the guards on texts', () => {
    const dir = mkdtempSync(join(tmpdir(), 'strata-calibrate-'));
    const file = join(dir, 'rows.jsonl');
    const lines = rows('support', 3000, 0.85).map((r) => JSON.stringify(r));
    // A look-alike above every threshold (0.999): only the guards keep it out.
    for (let i = 0; i < 40; i++)
      lines.push(JSON.stringify({ domain: 'support', similarity: 0.999, label: 0, query: 'Book 3 seats for Friday', candidate: 'Book 30 seats for Friday' }));
    writeFileSync(file, lines.join('\n') + '\n');
    const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
    const out = execFileSync(process.execPath, [cli, file, '--budget', '0.02', '--guards', '--write', join(dir, 'setting.json')], { encoding: 'utf8' });
    expect(out).toMatch(/support: 3040 rows/);
    expect(out).toMatch(/Chosen: threshold 0\.\d+/);
    const setting = JSON.parse(readFileSync(join(dir, 'setting.json'), 'utf8'));
    expect(setting.guards).toBe('defaultGuards()');
    expect(setting.threshold).toBeGreaterThanOrEqual(0.85);
    // Without the guards the look-alikes at 0.99 break the budget at every threshold.
    const without = execFileSync(process.execPath, [cli, file, '--budget', '0.005', '--json'], { encoding: 'utf8' });
    expect(JSON.parse(without).chosen.threshold).toBeUndefined();
    let code = 0;
    try {
      execFileSync(process.execPath, [cli, '--budget', '2', file], { stdio: 'pipe' });
    } catch (e) {
      code = (e as { status: number }).status;
    }
    expect(code).toBe(2);
  });
});
