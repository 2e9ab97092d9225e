import type { EventEmitter } from 'node:events';
import type { CacheStats } from './cache-stats.js';
import type { LoadCoordinator } from './coordinator.js';
import type { CacheEntry } from './entry.js';
import { LayerError, StrataError } from './errors.js';
import type { CacheKey } from './fingerprint.js';
import type { InvalidationLog } from './invalidation-log.js';
import type { InvalidationSync } from './invalidation-sync.js';
import type { LayerRunner, ResolvedLayer } from './layer-runner.js';
import type { Call, CacheEvents, CachePlugin } from './types.js';

/** What the read, write and load paths share: one per cache, built by its constructor. */
export interface CacheContext {
  readonly layers: readonly ResolvedLayer[];
  readonly runner: LayerRunner;
  readonly invalidations: InvalidationLog;
  /** Watermarks (`sync.table`), the bus clock, and invalidation work retried until done. */
  readonly sync: InvalidationSync;
  readonly stats: CacheStats;
  readonly plugins: CachePlugin[];
  readonly events: EventEmitter<CacheEvents>;
  readonly now: () => number;
  readonly defaultTtlMs: number | undefined;
  readonly coalesce: boolean;
  /** How long a semantic miss waits for a similar load in flight (`joinSimilar`); 0: it does not. */
  readonly joinSimilarMs: number;
  readonly backfill: boolean;
  readonly backfillSemanticHits: boolean;
  readonly semanticThreshold: number | undefined;
  readonly hasSemantic: boolean;
  readonly coordinator: LoadCoordinator | undefined;
}

/** Emits an `error` event (wrapped as a StrataError) when someone listens; never throws. */
export function emitError(ctx: Pick<CacheContext, 'events'>, error: unknown, layer: string | undefined, operation: string): void {
  // An 'error' event with no listener would throw: a cache must not take the app down.
  if (ctx.events.listenerCount('error') === 0) return;
  const wrapped = StrataError.isInstance(error)
    ? error
    : new LayerError(layer ?? 'cache', operation, `${layer ?? 'cache'} ${operation} failed: ${(error as Error)?.message ?? String(error)}`, { cause: error });
  ctx.events.emit('error', { error: wrapped, ...(layer ? { layer } : {}), operation });
}

/** Asks every plugin whether a hit may be served. */
export function acceptHit(ctx: Pick<CacheContext, 'plugins'>, call: Call, key: CacheKey, entry: CacheEntry, layer: string, now: number): boolean {
  const plugins = ctx.plugins;
  for (let i = 0; i < plugins.length; i++) {
    const p = plugins[i]!;
    if (p.acceptHit && !p.acceptHit({ request: call.request, profile: call.profile, scope: call.scope, key, entry, layer, now })) return false;
  }
  return true;
}
