import type { PriceTable } from '@strata-cache/core';

/**
 * OpenAI list prices, USD per 1M tokens (input, output, cached input), as published when this
 * table was last updated. Prices change: pass the table, edited or extended, to the cache —
 * `new MultiLayerCache({ prices: OPENAI_PRICES, ... })` — so statistics price your models.
 * Model names match by longest prefix (`gpt-4o-2024-08-06` → `gpt-4o`).
 */
export const OPENAI_PRICES: PriceTable = Object.freeze({
  'gpt-5': { input: 1.25, output: 10, cachedInput: 0.125 },
  'gpt-5-mini': { input: 0.25, output: 2, cachedInput: 0.025 },
  'gpt-5-nano': { input: 0.05, output: 0.4, cachedInput: 0.005 },
  'gpt-4o': { input: 2.5, output: 10, cachedInput: 1.25 },
  'gpt-4o-mini': { input: 0.15, output: 0.6, cachedInput: 0.075 },
  'gpt-4.1': { input: 2, output: 8, cachedInput: 0.5 },
  'gpt-4.1-mini': { input: 0.4, output: 1.6, cachedInput: 0.1 },
  'gpt-4.1-nano': { input: 0.1, output: 0.4, cachedInput: 0.025 },
  o3: { input: 2, output: 8, cachedInput: 0.5 },
  'o4-mini': { input: 1.1, output: 4.4, cachedInput: 0.275 },
  'text-embedding-3-small': { input: 0.02, output: 0 },
  'text-embedding-3-large': { input: 0.13, output: 0 },
});
