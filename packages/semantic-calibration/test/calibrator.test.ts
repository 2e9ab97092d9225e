import { InvalidOptionError } from '@strata-cache/core';
import { describe, expect, it } from 'vitest';
import { SemanticCalibrator, type CalibrationCandidate, type CalibrationDecision } from '../src/index.js';

/** xorshift32 in [0, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

function unit(dim: number, rnd: () => number): Float32Array {
  const v = new Float32Array(dim);
  let n = 0;
  for (let i = 0; i < dim; i++) {
    v[i] = rnd() - 0.5;
    n += v[i]! * v[i]!;
  }
  n = Math.sqrt(n);
  for (let i = 0; i < dim; i++) v[i] = v[i]! / n;
  return v;
}

/**
 * A synthetic stream: `clusters` answers, each held by several stored entries. A query's best
 * candidate holds the right answer with a probability that rises with similarity (`rightAt`); the
 * judge scores right answers high and wrong ones low, with noise and a share of misjudged right
 * answers (as an embedding judge does).
 */
function stream(options: { seed: number; rightAt: (s: number, entry: number) => number; entries?: number; judgeMiss?: number }) {
  const rnd = rng(options.seed);
  const n = options.entries ?? 40;
  const answerOf = Array.from({ length: n }, (_, i) => i % 10);
  const answerVec = Array.from({ length: 10 }, () => unit(16, rnd));
  return {
    next() {
      const e = Math.floor(rnd() * n);
      const s = 0.6 + 0.4 * rnd();
      const right = rnd() < options.rightAt(s, e);
      const ally = (e + 10) % n;
      const rival = (e + 1) % n;
      const candidates: CalibrationCandidate[] = [
        { id: `e${e}`, similarity: s, answerVector: answerVec[answerOf[e]!]! },
        { id: `e${ally}`, similarity: s - 0.02, answerVector: answerVec[answerOf[ally]!]! },
        { id: `e${rival}`, similarity: s - 0.15, answerVector: answerVec[answerOf[rival]!]! },
      ];
      const misjudged = right && rnd() < (options.judgeMiss ?? 0.2);
      const score = right && !misjudged ? 0.75 + 0.2 * rnd() : 0.2 + 0.3 * rnd();
      return { candidates, right, score, entry: e };
    },
  };
}

function run(cal: SemanticCalibrator, st: ReturnType<typeof stream>, n: number) {
  let served = 0;
  let wrong = 0;
  let shadows = 0;
  let wouldBe = 0;
  const decisions: CalibrationDecision[] = [];
  for (let i = 0; i < n; i++) {
    const q = st.next();
    const d = cal.decide({ candidates: q.candidates });
    decisions.push(d);
    if (d.action === 'serve') {
      served++;
      wouldBe++;
      if (!q.right) wrong++;
    } else if (d.token) {
      if (d.action === 'shadow') {
        shadows++;
        wouldBe++;
      }
      cal.observe(d.token, { score: q.score }, d.action === 'shadow' ? 'shadow' : 'miss');
    }
  }
  return { served, wrong, shadows, wouldBe, decisions };
}

// These simulate thousands of decisions each: CPU-bound, so a loaded machine (or another Node major) can take
// several times longer than the default 5 s.
describe('SemanticCalibrator options', { timeout: 30_000 }, () => {
  it('rejects unknown and out-of-range options', () => {
    expect(() => new SemanticCalibrator({ maxWrongRate: 2 })).toThrow(InvalidOptionError);
    expect(() => new SemanticCalibrator({ shadowRate: -0.1 })).toThrow(/shadowRate/);
    expect(() => new SemanticCalibrator({ nope: 1 } as never)).toThrow(/unknown option "nope"/);
    expect(() => new SemanticCalibrator({ prior: { midpoint: 0.9, slope: 2 } as never })).toThrow(/prior\.slope/);
    expect(() => new SemanticCalibrator({ random: 3 as never })).toThrow(/random/);
  });
});

