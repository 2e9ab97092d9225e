import { embedderFits, type CandidateSelector, type SemanticGuard } from '@strata-cache/core';
import { defaultGuards } from './default-guards.js';
import { lexicalSelector } from './selector.js';
import { useLiteVerifier, useLiteVerifierModel } from './use-lite-verifier.js';

/** A semantic layer's matching setting: threshold, guards and selector. */
export interface SemanticSetting {
  readonly threshold: number;
  readonly guards: SemanticGuard[];
  readonly selector: CandidateSelector;
}

/**
 * Thresholds the quality benchmark chose (USE-lite cosine; QQP calibration split, false hits
 * ≤ 1% of non-duplicates): with the learned verifier, and with the rule-based guards alone.
 */
export const RECOMMENDED_THRESHOLD = Object.freeze({ withVerifier: 0.7, guardsOnly: 0.965 });

/** True when the bundled verifier was trained on this embedder's vectors. */
export function verifierFits(embedder: { readonly id: string; readonly dimensions: number }): boolean {
  const m = useLiteVerifierModel();
  return embedderFits({ family: m.embedderFamily, dimensions: m.dimensions }, embedder);
}

/**
 * The measured default setting for an embedder: `defaultGuards()`, plus the learned verifier when
 * it was trained on this embedder's vectors (USE-lite), `lexicalSelector()`, and the threshold
 * chosen for that combination. Thresholds were tuned on USE-lite: with another embedder, measure
 * and pass your own.
 */
export function recommendedSetting(embedder: { readonly id: string; readonly dimensions: number }): SemanticSetting {
  const withVerifier = verifierFits(embedder);
  return {
    threshold: withVerifier ? RECOMMENDED_THRESHOLD.withVerifier : RECOMMENDED_THRESHOLD.guardsOnly,
    guards: withVerifier ? [...defaultGuards(), useLiteVerifier()] : defaultGuards(),
    selector: lexicalSelector(),
  };
}
