/**
 * Training internals of the learned pair verifier: feature construction, the model's forward pass
 * and the weight encoding. For retraining a `PairModel` (see the package's `bench/train-verifier.mjs`);
 * using the verifier needs only `pairVerifierGuard` / `useLiteVerifier` from the main entry.
 */
export { SCALAR_FEATURES, decodeWeights, encodeWeights, pairInput, pairInputSize, pairLogit, pairProbability, scalarFeatures } from './verifier.js';
export type { PairModel } from './verifier.js';