describe('SemanticCalibrator decisions', { timeout: 30_000 }, () => {
  it('never serves a candidate the guards turned down, nor an empty lookup', () => {
    const cal = new SemanticCalibrator({ random: rng(1) });
    // Teach it that 0.99 matches are always right.
    const st = stream({ seed: 2, rightAt: () => 1, judgeMiss: 0 });
    run(cal, st, 600);
    const d = cal.decide({ candidates: [{ id: 'x', similarity: 0.999, accepted: false }] });
    expect(d.action).toBe('miss');
    expect(cal.decide({ candidates: [] }).action).toBe('miss');
  });

  it('a rival the guards turned down does not make a match contested (its answer still reaches the judge)', () => {
    const cal = new SemanticCalibrator({ random: rng(5) });
    const a = new Float32Array([1, 0]);
    const b = new Float32Array([0, 1]);
    const lookup = (rivalAccepted: boolean) =>
      cal.decide({
        candidates: [
          { id: 'export', similarity: 0.95, answerVector: a },
          { id: 'import', similarity: 0.949, answerVector: b, accepted: rivalAccepted },
        ],
      }).token!;
    const contested = lookup(true);
    const named = lookup(false);
    // A rival the guards passed, 0.001 behind: the most contested class; one they turned down: a clear lead.
    expect(contested.context).toBe(0);
    expect(named.context).toBeGreaterThan(contested.context);
    expect(named.rivals).toEqual(['import']);
  });

  it('serves the same text at once (guards still apply), and says why', () => {
    const cal = new SemanticCalibrator({ random: rng(20) });
    const d = cal.decide({ candidates: [{ id: 'a', similarity: 0.91, sameText: true }] });
    expect(d.action).toBe('serve');
    expect(d.reason).toMatch(/same text/);
    expect(cal.decide({ candidates: [{ id: 'a', similarity: 0.91, sameText: true, accepted: false }] }).action).toBe('miss');
  });

  it('starts strict, then loosens where near misses show the answers agree', () => {
    const cal = new SemanticCalibrator({ maxWrongRate: 0.01, shadowRate: 0, random: rng(3) });
    // Right above 0.75, wrong below: the prior (midpoint 0.88) is far stricter than the traffic needs.
    const st = stream({ seed: 4, rightAt: (s) => (s >= 0.75 ? 0.995 : 0.05) });
    const early = run(cal, st, 200);
    const late = run(cal, st, 2000);
    expect(late.served / 2000).toBeGreaterThan(1.5 * (early.served / 200));
    // Served at similarities the prior alone would never allow.
    const lowest = Math.min(...late.decisions.filter((d) => d.action === 'serve').map((d) => d.token!.similarity));
    expect(lowest).toBeLessThan(0.85);
    // Within budget (wrong answers per lookup), with room for sampling noise.
    expect(late.wrong / 2000).toBeLessThan(0.02);
  });

  it('tightens where answers disagree: a bad neighbourhood is not served at similarities that are fine elsewhere', () => {
    const cal = new SemanticCalibrator({ maxWrongRate: 0.02, shadowRate: 0.1, random: rng(5) });
    // Entry e3 (and its ally e13) hold an answer that is wrong for most queries near them, even close ones.
    const st = stream({ seed: 6, rightAt: (s, e) => (e === 3 || e === 13 ? 0.1 : s >= 0.8 ? 0.99 : 0.2), judgeMiss: 0.05 });
    const r = run(cal, st, 4000);
    const bad = (d: CalibrationDecision) => d.token !== undefined && (d.token.id === 'e3' || d.token.id === 'e13');
    const rate = (ds: CalibrationDecision[]) => ds.filter((d) => d.action === 'serve').length / ds.length;
    const later = r.decisions.slice(1000);
    const servedGood = later.filter((d) => !bad(d) && d.action === 'serve').length;
    expect(servedGood).toBeGreaterThan(500);
    // After the first thousand lookups, the bad neighbourhood is served at a fraction of the rate of the rest.
    expect(rate(later.filter(bad))).toBeLessThan(rate(later.filter((d) => !bad(d))) / 4);
  });

  it('spends at most the shadow share of would-be hits', () => {
    const cal = new SemanticCalibrator({ maxWrongRate: 0.02, shadowRate: 0.1, random: rng(7) });
    const st = stream({ seed: 8, rightAt: (s) => (s >= 0.8 ? 0.99 : 0.3) });
    const r = run(cal, st, 5000);
    expect(r.wouldBe).toBeGreaterThan(500);
    expect(r.shadows / r.wouldBe).toBeLessThanOrEqual(0.1 + 5 / r.wouldBe);
    expect(r.shadows).toBeGreaterThan(0);
    const stats = cal.stats();
    expect(stats.shadowShare).toBeCloseTo(r.shadows / r.wouldBe, 6);
    expect(stats.counters.shadowed).toBe(r.shadows);
  });

  it('models a noisy judge: misjudged right answers do not stop it serving', () => {
    // 35% of right answers are scored as if wrong; a calibrator trusting verdicts would think a third of its hits are wrong.
    const cal = new SemanticCalibrator({ maxWrongRate: 0.01, shadowRate: 0.05, random: rng(9) });
    const st = stream({ seed: 10, rightAt: (s) => (s >= 0.8 ? 0.995 : 0.1), judgeMiss: 0.35 });
    run(cal, st, 1500);
    const r = run(cal, st, 3000);
    // Taking verdicts at face value, every similarity would look ≥ 35% wrong and nothing could be
    // served within 1%. (The audit reads a few misjudged answers as wrong and tightens a little.)
    expect(r.served / 3000).toBeGreaterThan(0.15);
    expect(r.wrong / 3000).toBeLessThan(0.015);
  });
});

