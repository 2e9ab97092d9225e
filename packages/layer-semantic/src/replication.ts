import type { CacheEntry, CacheKey, Scope } from '@strata-cache/core';

/**
 * One change of a semantic layer's state, as published to a replication feed and applied from
 * it. Every mutation carries `at`, the epoch ms at which it happened in its process: applying is
 * last-writer-wins by time, so feeds that deliver different keys' mutations in different orders
 * (one stream per shard) still converge.
 */
export type SemanticMutation =
  | {
      readonly type: 'put';
      readonly at: number;
      readonly key: CacheKey;
      readonly entry: CacheEntry;
      /** The entry's vector (absent for an entry stored for exact lookups only). Followers never re-embed. */
      readonly vector?: Float32Array;
      /** The embedder that made `vector`: a follower with another embedder keeps the entry for exact lookups only. */
      readonly embedder: { readonly id: string; readonly dimensions: number };
    }
  | {
      readonly type: 'delete';
      readonly at: number;
      readonly key: CacheKey;
      readonly reason: 'delete' | 'expired' | 'evicted';
      /**
       * `createdAt` of the entry that was removed. An expiry or eviction removes that version only
       * (a follower holding a newer write of the key keeps it); a delete (an invalidation) removes
       * whatever the follower holds.
       */
      readonly createdAt?: number;
    }
  | { readonly type: 'purge-tag'; readonly at: number; readonly tag: string; readonly scope?: Pick<Scope, 'tenant' | 'namespace'> }
  | { readonly type: 'purge-versions'; readonly at: number; readonly scope: Scope }
  | { readonly type: 'clear'; readonly at: number; readonly scope?: Pick<Scope, 'tenant' | 'namespace'> };

/** A mutation as a feed delivers it. */
export interface FeedRecord {
  /**
   * Opaque, increasing position in the feed; the layer snapshots the last one it applied.
   * Records delivered in one `apply` call may share one offset: the position after the whole
   * batch (the layer applies a batch in one synchronous step, so no snapshot falls inside it).
   */
  readonly offset: string;
  /** The publishing layer instance (`SemanticLayer.replicaId`): a layer skips its own mutations. */
  readonly origin: string;
  readonly mutation: SemanticMutation;
}

/**
 * The seam between a semantic layer and a replication transport (e.g. Redis Streams, in the Redis
 * layer's package). The layer publishes every mutation it makes and applies, idempotently and
 * without re-embedding, the mutations other processes published.
 */
export interface SemanticFeed {
  /**
   * Appends one of this layer's mutations, in the order they happened. Called synchronously and
   * must not throw: a feed that cannot publish now buffers, retries and reports on its own.
   */
  publish(origin: string, mutation: SemanticMutation): void;
  /**
   * Delivers the mutations recorded after `from` (exclusive; undefined: from the feed's current
   * end) to `sink`, in order, batch after batch: the next batch only after `sink.apply` returned.
   * Resolves once the subscription is live.
   */
  subscribe(from: string | undefined, sink: FeedSink): Promise<FeedSubscription>;
  /**
   * Sends what `publish` buffered, within `timeoutMs`. The layer calls it on `close()` so its last
   * mutations (final deletes, purges) reach the other processes. Optional: a feed that sends
   * synchronously has nothing to flush.
   */
  flush?(timeoutMs: number): Promise<void>;
}

export interface FeedSink {
  /** Applies delivered mutations (their own included: they are skipped but advance the offset). */
  apply(records: readonly FeedRecord[]): void;
  /**
   * The feed cannot deliver everything after the offset asked for (records were trimmed, the
   * transport restarted empty or from an older snapshot, or its position was never known): the
   * layer re-derives its index from its `rebuildFrom` layer — imports what it lacks, drops what
   * that layer no longer holds — and the feed continues after `resumeFrom`, delivering nothing
   * before `gap()` resolved.
   */
  gap(resumeFrom: string | undefined): Promise<void>;
}

export interface FeedSubscription {
  close(): Promise<void> | void;
}

