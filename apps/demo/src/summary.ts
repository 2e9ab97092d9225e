import type { StatsSnapshot } from '@strata-cache/core';
import type { CalibrationFigures } from './calibration.js';
import { intentById } from './knowledge.js';
import type { EventRecord, Path, RequestRecord, RunResult } from './runner.js';
import type { RequestKind } from './workload.js';
import type { FleetReport } from './fleet.js';

export const PATHS: readonly Path[] = ['L1', 'L2', 'L3', 'upstream'];

export interface PathFigures {
  count: number;
  share: number;
  p50Ms: number | null;
  p95Ms: number | null;
}

export interface Summary {
  generatedAt: string;
  provider: { label: string; simulated: boolean; model: string };
  workload: { name: string; requests: number; tenants: string[]; seed: number | null; concurrency: number; labelled: boolean };
  components: string[];
  missing: string[];
  requests: number;
  hits: number;
  misses: number;
  hitRate: number;
  errors: number;
  /** The cache's own counters, side by side with the run's. */
  cacheStats: StatsSnapshot;
  /** The calibrating L3 at work (undefined when L3 ran with the static default). */
  calibration?: CalibrationFigures | undefined;
  byPath: Record<Path, PathFigures>;
  byKind: Record<string, { count: number; hits: number; L1: number; L2: number; L3: number; upstream: number }>;
  checks: {
    checked: number;
    unchecked: number;
    wrongHits: number;
    /** Wrong hits by the path that served them (L1/L2 ones only with backfillSemanticHits, which copies a semantic answer under the asker's exact key). */
    wrongHitsByPath: Record<string, number>;
    /** Most frequent wrong pairs: asked intent ← served intent. */
    wrongPairs: Array<{ asked: string; served: string; count: number; example: string }>;
    stale: number;
    crossTenant: number;
    /** Upstream answers whose reference disagrees with the request's label (a workload bug if > 0). */
    labelMismatches: number;
    guardRejections: number;
    rejectionsByGuard: Record<string, number>;
    lookalikes: number;
    lookalikesServedRight: number;
  };
  upstream: {
    /** Upstream calls the run made (distinct provider responses received on misses). */
    calls: number;
    /** Loader calls the cache counted (streamed misses go around the loader and are not in it). */
    loaderCalls: number;
    avoided: number;
    coalesced: number;
    /** Semantic misses that waited for a similar question's answer in flight, and how many it served. */
    joinedSimilar: { waited: number; served: number };
    tokensAvoided: { input: number; output: number };
    providerCalls: number | null;
  };
  usd: {
    upstream: number;
    saved: number;
    monthly: { dailyRequests: number; usd: number; hitRate: number; tokensPerRequest: number; pricePerMillion: number };
  };
  providerPromptCache: { cachedTokens: number; usdSaved: number };
  invalidation: {
    events: EventRecord[];
    /** Pricing requests of the event's tenant that started after it. */
    after: { pricingRequests: number; fromUpstream: number; fromCache: number; current: number; stale: number };
    purgedTotal: number;
  };
  timeline: { buckets: Array<{ upTo: number; L1: number; L2: number; L3: number; upstream: number }>; eventSeq: number[] };
  cumulative: Array<{ seq: number; saved: number; spent: number }>;
  examples: {
    semanticHits: Array<{ query: string; matched: string; similarity: number; verdict: string }>;
    rejected: Array<{ query: string; guards: string[]; servedFrom: Path }>;
    wrong: Array<{ query: string; matched: string | null; servedIntent: string | null; intent: string | null; verdict: string; path: Path }>;
  };
  wallMs: number;
  exitCode: number;
  /** `--workers N`: the fleet's processes, and the same day on one worker process beside it. */
  fleet?: FleetSummary;
}

/** The headline figures of one run, for the fleet-vs-one-process comparison. */
export interface RunFigures {
  workers: number;
  requests: number;
  hitRate: number;
  L1: number;
  L2: number;
  L3: number;
  upstream: number;
  wrongHits: number;
  stale: number;
  crossTenant: number;
  errors: number;
}

export interface FleetSummary extends FleetReport {
  /** This run's figures. */
  run: RunFigures;
  /** The same day on one worker process (absent with --no-compare, or when this is that run). */
  single?: RunFigures & { reportPath: string };
}

