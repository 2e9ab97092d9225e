import { embedderFits, type CandidateSelector, type SemanticGuard } from '@strata-cache/core';
import { defaultGuards } from './default-guards.js';
import { lexicalSelector } from './selector.js';
import { useLiteVerifierModel } from './use-lite-verifier.js';

/** A semantic layer's matching setting: threshold, guards and selector. */
export interface SemanticSetting {
  readonly threshold: number;
  readonly guards: SemanticGuard[];
  readonly selector: CandidateSelector;
}

/**
 * Thresholds the quality benchmark measured (USE-lite cosine): `guardsOnly` is the default setting's
 * (the rule-based guards and the selector, chosen across QQP, BANKING77 and mock_data with every
 * budget kept); `withVerifier` is where to start if you add the QQP-trained `useLiteVerifier()`
 * yourself (it no longer is in the default: it did not carry over to other traffic).
 */
export const RECOMMENDED_THRESHOLD = Object.freeze({ guardsOnly: 0.965, withVerifier: 0.7 });

/** True when the bundled verifier was trained on this embedder's vectors. */
export function verifierFits(embedder: { readonly id: string; readonly dimensions: number }): boolean {
  const m = useLiteVerifierModel();
  return embedderFits({ family: m.embedderFamily, dimensions: m.dimensions }, embedder);
}

/**
 * The measured default setting for an embedder: `defaultGuards()` + `lexicalSelector()` at the
 * threshold the quality benchmark chose across kinds of traffic (see the package README). The same
 * for every embedder today; the threshold was measured on USE-lite's similarity scale, so with
 * another embedder measure your own (`strata-calibrate`) or let `@strata-cache/semantic-calibration`
 * learn it from your traffic.
 */
export function recommendedSetting(embedder: { readonly id: string; readonly dimensions: number }): SemanticSetting {
  void embedder;
  return {
    threshold: RECOMMENDED_THRESHOLD.guardsOnly,
    guards: defaultGuards(),
    selector: lexicalSelector(),
  };
}
