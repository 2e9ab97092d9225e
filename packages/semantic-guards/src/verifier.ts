/**
 * The learned second opinion: a small model (one hidden layer, or logistic regression) over the two embeddings and a few lexical
 * features that estimates the probability that two prompts ask the same question.
 *
 * Cosine similarity alone throws away which dimensions agree; the classic pair features
 * (element-wise product u·v and absolute difference |u−v|) keep them, so a small network can learn
 * that agreeing on some directions matters more than on others. Lexical features add what the
 * embedding blurs: content words one side has and the other lacks, and a changed question word
 * ("how" vs "why"). The model is tied to the embedder it was trained on (family + dimensions).
 */
import { InvalidOptionError, type GuardInput, type GuardVerdict, type SemanticGuard } from '@strata-cache/core';
import { canonicalForm } from './quantities.js';
import { analyze, contentStems, fuzzyHas, tokenize, type Analysis } from './text.js';

/** Names of the scalar (non-embedding) features, in model order. */
export const SCALAR_FEATURES = ['cosine', 'jaccard', 'queryOnly', 'candidateOnly', 'lengthRatio', 'questionWordDiffers', 'identifierDiffers'] as const;

/**
 * A trained pair model. Input x = [u·v (element-wise, `dimensions`), |u−v| (`dimensions`), the
 * `SCALAR_FEATURES`]. With `hidden` = 0 the logit is `bias + weights·x` (logistic regression);
 * with `hidden` = H it is `bias + out·relu(W·x + biases)`, W stored row by row in `weights`.
 * Any input standardisation is folded into the weights.
 */
export interface PairModel {
  readonly version: 1;
  /** Embedder family the weights were trained on (matched as a prefix of `Embedder.id`). */
  readonly embedderFamily: string;
  readonly dimensions: number;
  /** Free text: data and split it was trained on, for the record. */
  readonly trainedOn: string;
  /** Hidden ReLU units (0: linear). */
  readonly hidden: number;
  /** hidden × inputSize (row-major), or inputSize when linear. */
  readonly weights: Float32Array;
  /** Hidden unit biases (length `hidden`). */
  readonly biases: Float32Array;
  /** Output weights of the hidden units (length `hidden`). */
  readonly out: Float32Array;
  readonly bias: number;
  /** Probability cut-off the figures in the README were measured at. */
  readonly defaultMinProbability: number;
  /** Similarity at or above which the model is not asked (the figures' setting); 1 = always ask. */
  readonly defaultTrustAbove: number;
}

/** Length of a model's input vector for `dimensions`-d embeddings. */
export const pairInputSize = (dimensions: number): number => 2 * dimensions + SCALAR_FEATURES.length;

const QUESTION_WORDS = new Set(['what', 'why', 'how', 'when', 'where', 'who', 'whom', 'which', 'whose']);

function questionWords(a: Analysis): Set<string> {
  const out = new Set<string>();
  for (const t of a.tokens) if (QUESTION_WORDS.has(t.lower)) out.add(t.lower);
  return out;
}

