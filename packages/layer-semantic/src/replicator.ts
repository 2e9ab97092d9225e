import { randomBytes } from 'node:crypto';
import type { CacheEntry, CacheKey } from '@strata-cache/core';
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

/** What the replicator needs from its layer. */
export interface ReplicaHost {
  readonly embedder: { readonly id: string; readonly dimensions: number };
  /** The text of an entry that goes into the similarity index here (undefined: exact only). */
  indexable(entry: CacheEntry): string | undefined;
  /** Stores a replicated entry, indexing `vector` when given (no embedding). */
  put(key: CacheKey, entry: CacheEntry, vector: Float32Array | undefined): void;
  /** Indexes an already stored record with a replicated vector. */
  index(rec: Rec, vector: Float32Array): void;
  /** The feed lost this layer's place: re-synchronise (rebuild from L2). */
  resync(): Promise<void>;
  warn(message: string): void;
}

/**
 * Connects a semantic layer to a replication feed: publishes the layer's mutations under its own
 * origin id, applies other origins' mutations (last writer wins by time; purges remembered for a
 * while so a put that happened before a purge but arrives after it stays out), and keeps the
 * offset of the last applied mutation for the snapshot.
 */
export class Replicator {
  readonly origin = randomBytes(8).toString('hex');
  offset: string | undefined;
  private subscription: FeedSubscription | undefined;
  private applying = false;
  private marks: PurgeMark[] = [];
  private counters = { applied: 0, skipped: 0 };

  constructor(
    private readonly options: SemanticReplicationOptions,
    private readonly store: RecordStore,
    private readonly host: ReplicaHost,
  ) {}

  stats(): { applied: number; skipped: number; offset: string | undefined } {
    return { ...this.counters, offset: this.offset };
  }

  /** Publishes a local mutation (not those made while applying the feed's). */
  publish(m: SemanticMutation): void {
    if (this.applying) return;
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
        this.offset = resumeFrom;
        await this.host.resync();
      },
    });
  }

  async stop(): Promise<void> {
    const s = this.subscription;
    this.subscription = undefined;
    await s?.close();
  }

  /** True when a mutation already applied here removed what `entry` (written before it) would bring back. */
  purged(key: CacheKey, entry: CacheEntry): boolean {
    for (const m of this.marks) if (entry.createdAt <= m.at && m.matches(key, entry)) return true;
    return false;
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
          if (this.apply(r.mutation)) this.counters.applied++;
          else this.counters.skipped++;
        } catch (e) {
          this.counters.skipped++;
          this.host.warn(`${PKG}: could not apply a replicated ${r.mutation?.type} (${(e as Error)?.message ?? String(e)})`);
        }
      }
    } finally {
      this.applying = false;
    }
  }

  /** Applies one mutation; false when it changes nothing here. Idempotent. */
  private apply(m: SemanticMutation): boolean {
    const scope = mutationScope(m);
    if (scope && this.options.accept && !this.options.accept(scope)) return false;
    this.forgetOldMarks(m.at);
    if (m.type === 'put') return this.applyPut(m);
    if (m.type === 'delete') {
      this.marks.push({ at: m.at, matches: (key) => key.id === m.key.id });
      const r = this.store.get(m.key.id);
      return r !== undefined && r.entry.createdAt <= m.at && this.store.remove(r, m.reason);
    }
    const matches = purgeMatcher(m)!;
    this.marks.push({ at: m.at, matches });
    let n = 0;
    const recs = m.type === 'purge-tag' ? this.store.withTag(m.tag) : m.scope ? this.store.inScope(m.scope) : [...this.store.records.values()];
    for (const r of recs) if (r.entry.createdAt <= m.at && matches(r.key, r.entry) && this.store.remove(r, 'purge')) n++;
    return n > 0;
  }

  private applyPut(m: Extract<SemanticMutation, { type: 'put' }>): boolean {
    if (this.purged(m.key, m.entry)) return false;
    const sameEmbedder = m.embedder.id === this.host.embedder.id && m.embedder.dimensions === this.host.embedder.dimensions;
    const vector = sameEmbedder && m.vector && m.vector.length === this.host.embedder.dimensions && this.host.indexable(m.entry) !== undefined ? m.vector : undefined;
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

  private forgetOldMarks(now: number): void {
    if (this.marks.length === 0 || this.marks[0]!.at >= now - PURGE_MEMORY_MS) return;
    this.marks = this.marks.filter((k) => k.at >= now - PURGE_MEMORY_MS);
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
