import type { SemanticGuard } from '@strata-cache/core';
import { USE_LITE_QQP } from './models/use-lite-qqp.js';
import { decodeWeights, pairInputSize, pairVerifierGuard, type PairModel, type PairVerifierOptions } from './verifier.js';

/**
 * Probability cut-off of the bundled model that the package README's figures support (chosen on
 * the QQP tuning split by the quality benchmark, together with the threshold).
 */
export const USE_LITE_VERIFIER_MIN_PROBABILITY = 0.92;

/**
 * Similarity at or above which the bundled model is not asked: 1, always ask. (It used to trust
 * the embedding from 0.975, which let "…after 30 days?" / "…within 30 days?" at 0.985 through.)
 */
export const USE_LITE_VERIFIER_TRUST_ABOVE = 1;

let model: PairModel | undefined;

/** The bundled pair model for USE-lite (512-d) vectors (`@strata-cache/embed-use`), decoded once. */
export function useLiteVerifierModel(): PairModel {
  model ??= {
    version: 1,
    embedderFamily: USE_LITE_QQP.embedderFamily,
    dimensions: USE_LITE_QQP.dimensions,
    trainedOn: USE_LITE_QQP.trainedOn,
    hidden: USE_LITE_QQP.hidden,
    weights: decodeWeights(USE_LITE_QQP.weights, Math.max(1, USE_LITE_QQP.hidden) * pairInputSize(USE_LITE_QQP.dimensions)),
    biases: decodeWeights(USE_LITE_QQP.biases, USE_LITE_QQP.hidden),
    out: decodeWeights(USE_LITE_QQP.out, USE_LITE_QQP.hidden),
    bias: USE_LITE_QQP.bias,
    defaultMinProbability: USE_LITE_VERIFIER_MIN_PROBABILITY,
    defaultTrustAbove: USE_LITE_VERIFIER_TRUST_ABOVE,
  };
  return model;
}

/**
 * The learned second opinion for the USE-lite embedder: add it after `defaultGuards()`.
 * `@strata-cache/layer-semantic` refuses it with any other embedder.
 */
export function useLiteVerifier(options: Omit<PairVerifierOptions, 'model'> = {}): SemanticGuard {
  return pairVerifierGuard({ ...options, model: useLiteVerifierModel() });
}
