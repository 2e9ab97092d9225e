// The calibrator's options: defaults in one place, checked like every Strata constructor checks its own.
import { InvalidOptionError } from '@strata-cache/core';
import type { SemanticCalibratorOptions } from './types.js';

export const PKG = '@strata-cache/semantic-calibration';

export const DEFAULTS = {
  maxWrongRate: 0.01,
  shadowRate: 0.05,
  minSimilarity: 0.6,
  evidenceFloor: 0.4,
  priorStrength: 3,
  allyAnswerSimilarity: 0.9,
  safetyMargin: 0.2,
  maxWrongPerAnswer: 0.25,
  caution: 2,
  window: 2000,
  maxEvidencePerEntry: 24,
  prior: { midpoint: 0.88, scale: 0.025, strength: 2 },
} as const;

export const OPTION_KEYS: readonly (keyof SemanticCalibratorOptions)[] = [...(Object.keys(DEFAULTS) as (keyof typeof DEFAULTS)[]), 'random'];

export function num(options: SemanticCalibratorOptions, key: keyof typeof DEFAULTS, min: number, max: number, def: number): number {
  const v = (options as Record<string, unknown>)[key];
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw new InvalidOptionError(`${PKG}: option "${key}" must be a number from ${min} to ${max}`, { field: key });
  }
  return v;
}
