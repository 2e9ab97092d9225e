import type { InvalidationMessage } from './bus.js';
import type { CacheKey } from './fingerprint.js';

/** Invalidation records kept beyond what in-flight loads need (for late `store(…, { sinceEpoch })` calls). */
const KEEP = 1024;
/** The smallest step the bus clock takes (1 µs: well above a double's resolution at epoch-ms magnitudes). */
export const STAMP_STEP = 0.001;

interface InvalidationRecord {
  readonly epoch: number;
  readonly message: InvalidationMessage;
  /** Its watermark (bus clock). */
  readonly at: number;
}

/**
 * Does an invalidation message cover this entry (its key, one of its current tags, its scope or
 * an older version of it)? The one statement of that rule: core's race checks use it, and so can
 * anything else that reasons about invalidations (it is in the implementer API).
 */
export function invalidationCovers(m: InvalidationMessage, key: CacheKey, entry: { readonly tags: readonly string[] }): boolean {
  switch (m.type) {
    case 'key':
      return m.keyId === key.id;
    case 'tag':
      return entry.tags.includes(m.tag) && (!m.scope || (m.scope.tenant === key.scope.tenant && m.scope.namespace === key.scope.namespace));
    case 'scope-version':
      return m.scope.tenant === key.scope.tenant && m.scope.namespace === key.scope.namespace && key.scope.version < m.scope.version;
    case 'clear':
      return !m.scope || (m.scope.tenant === key.scope.tenant && m.scope.namespace === key.scope.namespace);
  }
}

/**
 * The exact, in-process half of race protection (the watermarks in watermarks.ts are the other:
 * they compare times, across processes and restarts): every invalidation this process performs or
 * receives advances the epoch and is logged. A load (or a read) records the epoch it began in;
 * before its answer is stored, served or backfilled, `invalidatedSince` tells whether an
 * invalidation since then covered it — then the answer is returned to the caller who asked
 * before, but never kept. Epochs also keep a request that arrives after an invalidation from
 * joining a load that began before it.
 *
 * The log is bounded: it keeps what loads still in flight need plus the newest KEEP records.
 * When a record an operation needs was pruned, the operation cannot be shown safe and is treated
 * as invalidated (a miss, never a stale answer).
 */
export class InvalidationLog {
  /** @param started a stamp taken when the log was created (epoch 0 began then). */
  constructor(private readonly started: number) {}

  private current = 0;
  private records: InvalidationRecord[] = [];
  /** Epoch of the newest pruned record (0: nothing pruned yet). */
  private floor = 0;
  /** Loads in flight per starting epoch. */
  private readonly active = new Map<number, number>();

  get epoch(): number {
    return this.current;
  }

  record(message: InvalidationMessage, at: number): void {
    this.current++;
    // Logged even with no load in flight: `store(…, { sinceEpoch })` callers load outside core.
    this.records.push({ epoch: this.current, message, at });
    if (this.records.length > 2 * KEEP) this.prune();
  }

  /** A load begins: its epoch is kept in the log until `endLoad`. */
  beginLoad(): number {
    const e = this.current;
    this.active.set(e, (this.active.get(e) ?? 0) + 1);
    return e;
  }

  endLoad(epoch: number): void {
    const n = (this.active.get(epoch) ?? 1) - 1;
    if (n <= 0) this.active.delete(epoch);
    else this.active.set(epoch, n);
    if (this.records.length > KEEP) this.prune();
  }

  /** Did an invalidation after `since` cover this key, its tags or its scope? */
  invalidatedSince(since: number, key: CacheKey, entry: { readonly tags: readonly string[] }): boolean {
    if (this.current === since) return false;
    if (since < this.floor) return true;
    for (const r of this.records) {
      if (r.epoch > since && invalidationCovers(r.message, key, entry)) return true;
    }
    return false;
  }

  /**
   * A stamp for an answer whose load began in `epoch` (read from `currentEpoch` before it began):
   * just after the watermark that opened the epoch — the load began after this process knew of
   * it — or undefined when that record was pruned (the write is then refused anyway).
   */
  stampOf(epoch: number): number | undefined {
    if (epoch === 0) return this.started;
    for (let i = this.records.length - 1; i >= 0; i--) {
      const r = this.records[i]!;
      if (r.epoch === epoch) return r.at + STAMP_STEP;
      if (r.epoch < epoch) break;
    }
    return undefined;
  }

  /** Number of records held (for tests of the bound). */
  get size(): number {
    return this.records.length;
  }

  private prune(): void {
    const log = this.records;
    if (log.length <= KEEP) return;
    let oldestActive = Number.POSITIVE_INFINITY;
    for (const e of this.active.keys()) if (e < oldestActive) oldestActive = e;
    let cut = log.length - KEEP;
    while (cut > 0 && log[cut - 1]!.epoch > oldestActive) cut--;
    if (cut === 0) return;
    this.floor = log[cut - 1]!.epoch;
    this.records = log.slice(cut);
  }
}
