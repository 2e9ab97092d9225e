import { randomBytes } from 'node:crypto';
import { type CacheEntry, type CacheKey, type Scope, entryStamp, isCacheEntry, isExpired, scopeId } from '@strata-cache/core/layer-kit';
import type { Rec, RecordStore } from './records.js';
import {
  type FeedRecord,
  type FeedSubscription,
  PURGE_MEMORY_MS,
  type PurgeMark,
  type SemanticMutation,
  type SemanticReplicationOptions,
  mutationScope,
  purgeMatcher,
} from './replication.js';

const PKG = '@strata-cache/layer-semantic';
/** Applied mutations whose lag is kept for `stats().replication.lagMs`. */
const LAG_WINDOW = 1_024;
/** A replicated vector must be unit length within this (the index compares by dot product). */
const NORM_TOLERANCE = 1e-2;

/** What the replicator needs from its layer. */
export interface ReplicaHost {
  readonly embedder: { readonly id: string; readonly dimensions: number };
  /** The text of an entry that goes into the similarity index here (undefined: exact only). */
  indexable(entry: CacheEntry): string | undefined;
  /** Stores a replicated entry, indexing `vector` when given (no embedding). */
  put(key: CacheKey, entry: CacheEntry, vector: Float32Array | undefined): void;
  /** Indexes an already stored record with a replicated vector. */
  index(rec: Rec, vector: Float32Array): void;
  /**
   * Re-imports every entry of the `rebuildFrom` layer (newer ones replace ours) and resolves the
   * ids it saw, or undefined without a `rebuildFrom` layer. Rejects when the source failed.
   */
  reimport(): Promise<ReadonlySet<string> | undefined>;
  warn(message: string): void;
}

/** Counters of `SemanticLayer.stats().replication`. */
export interface ReplicationStats {
  /** Mutations from other processes that changed this index. */
  applied: number;
  /** Mutations that changed nothing here (own ones coming back, replays, other scopes, older than what is held). */
  skipped: number;
  /** Malformed mutations (bad key, entry or vector) that were refused. */
  rejected: number;
  /** Re-synchronisations from `rebuildFrom` after the feed lost this layer's place. */
  resyncs: number;
  /** Entries dropped by re-synchronisations because `rebuildFrom` no longer held them. */
  resyncDropped: number;
  /** Offset of the last mutation applied (what a snapshot records). */
  offset: string | undefined;
  /**
   * Time from a mutation's publication in its process to its application here, over the last
   * 1,024 applied (ms; clocks of different machines add their skew). Undefined before any.
   */
  lagMs: { p50: number; p99: number; max: number } | undefined;
}

/**
 * Connects a semantic layer to a replication feed: publishes the layer's mutations under its own
 * origin id, applies other origins' mutations (last writer wins by time; purges remembered for a
 * while so a put that happened before a purge but arrives after it stays out), and keeps the
 * offset of the last applied mutation for the snapshot.
 *
 * Everything that enters from elsewhere — a feed's put, a page of `rebuildFrom` — passes
 * {@link Replicator.admit}: a key bound to its scope, a well-formed entry, not expired, not
 * covered by a purge applied here. (Local writes come through core, which has made its own race
 * check; the vector of a replicated put must be one this layer's embedder could have made.)
 */
export class Replicator {
  readonly origin = randomBytes(8).toString('hex');
  offset: string | undefined;
  private subscription: FeedSubscription | undefined;
  private applying = false;
  /** Purges (tag, versions, scope) remembered, oldest first. */
  private marks: PurgeMark[] = [];
  /**
   * Deletes remembered per key (key id → time, oldest first): one per delete, expiry or eviction,
   * which at full capacity is one per write — a map, so checking a put costs the same at any rate.
   */
  private readonly keyMarks = new Map<string, number>();
  private readonly counters = { applied: 0, skipped: 0, rejected: 0, resyncs: 0, resyncDropped: 0 };
  private readonly lags = new Float64Array(LAG_WINDOW);
  private lagCount = 0;