/** Options of `SemanticLayerOptions.replication`. */
export interface SemanticReplicationOptions {
  readonly feed: SemanticFeed;
  /**
   * Which scopes this process replicates (e.g. only the tenants it serves): mutations of other
   * scopes are not applied, so a large fleet can shard its semantic memory. Local writes are
   * always published. @default every scope
   */
  readonly accept?: ((scope: Pick<Scope, 'tenant' | 'namespace'>) => boolean) | undefined;
}

/** A purge remembered for a while, so a put that happened before it but arrives after it is dropped. */
export interface PurgeMark {
  readonly at: number;
  readonly matches: (key: CacheKey, entry: CacheEntry) => boolean;
}

/** How long applied purges are remembered against late puts (the feed's lag must stay below it). */
export const PURGE_MEMORY_MS = 60_000;

/** The purge a mutation describes, as a predicate over stored entries; undefined for put/delete. */
export function purgeMatcher(m: SemanticMutation): ((key: CacheKey, entry: CacheEntry) => boolean) | undefined {
  switch (m.type) {
    case 'purge-tag': {
      const scope = m.scope;
      return (key, entry) => entry.tags.includes(m.tag) && (!scope || sameBase(key.scope, scope));
    }
    case 'purge-versions':
      return (key) => sameBase(key.scope, m.scope) && key.scope.version < m.scope.version;
    case 'clear': {
      const scope = m.scope;
      return (key) => !scope || sameBase(key.scope, scope);
    }
    default:
      return undefined;
  }
}

/** The scope a mutation belongs to (undefined: all scopes). */
export function mutationScope(m: SemanticMutation): Pick<Scope, 'tenant' | 'namespace'> | undefined {
  return m.type === 'put' || m.type === 'delete' ? m.key.scope : m.scope;
}

function sameBase(a: Pick<Scope, 'tenant' | 'namespace'>, b: Pick<Scope, 'tenant' | 'namespace'>): boolean {
  return a.tenant === b.tenant && a.namespace === b.namespace;
}

/**
 * A feed inside one process, for tests and for several layers in one process: every published
 * mutation is appended to an in-memory log and delivered to every subscriber (its own origin
 * included, as a shared transport would). `trim(n)` drops the oldest records, as a capped stream
 * does, so the gap path can be exercised.
 */
export class MemoryFeed implements SemanticFeed {
  private log: FeedRecord[] = [];
  private first = 0;
  private next = 0;
  private readonly sinks = new Set<{ sink: FeedSink; at: number; busy: boolean }>();

  publish(origin: string, mutation: SemanticMutation): void {
    this.log.push({ offset: String(this.next++), origin, mutation });
    for (const s of this.sinks) this.pump(s);
  }

  async subscribe(from: string | undefined, sink: FeedSink): Promise<FeedSubscription> {
    const s = { sink, at: from === undefined ? this.next : Number(from) + 1, busy: false };
    if (s.at < this.first) {
      s.at = this.next;
      await sink.gap(this.next === 0 ? undefined : String(this.next - 1));
    }
    this.sinks.add(s);
    this.pump(s);
    return { close: () => void this.sinks.delete(s) };
  }

  /** Drops every record before offset `keepFrom`. */
  trim(keepFrom: number): void {
    if (keepFrom <= this.first) return;
    this.log = this.log.slice(Math.min(keepFrom, this.next) - this.first);
    this.first = Math.min(keepFrom, this.next);
  }

  /** Records published so far. */
  get length(): number {
    return this.next;
  }

  private pump(s: { sink: FeedSink; at: number; busy: boolean }): void {
    if (s.busy || !this.sinks.has(s)) return;
    s.busy = true;
    queueMicrotask(() => {
      s.busy = false;
      if (!this.sinks.has(s) || s.at >= this.next) return;
      const batch = this.log.slice(s.at - this.first);
      s.at = this.next;
      s.sink.apply(batch);
      if (s.at < this.next) this.pump(s);
    });
  }
}
