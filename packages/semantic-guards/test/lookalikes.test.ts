import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { defaultGuards, runGuards } from '../src/index.js';

interface Pair {
  id: string;
  category: string;
  kind: string;
  label: 'lookalike' | 'paraphrase';
  a: string;
  b: string;
}
const pairs: Pair[] = readFileSync(new URL('../data/lookalikes.jsonl', import.meta.url), 'utf8')
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l) as Pair);

const CATEGORIES = ['numbers', 'negation', 'direction', 'opposite-action', 'swapped-arguments', 'entities'];

/**
 * The whole look-alike set through the guards alone, at a fixed similarity above any threshold
 * (as if the embedding had called every pair a match). Measured with the default guards:
 * 177 of 177 look-alikes rejected (the last one to go: "percentage of students are athletes" vs
 * "… of athletes are students", a swap around a copula), 60 of 60 paraphrases accepted.
 * The floors below are those measurements, so a regression in any guard fails here.
 */
describe('look-alike set', () => {
  const guards = defaultGuards();
  const verdict = (p: Pair) => runGuards(guards, { query: p.b, candidate: p.a, similarity: 0.99, threshold: 0.9 });

  it('is well formed: ≥150 labelled pairs, every category and paraphrases present', () => {
    expect(pairs.length).toBeGreaterThanOrEqual(150);
    for (const c of CATEGORIES) expect(pairs.filter((p) => p.category === c && p.label === 'lookalike').length, c).toBeGreaterThanOrEqual(20);
    expect(pairs.filter((p) => p.label === 'paraphrase').length).toBeGreaterThanOrEqual(50);
    expect(new Set(pairs.map((p) => p.id)).size).toBe(pairs.length);
    for (const p of pairs) expect(p.a.trim() !== p.b.trim(), p.id).toBe(true);
  });

  it('rejects every look-alike', () => {
    const looks = pairs.filter((p) => p.label === 'lookalike');
    const rejected = looks.filter((p) => !verdict(p).accept);
    expect(looks.filter((p) => verdict(p).accept).map((p) => p.id)).toEqual([]);
    expect(rejected.length).toBe(looks.length);
  });

  it('accepts the true paraphrases: 60 of 60', () => {
    const paraphrases = pairs.filter((p) => p.label === 'paraphrase');
    const turnedDown = paraphrases.filter((p) => !verdict(p).accept).map((p) => `${p.id}: ${JSON.stringify(verdict(p))}`);
    expect(turnedDown).toEqual([]);
  });

  it('gives the same verdict whichever text is stored', () => {
    const asymmetric = pairs.filter((p) => runGuards(guards, { query: p.a, candidate: p.b, similarity: 0.99, threshold: 0.9 }).accept !== verdict(p).accept);
    expect(asymmetric.map((p) => p.id)).toEqual([]);
  });

  it('each look-alike category is caught by the guard built for it (or another one)', () => {
    const byGuard: Record<string, Record<string, number>> = {};
    for (const p of pairs.filter((x) => x.label === 'lookalike')) {
      const v = verdict(p);
      if (v.accept) continue;
      (byGuard[p.category] ??= {})[v.guard] = (byGuard[p.category]![v.guard] ?? 0) + 1;
    }
    const main: Record<string, string> = {
      numbers: 'numbers',
      negation: 'negation',
      direction: 'direction',
      'opposite-action': 'opposites',
      'swapped-arguments': 'argument-order',
      entities: 'entities',
      symbols: 'symbols',
    };
    for (const c of [...CATEGORIES, 'symbols']) {
      const counts = byGuard[c] ?? {};
      const top = Object.entries(counts).sort((x, y) => y[1] - x[1])[0]?.[0];
      expect(top, `${c}: ${JSON.stringify(counts)}`).toBe(main[c]);
    }
  });

  it('with every guard switched off, nothing is rejected (the guards do the work, not the data)', () => {
    const none = defaultGuards({ symbols: false, numbers: false, negation: false, direction: false, opposites: false, argumentOrder: false, entities: false });
    expect(pairs.every((p) => runGuards(none, { query: p.b, candidate: p.a, similarity: 0.99, threshold: 0.9 }).accept)).toBe(true);
  });

  it('stays cheap: the whole set (237 pairs × 2 directions) checks well under a second', () => {
    const t0 = performance.now();
    for (const p of pairs) {
      runGuards(guards, { query: p.a, candidate: p.b, similarity: 0.99, threshold: 0.9 });
      runGuards(guards, { query: p.b, candidate: p.a, similarity: 0.99, threshold: 0.9 });
    }
    expect(performance.now() - t0).toBeLessThan(2000); // generous bound; speed is measured in the bench
  });
});