describe('SemanticCalibrator safety rails', { timeout: 30_000 }, () => {
  it('never serves an answer estimated more likely wrong than maxWrongPerAnswer, whatever budget is left', () => {
    // A generous budget (20%) would spend itself on matches that are wrong half the time.
    const loose = new SemanticCalibrator({ maxWrongRate: 0.2, shadowRate: 0, random: rng(30), maxWrongPerAnswer: 1 });
    const capped = new SemanticCalibrator({ maxWrongRate: 0.2, shadowRate: 0, random: rng(30), maxWrongPerAnswer: 0.1 });
    const rightAt = (s: number) => (s >= 0.9 ? 0.99 : s >= 0.75 ? 0.5 : 0.05);
    const a = run(loose, stream({ seed: 31, rightAt }), 3000);
    const b = run(capped, stream({ seed: 31, rightAt }), 3000);
    const servedBelow = (r: ReturnType<typeof run>) => r.decisions.slice(1000).filter((d) => d.action === 'serve' && d.token!.similarity < 0.88).length;
    expect(servedBelow(a)).toBeGreaterThan(100);
    expect(servedBelow(b)).toBeLessThan(servedBelow(a) / 10);
    expect(b.decisions.some((d) => /maxWrongPerAnswer/.test(d.reason))).toBe(true);
    expect(() => new SemanticCalibrator({ maxWrongPerAnswer: 2 })).toThrow(/maxWrongPerAnswer/);
  });

  it('the audit tightens when shadow checks find more wrong answers than the estimates expected', () => {
    // Teach it that 0.85+ is safe, then the traffic changes: half the would-be hits turn wrong.
    const cal = new SemanticCalibrator({ maxWrongRate: 0.02, shadowRate: 0.2, random: rng(32) });
    run(cal, stream({ seed: 33, rightAt: (s) => (s >= 0.85 ? 0.995 : 0.1), judgeMiss: 0 }), 2000);
    expect(cal.stats().auditFactor).toBeLessThan(1.5);
    const before = cal.stats().counters.served;
    const after = run(cal, stream({ seed: 34, rightAt: (s) => (s >= 0.85 ? 0.5 : 0.1), judgeMiss: 0 }), 3000);
    expect(cal.stats().auditFactor).toBeGreaterThan(1.3);
    // It serves the now-unreliable matches less and less.
    const served = (from: number, to: number) => after.decisions.slice(from, to).filter((d) => d.action === 'serve').length;
    expect(served(2000, 3000)).toBeLessThan(served(0, 1000) * 0.8);
    void before;
  });
});