  constructor(
    private readonly options: SemanticReplicationOptions,
    private readonly store: RecordStore,
    private readonly host: ReplicaHost,
  ) {}

  stats(): ReplicationStats {
    const n = Math.min(this.lagCount, LAG_WINDOW);
    let lagMs: ReplicationStats['lagMs'];
    if (n > 0) {
      const xs = Array.from(this.lags.subarray(0, n)).sort((a, b) => a - b);
      const q = (p: number) => xs[Math.min(n - 1, Math.ceil(p * n) - 1)]!;
      lagMs = { p50: q(0.5), p99: q(0.99), max: xs[n - 1]! };
    }
    return { ...this.counters, offset: this.offset, lagMs };
  }

  /** True when this process replicates the scope (the partition filter). */
  accepts(scope: Pick<Scope, 'tenant' | 'namespace'>): boolean {
    return !this.options.accept || this.options.accept(scope) === true;
  }

  /**
   * Publishes a local mutation (not those made while applying the feed's). A local delete or
   * purge is remembered like an applied one: an entry it removed that comes back from elsewhere
   * (a re-import from an L2 restored from an older snapshot, a late record) stays out.
   */
  publish(m: SemanticMutation): void {
    if (this.applying) return;
    this.remember(m);
    try {
      this.options.feed.publish(this.origin, m);
    } catch (e) {
      this.host.warn(`${PKG}: the replication feed refused a mutation (${(e as Error)?.message ?? String(e)}); other processes will miss it`);
    }
  }

  /** Subscribes from `from` (the snapshot's offset) or, without one, from the feed's end. */
  async start(from: string | undefined): Promise<void> {
    this.offset = from;
    this.subscription = await this.options.feed.subscribe(from, {
      apply: (records) => this.applyAll(records),
      gap: async (resumeFrom) => {
        await this.resync();
        this.offset = resumeFrom;
      },
    });
  }

  /** Leaves the feed, then lets it send what this layer published last (within `timeoutMs`). */
  async stop(timeoutMs: number): Promise<void> {
    const s = this.subscription;
    this.subscription = undefined;
    await s?.close();
    await this.options.feed.flush?.(timeoutMs);
  }

  /**
   * The checks an entry that did not come through this process's core passes before it is
   * stored: its key is bound to its scope (the id is built from the scope, so an entry cannot be
   * filed under another tenant's key), it is a well-formed entry, it has not expired, and no
   * delete or purge applied here covers it.
   */
  admit(key: CacheKey, entry: CacheEntry, now = Date.now()): boolean {
    return wellFormedKey(key) && isCacheEntry(entry) && !isExpired(entry, now) && !this.purged(key, entry);
  }

  /** True when a mutation already applied here removed what `entry` (written before it) would bring back. */
  purged(key: CacheKey, entry: CacheEntry): boolean {
    const deleted = this.keyMarks.get(key.id);
    // An answer whose load began before a delete or purge is covered by it (core stamps entries
    // with when their load began; an entry without a stamp counts from its creation).
    const stamp = entryStamp(entry);
    if (deleted !== undefined && stamp <= deleted) return true;
    for (const m of this.marks) if (stamp <= m.at && m.matches(key, entry)) return true;
    return false;
  }

  /**
   * The feed lost this layer's place: mutations were missed, deletes and purges among them. The
   * index is re-derived from `rebuildFrom` — what it holds is imported (newer versions replace
   * ours), and what we hold from before the re-synchronisation that it no longer holds is
   * dropped (it was deleted, purged, expired or evicted there meanwhile; a Redis that came back
   * empty therefore empties the index). Without `rebuildFrom` nothing can be verified: every
   * entry from before is dropped. Rejects (dropping nothing) when `rebuildFrom` failed; the feed
   * retries.
   */
  async resync(): Promise<void> {
    const since = Date.now();
    this.counters.resyncs++;
    const seen = await this.host.reimport();
    if (!seen) {
      this.host.warn(
        `${PKG}: the replication feed lost this layer's place and option "rebuildFrom" is not set: entries held from before are dropped (they may have been purged meanwhile)`,
      );
    }
    for (const r of [...this.store.records.values()]) {
      if (r.entry.createdAt < since && !seen?.has(r.id) && this.store.remove(r, 'purge')) this.counters.resyncDropped++;
    }
  }

