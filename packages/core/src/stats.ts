import type { TokenUsage } from './entry.js';

/** USD per 1 million tokens. */
export interface ModelPrice {
  input: number;
  output: number;
  /** Price of prompt tokens served from the provider's prompt cache. @default input */
  cachedInput?: number;
  /** Price of prompt tokens written to the provider's prompt cache (Anthropic). @default input */
  cacheWrite?: number;
}

export type PriceTable = Record<string, ModelPrice>;

/** Exact model name first, then the longest table key the name starts with (`gpt-4o-2024-08-06` → `gpt-4o`). */
export function findPrice(prices: PriceTable, model: string | undefined): ModelPrice | undefined {
  if (!model) return undefined;
  // Own entries only: a model named "constructor" or "toString" is not priced by Object.prototype.
  const exact = Object.hasOwn(prices, model) ? prices[model] : undefined;
  if (exact) return exact;
  let best: string | undefined;
  for (const name of Object.keys(prices)) {
    if (model.startsWith(name) && (best === undefined || name.length > best.length)) best = name;
  }
  return best === undefined ? undefined : prices[best];
}

/** What the call costs at list prices, with the provider's prompt-cache discount applied. */
export function costUsd(usage: TokenUsage, price: ModelPrice): number {
  const cached = usage.cachedInputTokens ?? 0;
  const written = usage.cacheWriteInputTokens ?? 0;
  const plainInput = Math.max(0, usage.inputTokens - cached - written);
  return (
    (plainInput * price.input + cached * (price.cachedInput ?? price.input) + written * (price.cacheWrite ?? price.input) + usage.outputTokens * price.output) /
    1e6
  );
}

/** What the provider's own prompt cache saved on a call (relative to full input price). */
export function providerCacheSavingsUsd(usage: TokenUsage, price: ModelPrice): number {
  const cached = usage.cachedInputTokens ?? 0;
  return (cached * (price.input - (price.cachedInput ?? price.input))) / 1e6;
}

/**
 * The seed formula: daily_requests × hit_rate × tokens/1e6 × price × 30.
 * `tokensPerRequest` and `pricePerMillion` are averages over the traffic.
 */
export function projectMonthlySavings(input: { dailyRequests: number; hitRate: number; tokensPerRequest: number; pricePerMillion: number }): number {
  return input.dailyRequests * input.hitRate * (input.tokensPerRequest / 1e6) * input.pricePerMillion * 30;
}

/** Fixed-size ring of recent samples; quantiles over what it holds. O(1) record, no growth. */
export class LatencyRecorder {
  private readonly samples: Float64Array;
  private count = 0;
  private next = 0;
  constructor(capacity = 4096) {
    this.samples = new Float64Array(capacity);
  }
  record(ms: number): void {
    this.samples[this.next] = ms;
    this.next = (this.next + 1) % this.samples.length;
    if (this.count < this.samples.length) this.count++;
  }
  get size(): number {
    return this.count;
  }
  quantile(q: number): number | undefined {
    if (this.count === 0) return undefined;
    const sorted = Array.from(this.samples.subarray(0, this.count)).sort((a, b) => a - b);
    const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
    return sorted[idx];
  }
  reset(): void {
    this.count = 0;
    this.next = 0;
  }
}

export interface LayerStatsSnapshot {
  readonly hits: number;
  readonly misses: number;
  readonly errors: number;
  readonly timeouts: number;
  readonly writes: number;
  readonly p50Ms: number | undefined;
  readonly p95Ms: number | undefined;
}

export interface StatsSnapshot {
  readonly requests: number;
  readonly hits: number;
  readonly misses: number;
  /** hits / (hits + misses); bypassed requests excluded. */
  readonly hitRate: number;
  readonly bypassed: number;
  /**
   * Requests the policy skipped (no read, no write), by the decision's reason — e.g.
   * `non-deterministic` for chat requests without temperature 0 or a seed. Part of `bypassed`.
   */
  readonly policySkips: Readonly<Record<string, number>>;
  readonly loaderCalls: number;
  readonly loaderErrors: number;
  /** Requests that joined an in-flight identical miss instead of calling the loader. */
  readonly coalesced: number;
  /**
   * Semantic misses that waited for a similar request's load in flight (`joinSimilar`): `waited`,
   * and of those `served` from its stored answer (the rest loaded their own).
   */
  readonly joinedSimilar: { readonly waited: number; readonly served: number };
  readonly layers: Readonly<Record<string, LayerStatsSnapshot>>;
  readonly tokensSaved: { readonly input: number; readonly output: number };
  /** What the hits would have cost upstream, at list prices after the provider's own cache discount. */
  readonly usdSaved: number;
  /** What the provider's prompt cache saved on upstream calls (not Strata's doing, counted apart). */
  readonly providerCacheUsdSaved: number;
  readonly providerCachedTokens: number;
  /** What the upstream calls cost. */
  readonly upstreamUsd: number;
  /** Requests whose model had no price: their savings are not in usdSaved. */
  readonly unpricedHits: number;
  /**
   * Calibrating semantic layers, as core saw them: `shadowChecks` are would-be hits re-asked
   * upstream to audit them (upstream calls spent on calibration; part of `misses`), `observed`
   * the upstream answers handed back to a layer to learn from (shadow checks and near misses),
   * `feedback` the users' verdicts (`cache.feedback`). The layers' own figures are in their `stats()`.
   */
  readonly calibration: { readonly shadowChecks: number; readonly observed: number; readonly feedback: { readonly wrong: number; readonly right: number } };
}

export class LayerStats {
  hits = 0;
  misses = 0;
  errors = 0;
  timeouts = 0;
  writes = 0;
  readonly latency = new LatencyRecorder();
  reset(): void {
    this.hits = this.misses = this.errors = this.timeouts = this.writes = 0;
    this.latency.reset();
  }
  snapshot(): LayerStatsSnapshot {
    return {
      hits: this.hits,
      misses: this.misses,
      errors: this.errors,
      timeouts: this.timeouts,
      writes: this.writes,
      p50Ms: this.latency.quantile(0.5),
      p95Ms: this.latency.quantile(0.95),
    };
  }
}