describe('SemanticCalibrator feedback', { timeout: 30_000 }, () => {
  it("evicts on 'wrong' and counts it against entries holding the same answer", () => {
    const cal = new SemanticCalibrator({ maxWrongRate: 0.05, shadowRate: 0, random: rng(11) });
    const st = stream({ seed: 12, rightAt: (s) => (s >= 0.8 ? 0.99 : 0.2) });
    run(cal, st, 2000);
    const v = new Float32Array(16).fill(0.25);
    const candidates: CalibrationCandidate[] = [
      { id: 'a', similarity: 0.93, answerVector: v },
      { id: 'b', similarity: 0.92, answerVector: v },
    ];
    const before = cal.decide({ candidates });
    expect(before.token).toBeDefined();
    const pBefore = cal.estimate({ ...before.token!, id: 'b', allies: ['a'] }).pWrong;
    expect(cal.feedback(before.token!, 'wrong')).toEqual({ evict: true });
    const pAfter = cal.estimate({ ...before.token!, id: 'b', allies: ['a'] }).pWrong;
    expect(pAfter).toBeGreaterThan(pBefore);
    expect(cal.stats().counters.feedbackWrong).toBe(1);
    expect(() => cal.feedback(before.token!, 'meh' as never)).toThrow(InvalidOptionError);
  });
});

describe('SemanticCalibrator state', { timeout: 30_000 }, () => {
  it('snapshot → JSON → restore gives the same decisions', () => {
    const a = new SemanticCalibrator({ random: rng(13) });
    run(a, stream({ seed: 14, rightAt: (s) => (s >= 0.8 ? 0.99 : 0.2) }), 1500);
    const json = JSON.stringify(a.snapshot());
    const b = new SemanticCalibrator({ random: rng(13) });
    b.restore(JSON.parse(json));
    const probe = stream({ seed: 15, rightAt: () => 1 });
    for (let i = 0; i < 50; i++) {
      const q = probe.next();
      const ta = a.estimate({ seq: 0, id: q.candidates[0]!.id, similarity: q.candidates[0]!.similarity, allies: [q.candidates[1]!.id], context: 2 });
      const tb = b.estimate({ seq: 0, id: q.candidates[0]!.id, similarity: q.candidates[0]!.similarity, allies: [q.candidates[1]!.id], context: 2 });
      expect(tb.pWrong).toBeCloseTo(ta.pWrong, 5);
    }
    expect(b.stats().cutoff).toBe(a.stats().cutoff);
  });

  it('refuses a damaged snapshot and keeps its own state', () => {
    const a = new SemanticCalibrator({ random: rng(16) });
    run(a, stream({ seed: 17, rightAt: (s) => (s >= 0.8 ? 0.99 : 0.2) }), 500);
    const before = JSON.stringify(a.snapshot());
    const bad = JSON.parse(before);
    bad.judged = bad.judged.slice(1);
    expect(() => a.restore(bad)).toThrow(/judged counts/);
    expect(() => a.restore({ format: 'other' } as never)).toThrow(/format/);
    expect(JSON.stringify(a.snapshot())).toBe(before);
  });

  it('deltas carry one process’s evidence to another', () => {
    const a = new SemanticCalibrator({ random: rng(18) });
    const b = new SemanticCalibrator({ random: rng(18) });
    run(a, stream({ seed: 19, rightAt: (s) => (s >= 0.75 ? 0.995 : 0.05) }), 2000);
    const delta = JSON.parse(JSON.stringify(a.takeDelta()));
    expect(delta.observations.length).toBeGreaterThan(100);
    b.applyDelta(delta);
    b.refit();
    a.refit();
    const token = { seq: 0, id: 'e1', similarity: 0.84, allies: ['e11'], context: 2 };
    expect(b.estimate(token).pWrong).toBeCloseTo(a.estimate(token).pWrong, 6);
    // A second take is empty: nothing is sent twice.
    expect(a.takeDelta().observations).toHaveLength(0);
    expect(() => b.applyDelta({ format: 'x' } as never)).toThrow(InvalidOptionError);
  });
});
