import type { TokenUsage } from './entry.js';
import type { LookupHit } from './types.js';
import {
  type LayerStats,
  type ModelPrice,
  type PriceTable,
  type StatsSnapshot,
  costUsd,
  findPrice,
  projectMonthlySavings,
  providerCacheSavingsUsd,
} from './stats.js';

/** Distinct model names whose price (or its absence) is remembered; beyond it prices are looked up each time. */
const MAX_REMEMBERED_MODELS = 1_000;
/** Longer model names are looked up each time, not remembered. */
const MAX_REMEMBERED_NAME = 200;

/** The counters behind `stats()`: one object per cache, plain fields, no allocation per request. */
export class CacheStats {
  requests = 0;
  hits = 0;
  misses = 0;
  bypassed = 0;
  loaderCalls = 0;
  loaderErrors = 0;
  coalesced = 0;
  joinedSimilar = 0;
  joinedSimilarServed = 0;
  shadowChecks = 0;
  calibrationObserved = 0;
  feedbackWrong = 0;
  feedbackRight = 0;
  private tokensSavedIn = 0;
  private tokensSavedOut = 0;
  private usdSaved = 0;
  private providerCacheUsdSaved = 0;
  private providerCachedTokens = 0;
  private upstreamUsd = 0;
  private upstreamTokens = 0;
  private upstreamCallsWithUsage = 0;
  private unpricedHits = 0;
  /** Requests the policy skipped (no read, no write), by reason. */
  private readonly policySkips = new Map<string, number>();
  readonly prices: PriceTable;
  /**
   * The price found for each model name seen (null: none): a hit with usage would otherwise list
   * the table's keys and compare prefixes on every call. The table is a copy taken at
   * construction, so what is found never changes.
   */
  private readonly priceByModel = new Map<string, ModelPrice | null>();

  constructor(prices: PriceTable | undefined) {
    this.prices = { ...(prices ?? {}) };
  }

  private priceOf(model: string | undefined): ModelPrice | undefined {
    if (!model) return undefined;
    const known = this.priceByModel.get(model);
    if (known !== undefined) return known ?? undefined;
    const price = findPrice(this.prices, model);
    // Names come from requests and answers: only as many, and only as long, as a model name is.
    if (this.priceByModel.size < MAX_REMEMBERED_MODELS && model.length <= MAX_REMEMBERED_NAME) this.priceByModel.set(model, price ?? null);
    return price;
  }

  recordHit(hit: LookupHit<unknown>): void {
    this.hits++;
    const usage = hit.entry.usage;
    if (!usage) return;
    this.tokensSavedIn += usage.inputTokens;
    this.tokensSavedOut += usage.outputTokens;
    const price = this.priceOf(hit.entry.model);
    if (price) this.usdSaved += costUsd(usage, price);
    else this.unpricedHits++;
  }

  recordUpstream(usage: TokenUsage, model: string | undefined): void {
    this.upstreamCallsWithUsage++;
    this.upstreamTokens += usage.inputTokens + usage.outputTokens;
    this.providerCachedTokens += usage.cachedInputTokens ?? 0;
    const price = this.priceOf(model);
    if (price) {
      this.upstreamUsd += costUsd(usage, price);
      this.providerCacheUsdSaved += providerCacheSavingsUsd(usage, price);
    }
  }

  /** Counts a policy skip; true the first time this reason is seen (since the last reset). */
  recordPolicySkip(reason: string): boolean {
    const n = this.policySkips.get(reason) ?? 0;
    this.policySkips.set(reason, n + 1);
    return n === 0;
  }

  snapshot(layers: ReadonlyArray<{ readonly name: string; readonly stats: LayerStats }>): StatsSnapshot {
    const perLayer: Record<string, ReturnType<LayerStats['snapshot']>> = {};
    for (const l of layers) perLayer[l.name] = l.stats.snapshot();
    const looked = this.hits + this.misses;
    return {
      requests: this.requests,
      hits: this.hits,
      misses: this.misses,
      hitRate: looked === 0 ? 0 : this.hits / looked,
      bypassed: this.bypassed,
      policySkips: Object.fromEntries(this.policySkips),
      loaderCalls: this.loaderCalls,
      loaderErrors: this.loaderErrors,
      coalesced: this.coalesced,
      joinedSimilar: { waited: this.joinedSimilar, served: this.joinedSimilarServed },
      layers: perLayer,
      tokensSaved: { input: this.tokensSavedIn, output: this.tokensSavedOut },
      usdSaved: this.usdSaved,
      providerCacheUsdSaved: this.providerCacheUsdSaved,
      providerCachedTokens: this.providerCachedTokens,
      upstreamUsd: this.upstreamUsd,
      unpricedHits: this.unpricedHits,
      calibration: { shadowChecks: this.shadowChecks, observed: this.calibrationObserved, feedback: { wrong: this.feedbackWrong, right: this.feedbackRight } },
    };
  }

  /** The seed formula with hit rate, tokens per request and blended price as observed. */
  monthlyProjection(dailyRequests: number): { usd: number; hitRate: number; tokensPerRequest: number; pricePerMillion: number } {
    const looked = this.hits + this.misses;
    const hitRate = looked === 0 ? 0 : this.hits / looked;
    const tokensPerRequest = this.upstreamCallsWithUsage === 0 ? 0 : this.upstreamTokens / this.upstreamCallsWithUsage;
    const pricePerMillion = this.upstreamTokens === 0 ? 0 : (this.upstreamUsd / this.upstreamTokens) * 1e6;
    return { usd: projectMonthlySavings({ dailyRequests, hitRate, tokensPerRequest, pricePerMillion }), hitRate, tokensPerRequest, pricePerMillion };
  }

  reset(): void {
    this.requests =
      this.hits =
      this.misses =
      this.bypassed =
      this.loaderCalls =
      this.loaderErrors =
      this.coalesced =
      this.joinedSimilar =
      this.joinedSimilarServed =
        0;
    this.tokensSavedIn = this.tokensSavedOut = this.usdSaved = this.providerCacheUsdSaved = this.providerCachedTokens = 0;
    this.upstreamUsd = this.upstreamTokens = this.upstreamCallsWithUsage = this.unpricedHits = 0;
    this.shadowChecks = this.calibrationObserved = this.feedbackWrong = this.feedbackRight = 0;
    this.policySkips.clear();
  }
}