  private applyAll(records: readonly FeedRecord[]): void {
    this.applying = true;
    try {
      for (const r of records) {
        this.offset = r.offset;
        if (r.origin === this.origin) {
          this.counters.skipped++;
          continue;
        }
        try {
          const m = r.mutation;
          if (!wellFormedMutation(m)) {
            const type = (m as { type?: unknown } | undefined)?.type;
            this.reject(`a malformed replicated ${typeof type === 'string' ? type.slice(0, 20) : 'mutation'}`);
            continue;
          }
          if (this.apply(m)) {
            this.counters.applied++;
            this.lags[this.lagCount++ % LAG_WINDOW] = Math.max(0, Date.now() - m.at);
          } else this.counters.skipped++;
        } catch (e) {
          this.reject(
            `could not apply a replicated ${String((r.mutation as { type?: unknown } | undefined)?.type).slice(0, 20)} (${(e as Error)?.message ?? String(e)})`,
          );
        }
      }
    } finally {
      this.applying = false;
    }
  }

  private reject(what: string): void {
    // The first one and then every thousandth: a feed full of garbage must not flood the log.
    if (this.counters.rejected++ % 1_000 === 0) this.host.warn(`${PKG}: refused ${what} (${this.counters.rejected} refused so far)`);
  }

  /** Applies one mutation; false when it changes nothing here. Idempotent. */
  private apply(m: SemanticMutation): boolean {
    const scope = mutationScope(m);
    if (scope && !this.accepts(scope)) return false;
    if (m.type === 'put') {
      this.forgetOldMarks(m.at);
      return this.applyPut(m);
    }
    this.remember(m);
    if (m.type === 'delete') {
      const r = this.store.get(m.key.id);
      if (!r) return false;
      // An expiry or an eviction removes the version it saw; a delete, whatever was written before it.
      const covered = m.reason !== 'delete' && m.createdAt !== undefined ? r.entry.createdAt === m.createdAt : entryStamp(r.entry) <= m.at;
      return covered && this.store.remove(r, m.reason);
    }
    const matches = purgeMatcher(m)!;
    let n = 0;
    const recs = m.type === 'purge-tag' ? this.store.withTag(m.tag) : m.scope ? this.store.inScope(m.scope) : [...this.store.records.values()];
    for (const r of recs) if (entryStamp(r.entry) <= m.at && matches(r.key, r.entry) && this.store.remove(r, 'purge')) n++;
    return n > 0;
  }

  private applyPut(m: Extract<SemanticMutation, { type: 'put' }>): boolean {
    if (!this.admit(m.key, m.entry)) return false;
    const vector = this.usableVector(m);
    const have = this.store.get(m.key.id);
    if (have) {
      if (have.entry.createdAt > m.entry.createdAt) return false; // a newer write is here already
      if (have.entry.createdAt === m.entry.createdAt && sameEntry(have.entry, m.entry)) {
        // The same write again (a replay): at most fill in a vector it lacked.
        if (!have.part && vector) {
          this.host.index(have, vector);
          return true;
        }
        return false;
      }
    }
    this.host.put(m.key, m.entry, vector);
    return true;
  }

  /** The put's vector when this layer can index it: same embedder, right size, finite, unit length. */
  private usableVector(m: Extract<SemanticMutation, { type: 'put' }>): Float32Array | undefined {
    const e = this.host.embedder;
    const v = m.vector;
    if (!v || m.embedder.id !== e.id || m.embedder.dimensions !== e.dimensions || v.length !== e.dimensions) return undefined;
    if (this.host.indexable(m.entry) === undefined) return undefined;
    let norm = 0;
    for (let i = 0; i < v.length; i++) norm += v[i]! * v[i]!;
    if (!(Math.abs(norm - 1) <= NORM_TOLERANCE)) {
      this.reject('a replicated vector that is not unit length (kept for exact lookups only)');
      return undefined;
    }
    return v;
  }

