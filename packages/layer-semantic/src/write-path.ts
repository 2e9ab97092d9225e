import { type CacheEntry, type CacheKey, type LayerContext, LayerError, StrataError, isExpired } from '@strata-cache/core';
import { type CachingEmbedder, isCancellation } from './caching-embedder.js';
import { EmbedderBusyError, type EmbeddingQueue } from './embedding-queue.js';
import type { Rec, RecordStore } from './records.js';
import { addTo, removeFrom } from './multimap.js';

const PKG = '@strata-cache/layer-semantic';

/** A stored entry whose vector is still being embedded. */
export interface PendingWrite {
  readonly rec: Rec;
  readonly text: string;
  /** Settles when the vector is indexed, or when the write gave up on it (never rejects). */
  readonly done: Promise<void>;
}

export interface WritePathHost {
  readonly name: string;
  /** The text an entry is matched by here (undefined: exact lookups only). */
  indexable(entry: CacheEntry): string | undefined;
  /**
   * A record written here is complete (indexed, or exact-only for good): publish it. Not called
   * for bulk imports (`rebuildFrom`): those entries came from a shared layer every process reads.
   */
  published(rec: Rec, vector: Float32Array | undefined): void;
  /** Something changed (for the snapshot's dirty flag). */
  changed(): void;
}

/**
 * How entries get in: stored for exact lookups at once (synchronously, before any await), indexed
 * at once when the embedding cache has their vector (the write after a lookup miss), otherwise
 * embedded — inside the caller's deadline when there is one. Writes still embedding are tracked
 * per partition, so a lookup of that partition can wait for them, and `close()` can too.
 */
export class WritePath {
  private readonly pending = new Map<string, Set<PendingWrite>>();
  private readonly all = new Set<Promise<void>>();
  /** Writes kept for exact lookups only because their embedding could not be had in time. */
  notIndexed = 0;

  constructor(
    private readonly store: RecordStore,
    private readonly vectors: CachingEmbedder,
    private readonly queue: EmbeddingQueue,
    private readonly host: WritePathHost,
  ) {}

  /** Writes of partition `pk` still embedding. */
  pendingIn(pk: string): ReadonlySet<PendingWrite> | undefined {
    return this.pending.get(pk);
  }

  /** Moves the embeddings of `writes` ahead, to lookup priority (a lookup waits for them). */
  expedite(writes: Iterable<PendingWrite>): void {
    for (const w of writes) this.queue.expedite(w.text);
  }

  /** Resolves when every write still embedding settled, or after `ms`. */
  settle(ms: number): Promise<void> {
    return settleWithin([...this.all], ms);
  }

  write(items: ReadonlyArray<{ key: CacheKey; entry: CacheEntry }>, ctx: LayerContext | undefined, priority: 'write' | 'bulk'): Promise<void> {
    const waiting: Array<{ rec: Rec; text: string }> = [];
    const now = Date.now();
    for (const { key, entry } of items) {
      if (isExpired(entry, now)) {
        const old = this.store.get(key.id);
        if (old) this.store.remove(old, 'replaced');
        continue;
      }
      const rec = this.store.put(key, entry);
      this.host.changed();
      const text = this.host.indexable(rec.entry);
      const vec = text === undefined ? undefined : this.vectors.peek(text);
      if (text === undefined || vec) {
        if (vec) this.index(rec, text!, vec);
        if (priority !== 'bulk') this.host.published(rec, vec);
      } else waiting.push({ rec, text });
    }
    if (waiting.length === 0) return Promise.resolve();
    const p = this.embed(waiting, ctx, priority);
    const settled = p.then(
      () => undefined,
      () => undefined,
    );
    const tracked = waiting.map((w) => ({ ...w, done: settled }));
    for (const w of tracked) addTo(this.pending, this.store.partitionPrefix + w.rec.entry.semantic!.partition, w);
    this.all.add(settled);
    void settled.then(() => {
      this.all.delete(settled);
      for (const w of tracked) removeFrom(this.pending, this.store.partitionPrefix + w.rec.entry.semantic!.partition, w);
    });
    return p;
  }

  /** Indexes a stored record; the cache slot of its text then points at the index (no second copy). */
  index(rec: Rec, text: string, vec: Float32Array): void {
    this.store.index(rec, vec);
    if (rec.part) this.vectors.alias(text, rec);
  }

  private async embed(waiting: Array<{ rec: Rec; text: string }>, ctx: LayerContext | undefined, priority: 'write' | 'bulk'): Promise<void> {
    let vecs: Float32Array[];
    try {
      vecs = await this.vectors.embed(
        waiting.map((p) => p.text),
        { priority, ...(ctx?.deadline !== undefined ? { deadline: ctx.deadline } : {}), ...(ctx?.signal ? { signal: ctx.signal } : {}) },
      );
    } catch (e) {
      const skipped = e instanceof EmbedderBusyError || isCancellation(e) || ctx?.signal?.aborted || (StrataError.isInstance(e) && e.code === 'STRATA_CLOSED');
      const current = waiting.filter((p) => this.store.isCurrent(p.rec));
      if (priority !== 'bulk') for (const p of current) this.host.published(p.rec, undefined);
      if (skipped) {
        this.notIndexed += current.length;
        return;
      }
      throw new LayerError(
        this.host.name,
        'set',
        `${PKG}: the embedder failed, so ${current.length} entr${current.length === 1 ? 'y is' : 'ies are'} stored for exact lookups only: ${(e as Error)?.message ?? String(e)}`,
        { cause: e },
      );
    }
    waiting.forEach((p, i) => {
      // A newer write, a delete or a purge of this key while it was embedding: nothing to index.
      if (!this.store.isCurrent(p.rec) || p.rec.part) return;
      this.index(p.rec, p.text, vecs[i]!);
      if (priority !== 'bulk') this.host.published(p.rec, vecs[i]);
    });
  }
}

/** Resolves when every promise settled, or after `ms`, whichever comes first. */
export function settleWithin(promises: Promise<unknown>[], ms: number): Promise<void> {
  if (promises.length === 0) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    t.unref?.();
    void Promise.allSettled(promises).then(() => {
      clearTimeout(t);
      resolve();
    });
  });
}

/**
 * Resolves when `p` settles, at `deadline` (epoch ms) or when `signal` aborts, whichever comes
 * first; never rejects.
 */
export function settleBy(p: Promise<unknown>, deadline: number | undefined, signal: AbortSignal | undefined): Promise<void> {
  if (deadline === undefined && !signal)
    return p.then(
      () => undefined,
      () => undefined,
    );
  return new Promise<void>((resolve) => {
    let t: NodeJS.Timeout | undefined;
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    if (deadline !== undefined) {
      t = setTimeout(done, Math.max(0, deadline - Date.now()));
      t.unref?.();
    }
    signal?.addEventListener('abort', done, { once: true });
    p.then(done, done);
  });
}
