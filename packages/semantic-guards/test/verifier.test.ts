import { InvalidOptionError } from '@strata-cache/core';
import { describe, expect, it } from 'vitest';
import {
  USE_LITE_VERIFIER_MIN_PROBABILITY,
  USE_LITE_VERIFIER_TRUST_ABOVE,
  pairVerifierGuard,
  sameText,
  useLiteVerifier,
  useLiteVerifierModel,
  type PairModel,
} from '../src/index.js';
import { SCALAR_FEATURES, decodeWeights, encodeWeights, pairInput, pairInputSize, pairLogit, pairProbability, scalarFeatures } from '../src/training.js';

const unit = (xs: number[]) => {
  const n = Math.hypot(...xs) || 1;
  return Float32Array.from(xs, (x) => x / n);
};

/** A hand-made 4-d model: the logit is bias + 10·(u·v)₀ − 5·|u−v|₁ − 2·(query-only words). */
function toyModel(): PairModel {
  return {
    version: 1,
    embedderFamily: 'toy',
    dimensions: 4,
    trainedOn: 'hand-made',
    hidden: 0,
    // [u·v (4), |u−v| (4), scalars]
    weights: Float32Array.from([10, 0, 0, 0, 0, -5, 0, 0, ...SCALAR_FEATURES.map((f) => (f === 'queryOnly' ? -2 : 0))]),
    biases: new Float32Array(0),
    out: new Float32Array(0),
    bias: -1,
    defaultMinProbability: 0.5,
    defaultTrustAbove: 1,
  };
}

describe('pair features', () => {
  it('scalar features: overlap, one-sided words, length, question word, identifiers', () => {
    const f = (q: string, c: string, cos = 0.9) => Object.fromEntries(SCALAR_FEATURES.map((n, i) => [n, scalarFeatures(q, c, cos)[i]]));
    const same = f('How do I reset my password?', 'How do I reset my password?', 1);
    expect(same).toMatchObject({ cosine: 1, jaccard: 1, queryOnly: 0, candidateOnly: 0, lengthRatio: 0, questionWordDiffers: 0, identifierDiffers: 0 });
    const why = f('Why do I reset my password?', 'How do I reset my password?');
    expect(why.questionWordDiffers).toBe(1);
    expect(why.jaccard).toBe(1); // question words are function words: content is the same
    const topic = f('How do I reset my router?', 'How do I reset my password?');
    expect(topic.queryOnly).toBeCloseTo(1 / 2);
    expect(topic.candidateOnly).toBeCloseTo(1 / 2);
    expect(topic.jaccard).toBeCloseTo(1 / 3);
    const ids = f('Use `load_from_disk()` to read it back', 'Use `save_to_disk()` to read it back');
    expect(ids.identifierDiffers).toBe(1);
    expect(f('Use `load_from_disk()` here', 'Call `load_from_disk()` there').identifierDiffers).toBe(0);
    // A one-letter typo in a long word is the same word.
    expect(f('How do I uninstall Photoshop?', 'How do I uninstal Photoshop?').queryOnly).toBe(0);
  });

  it('the logit is the bias plus the weighted features, and the probability its logistic', () => {
    const m = toyModel();
    const u = unit([1, 0, 0, 0]);
    const v = unit([1, 1, 0, 0]);
    const z = pairLogit(m, 'reset password', 'reset password', u, v, Math.SQRT1_2);
    expect(z).toBeCloseTo(-1 + 10 * (1 * Math.SQRT1_2) - 5 * Math.SQRT1_2, 4);
    expect(pairProbability(m, 'reset password', 'reset password', u, v, Math.SQRT1_2)).toBeCloseTo(1 / (1 + Math.exp(-z)), 6);
    // Words only the query has push the score down.
    expect(pairLogit(m, 'reset router password', 'reset password', u, v, Math.SQRT1_2)).toBeLessThan(z);
  });

  it('a hidden layer: bias + out·relu(W·x + c)', () => {
    const n = pairInputSize(4);
    const w = new Float32Array(2 * n);
    w[0] = 4; // unit 0 reads (u·v)₀
    w[n + 4] = 1; // unit 1 reads |u−v|₀
    const m: PairModel = { ...toyModel(), hidden: 2, weights: w, biases: Float32Array.from([-1, -10]), out: Float32Array.from([2, 3]), bias: 0.5 };
    const u = unit([1, 0, 0, 0]);
    // unit 0: 4·1 − 1 = 3 → 2·3; unit 1: |0| − 10 < 0 → off
    expect(pairLogit(m, 'x', 'x', u, u, 1)).toBeCloseTo(0.5 + 6, 5);
    expect(pairInput('x', 'x', u, u, 1)).toHaveLength(n);
  });

  it('weights round-trip through their base64 text form bit-exactly', () => {
    const w = Float32Array.from([0, -1.5, 3.25e-7, 1e30, -0]);
    expect(Array.from(decodeWeights(encodeWeights(w), w.length))).toEqual(Array.from(w));
    expect(() => decodeWeights(encodeWeights(w), 4)).toThrow(InvalidOptionError);
  });
});