// Code-like names: snake_case, camelCase, dotted calls, ALLCAPS words (`load_from_disk`, `toString`, `HTTP_PROXY`).
const IDENT_RE = /[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+|[A-Za-z0-9]*_[A-Za-z0-9_]+|[a-z]+[A-Z][A-Za-z0-9]*|\b[A-Z]{2,}[A-Z0-9_]*\b/g;

function identifiers(text: string): Set<string> {
  return new Set(Array.from(text.matchAll(IDENT_RE), (m) => m[0].toLowerCase()));
}

/** The scalar features of a pair (`SCALAR_FEATURES` order). */
export function scalarFeatures(query: string, candidate: string, cosine: number): Float64Array {
  const aq = analyze(query);
  const ac = analyze(candidate);
  const sq = contentStems(aq);
  const sc = contentStems(ac);
  let onlyQ = 0;
  for (const s of sq) if (!fuzzyHas(sc, s)) onlyQ++;
  let onlyC = 0;
  for (const s of sc) if (!fuzzyHas(sq, s)) onlyC++;
  const shared = sq.size - onlyQ;
  const union = sq.size + onlyC;
  const qw = questionWords(aq);
  const cw = questionWords(ac);
  const qwDiffers = qw.size > 0 && cw.size > 0 && ![...qw].some((w) => cw.has(w)) ? 1 : 0;
  const iq = identifiers(query);
  const ic = identifiers(candidate);
  let idDiffers = 0;
  if (iq.size > 0 && ic.size > 0) {
    let common = 0;
    for (const x of iq) if (ic.has(x)) common++;
    idDiffers = common === 0 ? 1 : 0;
  }
  const lq = Math.max(1, aq.tokens.length);
  const lc = Math.max(1, ac.tokens.length);
  return Float64Array.of(
    cosine,
    union === 0 ? 1 : shared / union,
    sq.size === 0 ? 0 : onlyQ / sq.size,
    sc.size === 0 ? 0 : onlyC / sc.size,
    Math.abs(Math.log(lq / lc)),
    qwDiffers,
    idDiffers,
  );
}

/** The model input for a pair: [u·v, |u−v|, scalar features]. */
export function pairInput(query: string, candidate: string, u: ArrayLike<number>, v: ArrayLike<number>, cosine: number, dimensions = u.length): Float32Array {
  const x = new Float32Array(pairInputSize(dimensions));
  for (let i = 0; i < dimensions; i++) {
    const a = u[i]!;
    const b = v[i]!;
    x[i] = a * b;
    x[dimensions + i] = Math.abs(a - b);
  }
  x.set(scalarFeatures(query, candidate, cosine), 2 * dimensions);
  return x;
}

/** Score (log-odds) of a pair under `model`. */
export function pairLogit(model: PairModel, query: string, candidate: string, u: ArrayLike<number>, v: ArrayLike<number>, cosine: number): number {
  const x = pairInput(query, candidate, u, v, cosine, model.dimensions);
  const n = x.length;
  const w = model.weights;
  let z = model.bias;
  if (model.hidden === 0) {
    for (let j = 0; j < n; j++) z += w[j]! * x[j]!;
    return z;
  }
  for (let k = 0; k < model.hidden; k++) {
    let s = model.biases[k]!;
    const row = k * n;
    for (let j = 0; j < n; j++) s += w[row + j]! * x[j]!;
    if (s > 0) z += model.out[k]! * s;
  }
  return z;
}

/** Probability (0..1) that the two prompts ask the same question. */
export function pairProbability(model: PairModel, query: string, candidate: string, u: ArrayLike<number>, v: ArrayLike<number>, cosine: number): number {
  return 1 / (1 + Math.exp(-pairLogit(model, query, candidate, u, v, cosine)));
}

export interface PairVerifierOptions {
  /**
   * The trained model. Defaults to the bundled USE-lite model (`useLiteVerifierModel()`).
   */
  model?: PairModel | undefined;
  /**
   * Accept a candidate only when the model's probability of "same question" is at least this.
   * @default the model's `defaultMinProbability` (bundled model: see the package README)
   */
  minProbability?: number | undefined;
  /**
   * At or above this cosine similarity the candidate is accepted without asking the model: the
   * embedding is sure enough on its own (the other guards still run). 1 (or more) always asks.
   * @default the model's `defaultTrustAbove` (bundled model: see the package README)
   */
  trustAbove?: number | undefined;
}

/** True when two texts have the same canonical form (`canonicalForm`): identical but for case, punctuation, contractions and number formatting. */
export function sameText(a: string, b: string): boolean {
  return a === b || canonicalForm(a, tokenize) === canonicalForm(b, tokenize);
}

/** Base64 of little-endian float32 → Float32Array (weights ship as text). */
export function decodeWeights(b64: string, length: number): Float32Array {
  const buf = Buffer.from(b64, 'base64');
  if (buf.byteLength !== length * 4)
    throw new InvalidOptionError(`@strata-cache/semantic-guards: weight block holds ${buf.byteLength / 4} floats, expected ${length}`);
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) out[i] = buf.readFloatLE(i * 4);
  return out;
}

/** Float32Array → base64 of little-endian float32. */
export function encodeWeights(w: ArrayLike<number>): string {
  const buf = Buffer.alloc(w.length * 4);
  for (let i = 0; i < w.length; i++) buf.writeFloatLE(w[i]!, i * 4);
  return buf.toString('base64');
}

/**
 * A guard backed by a learned pair model. It needs both vectors (`GuardInput.queryVector` /
 * `candidateVector`, which `@strata-cache/layer-semantic` supplies to guards that set `needsVectors`),
 * and checks the embedder: a model trained on one embedder says nothing about another's vectors.
 */
export function pairVerifierGuard(options: PairVerifierOptions & { model: PairModel }): SemanticGuard {
  const { model } = options;
  const minProbability = options.minProbability ?? model.defaultMinProbability;
  if (typeof minProbability !== 'number' || !(minProbability >= 0 && minProbability <= 1)) {
    throw new InvalidOptionError('@strata-cache/semantic-guards: option "minProbability" must be a number from 0 to 1', { field: 'minProbability' });
  }
  const trustAbove = options.trustAbove ?? model.defaultTrustAbove;
  if (typeof trustAbove !== 'number' || Number.isNaN(trustAbove)) {
    throw new InvalidOptionError('@strata-cache/semantic-guards: option "trustAbove" must be a number (1 or more: always ask the model)', {
      field: 'trustAbove',
    });
  }
  const n = pairInputSize(model.dimensions);
  const h = model.hidden;
  if (!Number.isSafeInteger(h) || h < 0 || model.weights.length !== (h === 0 ? n : h * n) || model.biases.length !== h || model.out.length !== h) {
    throw new InvalidOptionError('@strata-cache/semantic-guards: pair model weights do not match its dimensions', { field: 'model' });
  }
  return {
    name: 'verifier',
    needsVectors: true,
    embedder: { family: model.embedderFamily, dimensions: model.dimensions },
    check(input: GuardInput): GuardVerdict {
      if (input.similarity >= trustAbove) return { accept: true };
      // The same words in the same order (case, punctuation, contractions, number formatting and a
      // quantity restated in other units aside) ask the same thing, whatever the model would say.
      if (sameText(input.query, input.candidate)) return { accept: true };
      const { queryVector: u, candidateVector: v } = input;
      if (!u || !v || u.length !== model.dimensions || v.length !== model.dimensions) {
        // Without vectors the model cannot judge; the layer validated the embedder at construction,
        // so this only happens when a caller runs the guard by hand.
        return { accept: false, reason: `verifier needs both ${model.dimensions}-d vectors` };
      }
      const p = pairProbability(model, input.query, input.candidate, u, v, input.similarity);
      return p >= minProbability ? { accept: true } : { accept: false, reason: `verifier: p(same question) ${p.toFixed(3)} < ${minProbability}` };
    },
  };
}
