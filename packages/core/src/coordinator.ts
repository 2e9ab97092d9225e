import type { CacheEntry } from './entry.js';
import type { CacheKey } from './fingerprint.js';

/**
 * What a {@link LoadCoordinator} decides for one miss.
 * - `load`: this process calls the loader (it holds the cross-process lock, or coordination is
 *   not possible right now). Core calls `done()` once the result has been written to the
 *   layers (or the load failed / was not stored), so waiting processes can proceed.
 * - `hit`: another process loaded the value while this one waited; `layer` names the layer it
 *   was read from (core backfills the layers above it).
 */
export type LoadTicket =
  | { readonly kind: 'load'; done(result: { stored: boolean }): Promise<void> | void }
  | { readonly kind: 'hit'; readonly entry: CacheEntry; readonly layer: string };

/**
 * Cross-process coalescing (e.g. a Redis lock): consulted once per process-level miss, after
 * in-process coalescing, when the result is going to be stored. Must never fail a request:
 * core treats a rejection as `load` (and emits an `error` event).
 */
export interface LoadCoordinator {
  begin(key: CacheKey): Promise<LoadTicket>;
}