  /** Keeps a delete or purge (as a predicate) for PURGE_MEMORY_MS against entries written before it. */
  private remember(m: SemanticMutation): void {
    if (m.type === 'put') return;
    this.forgetOldMarks(m.at);
    if (m.type === 'delete') {
      const had = this.keyMarks.get(m.key.id);
      if (had !== undefined) this.keyMarks.delete(m.key.id); // re-inserted: the map stays oldest first
      this.keyMarks.set(m.key.id, Math.max(m.at, had ?? m.at));
    } else this.marks.push({ at: m.at, matches: purgeMatcher(m)! });
  }

  private forgetOldMarks(now: number): void {
    const horizon = now - PURGE_MEMORY_MS;
    for (const [id, at] of this.keyMarks) {
      if (at >= horizon) break;
      this.keyMarks.delete(id);
    }
    if (this.marks.length === 0 || this.marks[0]!.at >= horizon) return;
    this.marks = this.marks.filter((k) => k.at >= horizon);
  }
}

/** A key whose id is the one core builds from its scope and hash (so it cannot point at another tenant). */
function wellFormedKey(key: CacheKey): boolean {
  if (typeof key !== 'object' || key === null || typeof key.hash !== 'string' || typeof key.id !== 'string') return false;
  const s = key.scope as Scope | undefined;
  if (typeof s !== 'object' || s === null || typeof s.tenant !== 'string' || typeof s.namespace !== 'string' || !Number.isSafeInteger(s.version)) return false;
  const sid = scopeId(s);
  return key.scopeId === sid && key.id === `v${key.schema}:${sid}:${key.hash}` && /^[A-Za-z0-9_-]+$/.test(key.hash);
}

function wellFormedScope(s: unknown, version: boolean): boolean {
  if (typeof s !== 'object' || s === null) return false;
  const x = s as Partial<Scope>;
  return typeof x.tenant === 'string' && typeof x.namespace === 'string' && (!version || Number.isSafeInteger(x.version));
}

/** The shape a mutation must have to be applied at all (the transport may carry anything). */
function wellFormedMutation(m: SemanticMutation | undefined): m is SemanticMutation {
  if (typeof m !== 'object' || m === null || typeof m.at !== 'number' || !Number.isFinite(m.at)) return false;
  switch (m.type) {
    case 'put':
      return (
        wellFormedKey(m.key) &&
        isCacheEntry(m.entry) &&
        typeof m.embedder === 'object' &&
        m.embedder !== null &&
        typeof m.embedder.id === 'string' &&
        typeof m.embedder.dimensions === 'number' &&
        (m.vector === undefined || m.vector instanceof Float32Array)
      );
    case 'delete':
      return (
        wellFormedKey(m.key) &&
        (m.reason === 'delete' || m.reason === 'expired' || m.reason === 'evicted') &&
        (m.createdAt === undefined || typeof m.createdAt === 'number')
      );
    case 'purge-tag':
      return typeof m.tag === 'string' && (m.scope === undefined || wellFormedScope(m.scope, false));
    case 'purge-versions':
      return wellFormedScope(m.scope, true);
    case 'clear':
      return m.scope === undefined || wellFormedScope(m.scope, false);
    default:
      return false;
  }
}

/** Two entries with the same content (a replayed write), as their JSON says. */
function sameEntry(a: CacheEntry, b: CacheEntry): boolean {
  try {
    return JSON.stringify(a.value) === JSON.stringify(b.value) && JSON.stringify(a.tags) === JSON.stringify(b.tags) && a.ttlMs === b.ttlMs;
  } catch {
    return false;
  }
}