/** The headline figures of a summary. */
export function runFigures(s: Summary, workers: number): RunFigures {
  return {
    workers,
    requests: s.requests,
    hitRate: s.hitRate,
    L1: s.byPath.L1.count,
    L2: s.byPath.L2.count,
    L3: s.byPath.L3.count,
    upstream: s.byPath.upstream.count,
    wrongHits: s.checks.wrongHits,
    stale: s.checks.stale,
    crossTenant: s.checks.crossTenant,
    errors: s.errors,
  };
}

export interface SummaryInput {
  provider: Summary['provider'];
  workload: Summary['workload'];
  components: string[];
  missing: string[];
  run: RunResult;
  stats: StatsSnapshot;
  calibration?: CalibrationFigures | undefined;
  monthly: Summary['usd']['monthly'];
  providerCalls: number | null;
}

export function quantile(xs: readonly number[], q: number): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

export function summarize(input: SummaryInput): Summary {
  const { run } = input;
  // The day's order (the workload's), not completion order: slow upstream calls would bunch at the end.
  const recs = [...run.records].sort((a, b) => a.index - b.index);
  const ok = recs.filter((r) => !r.error);
  const n = recs.length;
  const byPath = {} as Record<Path, PathFigures>;
  for (const p of PATHS) {
    const rs = ok.filter((r) => r.path === p);
    const lat = rs.map((r) => r.latencyMs);
    byPath[p] = { count: rs.length, share: n ? rs.length / n : 0, p50Ms: quantile(lat, 0.5), p95Ms: quantile(lat, 0.95) };
  }
  const hits = ok.filter((r) => r.path !== 'upstream').length;
  const misses = n - hits;
  const byKind: Summary['byKind'] = {};
  for (const r of ok) {
    const k = (byKind[r.kind] ??= { count: 0, hits: 0, L1: 0, L2: 0, L3: 0, upstream: 0 });
    k.count++;
    k[r.path]++;
    if (r.path !== 'upstream') k.hits++;
  }
  const isHit = (r: RequestRecord) => r.path !== 'upstream';
  const rejectionsByGuard: Record<string, number> = {};
  let guardRejections = 0;
  for (const r of ok) {
    for (const g of r.rejectedBy ?? []) {
      rejectionsByGuard[g] = (rejectionsByGuard[g] ?? 0) + 1;
      guardRejections++;
    }
  }
  const lookalikes = ok.filter((r) => r.kind === 'lookalike');
  const checks: Summary['checks'] = {
    checked: ok.filter((r) => r.verdict !== 'unchecked').length,
    unchecked: ok.filter((r) => r.verdict === 'unchecked').length,
    wrongHits: ok.filter((r) => r.verdict === 'wrong-hit' && isHit(r)).length,
    wrongHitsByPath: countBy(
      ok.filter((r) => r.verdict === 'wrong-hit' && isHit(r)),
      (r) => r.path,
    ),
    wrongPairs: wrongPairs(ok.filter((r) => r.verdict === 'wrong-hit' && isHit(r))),
    stale: ok.filter((r) => r.verdict === 'stale').length,
    crossTenant: ok.filter((r) => r.verdict === 'cross-tenant').length,
    labelMismatches: ok.filter((r) => r.verdict === 'wrong-hit' && !isHit(r)).length,
    guardRejections,
    rejectionsByGuard,
    lookalikes: lookalikes.length,
    lookalikesServedRight: lookalikes.filter((r) => r.verdict === 'ok').length,
  };

  const events = run.events;
  const after = { pricingRequests: 0, fromUpstream: 0, fromCache: 0, current: 0, stale: 0 };
  let purgedTotal = 0;
  for (const e of events) {
    purgedTotal += Object.values(e.purged).reduce((a, b) => a + b, 0);
    for (const r of ok) {
      if (r.tenant !== e.tenant || r.startMs < e.startMs + e.durationMs) continue;
      if (!r.intent || intentById(r.intent)?.pricing !== true) continue;
      after.pricingRequests++;
      if (isHit(r)) after.fromCache++;
      else after.fromUpstream++;
      if (r.verdict === 'stale') after.stale++;
      else if (r.origin && r.origin.generation >= e.generation) after.current++;
    }
  }

  const bucketCount = Math.min(40, Math.max(1, n));
  const size = Math.ceil(n / bucketCount);
  const buckets: Summary['timeline']['buckets'] = [];
  for (let i = 0; i < n; i += size) {
    const b = { upTo: Math.min(n, i + size), L1: 0, L2: 0, L3: 0, upstream: 0 };
    for (const r of recs.slice(i, i + size)) b[r.path]++;
    buckets.push(b);
  }
  const cumulative: Summary['cumulative'] = [];
  let saved = 0;
  let spent = 0;
  const step = Math.max(1, Math.floor(n / 200));
  recs.forEach((r, i) => {
    if (isHit(r)) saved += r.usd;
    else spent += r.usd;
    if (i % step === 0 || i === n - 1) cumulative.push({ seq: i + 1, saved, spent });
  });

  const semanticHits = ok
    .filter((r) => r.path === 'L3' && r.matchedText)
    .slice(0, 12)
    .map((r) => ({ query: r.text, matched: r.matchedText!, similarity: r.similarity ?? 0, verdict: r.verdict }));
  const rejected = ok
    .filter((r) => r.rejectedBy?.length)
    .slice(0, 12)
    .map((r) => ({ query: r.text, guards: [...new Set(r.rejectedBy)], servedFrom: r.path }));
  const wrong = ok
    .filter((r) => r.verdict !== 'ok' && r.verdict !== 'unchecked')
    .slice(0, 10)
    .map((r) => ({
      query: r.text,
      matched: r.matchedText ?? null,
      servedIntent: r.origin?.intent ?? null,
      intent: r.intent ?? null,
      verdict: r.verdict,
      path: r.path,
    }));

  const s = input.stats;
  const exitCode = checks.stale > 0 || checks.crossTenant > 0 ? 1 : 0;
  return {
    ...(input.calibration ? { calibration: input.calibration } : {}),
    generatedAt: new Date().toISOString(),
    provider: input.provider,
    workload: input.workload,
    components: input.components,
    missing: input.missing,
    requests: n,
    hits,
    misses,
    hitRate: n ? hits / n : 0,
    errors: run.errors,
    cacheStats: s,
    byPath,
    byKind,
    checks,
    upstream: {
      calls: ok.filter((r) => r.upstreamCall).length,
      loaderCalls: s.loaderCalls,
      avoided: n - ok.filter((r) => r.upstreamCall).length,
      coalesced: s.coalesced,
      joinedSimilar: { ...s.joinedSimilar },
      tokensAvoided: { input: s.tokensSaved.input, output: s.tokensSaved.output },
      providerCalls: input.providerCalls,
    },
    usd: { upstream: s.upstreamUsd, saved: s.usdSaved, monthly: input.monthly },
    providerPromptCache: { cachedTokens: s.providerCachedTokens, usdSaved: s.providerCacheUsdSaved },
    invalidation: { events, after, purgedTotal },
    timeline: { buckets, eventSeq: events.map((e) => e.atRequest) },
    cumulative,
    examples: { semanticHits, rejected, wrong },
    wallMs: run.wallMs,
    exitCode,
  };
}

function countBy<T>(xs: readonly T[], key: (x: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) out[key(x)] = (out[key(x)] ?? 0) + 1;
  return out;
}

function wrongPairs(rs: readonly RequestRecord[]): Summary['checks']['wrongPairs'] {
  const m = new Map<string, { asked: string; served: string; count: number; example: string }>();
  for (const r of rs) {
    const asked = r.intent ?? '?';
    const served = r.origin?.intent ?? '?';
    const k = asked + '\n' + served;
    const e = m.get(k) ?? { asked, served, count: 0, example: r.text };
    e.count++;
    m.set(k, e);
  }
  return [...m.values()].sort((a, b) => b.count - a.count).slice(0, 8);
}

export const KIND_ORDER: readonly RequestKind[] = ['first', 'repeat', 'paraphrase', 'reworded', 'lookalike', 'follow-up', 'long-tail', 'replayed'];
export const KIND_LABEL: Record<RequestKind, string> = {
  first: 'first time asked',
  repeat: 'exact repeat',
  paraphrase: 'paraphrase',
  reworded: 'small-talk rewording',
  lookalike: 'look-alike (must not merge)',
  'follow-up': 'follow-up turn',
  'long-tail': 'one-off long tail',
  replayed: 'replayed',
};