describe('pairVerifierGuard', () => {
  it('accepts at or above the cut-off, rejects below with the probability in the reason', () => {
    const g = pairVerifierGuard({ model: toyModel(), minProbability: 0.5 });
    expect(g.name).toBe('verifier');
    expect(g.needsVectors).toBe(true);
    expect(g.embedder).toEqual({ family: 'toy', dimensions: 4 });
    const u = unit([1, 0, 0, 0]);
    const input = { query: 'reset password', candidate: 'reset my password', threshold: 0.5 };
    expect(g.check({ ...input, similarity: 1, queryVector: u, candidateVector: u })).toEqual({ accept: true });
    const far = unit([0.2, 1, 0, 0]);
    const v = g.check({ ...input, similarity: 0.2, queryVector: u, candidateVector: far });
    expect(v.accept).toBe(false);
    expect(!v.accept && v.reason).toMatch(/^verifier: p\(same question\) 0\.\d{3} < 0\.5$/);
  });

  it('trusts the embedding alone at or above trustAbove (no vectors needed there)', () => {
    const g = pairVerifierGuard({ model: toyModel(), trustAbove: 0.97 });
    const input = { query: 'reset password', candidate: 'reset my password', threshold: 0.5 };
    expect(g.check({ ...input, similarity: 0.97 })).toEqual({ accept: true });
    expect(g.check({ ...input, similarity: 0.969 }).accept).toBe(false); // below: the model is asked, and has no vectors
    expect(() => pairVerifierGuard({ model: toyModel(), trustAbove: Number.NaN })).toThrow(/trustAbove/);
  });

  it('rejects (never guesses) without both vectors of the right size', () => {
    const g = pairVerifierGuard({ model: toyModel() });
    const input = { query: 'a cat', candidate: 'a dog', similarity: 0.9, threshold: 0.5 };
    expect(g.check(input).accept).toBe(false);
    expect(g.check({ ...input, queryVector: unit([1, 0, 0, 0]), candidateVector: unit([1, 0, 0]) }).accept).toBe(false);
  });

  it('accepts the same text in other case, punctuation, contractions or number formatting without asking the model', () => {
    const g = pairVerifierGuard({ model: toyModel(), minProbability: 0.99 });
    const far = { similarity: 0.8, threshold: 0.5, queryVector: unit([1, 0, 0, 0]), candidateVector: unit([0, 1, 0, 0]) };
    expect(g.check({ ...far, query: 'Where is my order?', candidate: 'where is my order' })).toEqual({ accept: true });
    expect(g.check({ ...far, query: "It's not a good idea.", candidate: 'It is not a good idea.' })).toEqual({ accept: true });
    expect(g.check({ ...far, query: '8,000 hectares (20,000 acres)', candidate: '8000 hectares' })).toEqual({ accept: true });
    expect(g.check({ ...far, query: 'Can I book three seats?', candidate: 'Can I book 3 seats?' })).toEqual({ accept: true });
    // Different words, numbers or order are not the same text.
    expect(sameText('Book 3 seats', 'Book 30 seats')).toBe(false);
    expect(sameText('Is it safe?', 'It is safe?')).toBe(false);
    expect(sameText('5 km (3.1 miles)', '5 km (8 miles)')).toBe(false);
    expect(g.check({ ...far, query: 'Where is my order?', candidate: 'Where is my parcel?' }).accept).toBe(false);
  });

  it('validates its options and the model shape', () => {
    expect(() => pairVerifierGuard({ model: toyModel(), minProbability: 1.5 })).toThrow(/minProbability/);
    expect(() => pairVerifierGuard({ model: toyModel(), minProbability: Number.NaN })).toThrow(InvalidOptionError);
    expect(() => pairVerifierGuard({ model: { ...toyModel(), weights: new Float32Array(3) } })).toThrow(/dimensions/);
    expect(() => pairVerifierGuard({ model: { ...toyModel(), hidden: 2 } })).toThrow(/dimensions/);
  });
});

describe('the bundled USE-lite model', () => {
  it('is a 512-d use-lite model trained on the QQP tuning split, with finite weights', () => {
    const m = useLiteVerifierModel();
    expect(m.embedderFamily).toBe('use-lite');
    expect(m.dimensions).toBe(512);
    expect(m.trainedOn).toMatch(/QQP tuning split/);
    for (const w of [m.weights, m.biases, m.out]) expect(w.every(Number.isFinite)).toBe(true);
    expect(m.weights.length).toBe(Math.max(1, m.hidden) * pairInputSize(512));
    expect(m.weights.some((x) => x !== 0)).toBe(true);
    expect(useLiteVerifierModel()).toBe(m); // decoded once
    expect(useLiteVerifier().embedder).toEqual({ family: 'use-lite', dimensions: 512 });
    expect(m.defaultMinProbability).toBe(USE_LITE_VERIFIER_MIN_PROBABILITY);
    expect(m.defaultTrustAbove).toBe(USE_LITE_VERIFIER_TRUST_ABOVE);
  });

  it('scores identical vectors and texts higher than orthogonal ones', () => {
    const m = useLiteVerifierModel();
    const u = new Float32Array(512);
    const v = new Float32Array(512);
    for (let i = 0; i < 512; i++) {
      u[i] = Math.sin(i + 1);
      v[i] = Math.cos(3 * i + 2);
    }
    const nu = unit(Array.from(u));
    const nv = unit(Array.from(v));
    const t = 'How can I improve my English speaking skills?';
    expect(pairProbability(m, t, t, nu, nu, 1)).toBeGreaterThan(pairProbability(m, t, 'What is the capital of Peru?', nu, nv, 0));
  });
});
