import { embedderFits, type CandidateSelector, type SemanticGuard } from '@strata-cache/core';
import { consensusSelector, CONSENSUS_DEFAULTS } from './consensus.js';
import { defaultGuards } from './default-guards.js';
import { useLiteVerifierModel } from './use-lite-verifier.js';

/** A semantic layer's matching setting: threshold, guards and selector. */
export interface SemanticSetting {
  readonly threshold: number;
  readonly guards: SemanticGuard[];
  readonly selector: CandidateSelector;
}

/**
 * Thresholds the quality benchmark measured (USE-lite cosine):
 * - `guardsOnly`: the default setting's threshold — a candidate that passed the guards is served on
 *   its own from here (a lone pair of texts); the default's `consensusSelector()` also serves
 *   matches down to `consensusFloor` (its `reach` below the threshold), only on neighbourhood
 *   evidence (other stored prompts near the query holding the same answer, none holding another
 *   answer close by);
 * - `withVerifier`: where to start if you add the QQP-trained `useLiteVerifier()` yourself (it is
 *   not in the default: it did not carry over to other traffic).
 */
export const RECOMMENDED_THRESHOLD = Object.freeze({
  guardsOnly: 0.965,
  consensusFloor: Math.round((0.965 - CONSENSUS_DEFAULTS.reach) * 1000) / 1000,
  withVerifier: 0.7,
});

/** True when the bundled verifier was trained on this embedder's vectors. */
export function verifierFits(embedder: { readonly id: string; readonly dimensions: number }): boolean {
  const m = useLiteVerifierModel();
  return embedderFits({ family: m.embedderFamily, dimensions: m.dimensions }, embedder);
}

/**
 * The measured default setting for an embedder: `defaultGuards()` + `consensusSelector()` at the
 * threshold the quality benchmark chose across kinds of traffic (see the package README): a lone
 * match needs similarity 0.965; from 0.86 a match is served when other stored prompts near the
 * query hold the same answer and none holding another answer comes close. The same for every
 * embedder today; the figures were measured on USE-lite's similarity scale, so with another
 * embedder measure your own (`strata-calibrate`) or let `@strata-cache/semantic-calibration` learn
 * from your traffic.
 */
export function recommendedSetting(embedder: { readonly id: string; readonly dimensions: number }): SemanticSetting {
  void embedder;
  return {
    threshold: RECOMMENDED_THRESHOLD.guardsOnly,
    guards: defaultGuards(),
    selector: consensusSelector(),
  };
}
