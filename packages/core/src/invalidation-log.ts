import type { InvalidationMessage } from './bus.js';
import type { CacheEntry } from './entry.js';
import type { CacheKey } from './fingerprint.js';

/** Invalidation records kept beyond what in-flight loads need (for late `store(…, { sinceEpoch })` calls). */
const KEEP = 1024;

interface InvalidationRecord {
  readonly epoch: number;
  readonly message: InvalidationMessage;
}

/**
 * Does an invalidation message cover this entry (its key, one of its current tags, its scope or
 * an older version of it)? The one statement of that rule: core's race checks use it, and so can
 * anything else that reasons about invalidations (it is in the implementer API).
 */
export function invalidationCovers(m: InvalidationMessage, key: CacheKey, entry: Pick<CacheEntry, 'tags'>): boolean {
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
 * Race protection, in one place: every invalidation this process performs or receives advances
 * the epoch and is logged. A load (or a read) records the epoch it began in; before its answer is
 * stored, served or backfilled, `invalidatedSince` tells whether an invalidation since then
 * covered it — then the answer is returned to the caller who asked before, but never kept.
 *
 * The log is bounded: it keeps what loads still in flight need plus the newest KEEP records.
 * When a record an operation needs was pruned, the operation cannot be shown safe and is treated
 * as invalidated (a miss, never a stale answer).
 */
export class InvalidationLog {
  private current = 0;
  private records: InvalidationRecord[] = [];
  /** Epoch of the newest pruned record (0: nothing pruned yet). */
  private floor = 0;
  /** Loads in flight per starting epoch. */
  private readonly active = new Map<number, number>();

  get epoch(): number {
    return this.current;
  }

  record(message: InvalidationMessage): void {
    this.current++;
    // Logged even with no load in flight: `store(…, { sinceEpoch })` callers load outside core.
    this.records.push({ epoch: this.current, message });
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
  invalidatedSince(since: number, key: CacheKey, entry: Pick<CacheEntry, 'tags'>): boolean {
    if (this.current === since) return false;
    if (since < this.floor) return true;
    for (const r of this.records) {
      if (r.epoch > since && invalidationCovers(r.message, key, entry)) return true;
    }
    return false;
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
