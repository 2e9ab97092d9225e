import type { PriceTable } from '@strata-cache/core';

/**
 * Anthropic list prices, USD per 1M tokens (input, output, prompt-cache read, prompt-cache
 * write at the 5-minute TTL), as published when this table was last updated. Prices change:
 * pass the table, edited or extended, to the cache — `new MultiLayerCache({ prices:
 * ANTHROPIC_PRICES, ... })` — so statistics price your models. Model names match by longest
 * prefix (`claude-sonnet-4-20250514` → `claude-sonnet-4`).
 */
export const ANTHROPIC_PRICES: PriceTable = Object.freeze({
  'claude-opus-4': { input: 15, output: 75, cachedInput: 1.5, cacheWrite: 18.75 },
  'claude-opus-4-5': { input: 5, output: 25, cachedInput: 0.5, cacheWrite: 6.25 },
  'claude-sonnet-4': { input: 3, output: 15, cachedInput: 0.3, cacheWrite: 3.75 },
  'claude-haiku-4-5': { input: 1, output: 5, cachedInput: 0.1, cacheWrite: 1.25 },
  'claude-3-7-sonnet': { input: 3, output: 15, cachedInput: 0.3, cacheWrite: 3.75 },
  'claude-3-5-sonnet': { input: 3, output: 15, cachedInput: 0.3, cacheWrite: 3.75 },
  'claude-3-5-haiku': { input: 0.8, output: 4, cachedInput: 0.08, cacheWrite: 1 },
});
