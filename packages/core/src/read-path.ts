import { performance } from 'node:perf_hooks';
import type { CallRecord } from './call.js';
import { type CacheContext, acceptHit, emitError } from './context.js';
import { type CacheEntry, isCacheEntry, isExpired } from './entry.js';
import { DecodeError, LayerError } from './errors.js';
import type { CacheKey } from './fingerprint.js';
import { isPromiseLike, type SemanticQuery, type SemanticSearchResult } from './layer.js';
import { FAILED, type Failed, type ResolvedLayer } from './layer-runner.js';
import { calibrationOf } from './calibration.js';
import type { CalibrationInfo, LookupHit } from './types.js';

/** A semantic layer's answer: an entry under its own key (exact answers are plain entries under the call's key). */
class Found {
  constructor(
    readonly entry: CacheEntry,
    readonly key: CacheKey,
    readonly similarity?: number,
    readonly text?: string,
    readonly calibration?: CalibrationInfo,
  ) {}
}

/**
 * The read side of the cache: layers in order, the first live, accepted entry wins and is
 * backfilled into the layers above. A synchronous layer is read synchronously — an L1 hit
 * allocates no promise — and the path turns asynchronous only at the first layer that answers
 * with one.
 *
 * Race protection for reads: an entry a watermark covers (an invalidation this process knows of
 * that came after the entry's load began) is never served nor backfilled, and is removed; and the
 * invalidation epoch is taken when the read begins, so an entry that an invalidation since then
 * covered is not either (an L2 read in flight while a purge runs cannot bring the purged answer
 * back into L1). Backfills copy the entry as found: it keeps its stamp.
 *
 * Until the bus's stored watermarks have been loaded, layers that can hold entries older than
 * this process (shared, semantic) are skipped.
 */
export class ReadPath {
  constructor(private readonly ctx: CacheContext) {}

  read(call: CallRecord): LookupHit | undefined | Promise<LookupHit | undefined> {
    const since = this.ctx.invalidations.epoch;
    const layers = this.ctx.layers;
    for (let i = 0; i < layers.length; i++) {
      const l = layers[i]!;
      if (!this.readable(l)) continue;
      const t0 = performance.now();
      if (l.semantic) return this.readAsync(call, i, this.readSemantic(call, l), t0, since);
      const r = this.ctx.runner.get(l, call.key);
      if (isPromiseLike(r)) return this.readAsync(call, i, r, t0, since);
      const hit = this.settle(call, i, r, t0, since);
      if (hit) return hit;
    }
    return undefined;
  }

  /**
   * The semantic layers only, again (after waiting for a similar load in flight): the exact layers
   * were read moments ago and the answer awaited is stored under another request's key.
   */
  async readSemanticAgain(call: CallRecord): Promise<LookupHit | undefined> {
    const since = this.ctx.invalidations.epoch;
    const layers = this.ctx.layers;
    for (let i = 0; i < layers.length; i++) {
      const l = layers[i]!;
      if (!l.semantic || !this.readable(l)) continue;
      const t0 = performance.now();
      const hit = this.settle(call, i, await this.readSemantic(call, l), t0, since);
      if (hit) return hit;
    }
    return undefined;
  }

  /** Reads several calls at once: `getMany` on layers that declare `batch`, one read per call elsewhere. */
  async readMany(calls: readonly CallRecord[]): Promise<Array<LookupHit | undefined>> {
    const since = this.ctx.invalidations.epoch;
    const out: Array<LookupHit | undefined> = new Array(calls.length).fill(undefined);
    let open = calls.map((_, i) => i);
    for (let li = 0; li < this.ctx.layers.length && open.length > 0; li++) {
      const l = this.ctx.layers[li]!;
      if (!this.readable(l)) continue;
      const t0 = performance.now();
      if (l.batch && !l.semantic) {
        const keys = open.map((i) => calls[i]!.key);
        const got = await this.ctx.runner.read(l, 'getMany', (c) => l.layer.getMany!(keys, c));
        const stale: CacheKey[] = [];
        open.forEach((ci, j) => {
          const e = got === FAILED ? FAILED : Array.isArray(got) ? got[j] : undefined;
          out[ci] = this.settle(calls[ci]!, li, e, t0, since, stale);
        });
        // Expired or malformed entries found by one batched read leave in one batched delete.
        if (stale.length > 0) this.ctx.runner.background(l, 'deleteMany', (c) => l.layer.deleteMany!(stale, c));
      } else {
        await Promise.all(
          open.map(async (ci) => {
            const call = calls[ci]!;
            const r = l.semantic ? await this.readSemantic(call, l) : await this.ctx.runner.read(l, 'get', (c) => l.layer.get(call.key, c));
            out[ci] = this.settle(call, li, r, t0, since, null);
          }),
        );
      }
      open = open.filter((i) => out[i] === undefined);
    }
    this.backfillMany(calls, out);
    return out;
  }

  private async readAsync(call: CallRecord, at: number, pending: Promise<unknown>, t0: number, since: number): Promise<LookupHit | undefined> {
    const layers = this.ctx.layers;
    let r = (await pending) as CacheEntry | Found | undefined | Failed;
    for (let i = at; ; ) {
      const hit = this.settle(call, i, r, t0, since);
      if (hit) return hit;
      do i++;
      while (i < layers.length && !this.readable(layers[i]!));
      if (i >= layers.length) return undefined;
      const l = layers[i]!;
      t0 = performance.now();
      r = l.semantic ? await this.readSemantic(call, l) : await this.ctx.runner.get(l, call.key);
    }
  }

  /** Read from, and not skipped until the bus's stored watermarks are loaded (shared and semantic layers). */
  private readable(l: ResolvedLayer): boolean {
    return l.read && (!l.gated || this.ctx.sync.loaded);
  }

  /**
   * A semantic layer: the exact key first (an exact repeat needs no embedding, and requests that
   * cannot be matched by similarity still find what it holds under their key), then a search.
   */
  private async readSemantic(call: CallRecord, l: ResolvedLayer): Promise<Found | undefined | Failed> {
    const exact = await this.ctx.runner.read(l, 'get', (c) => l.layer.get(call.key, c));
    if (exact !== FAILED && exact && !isExpired(exact, this.ctx.now())) return new Found(exact, call.key);
    const semantic = call.options.semantic === false ? undefined : call.semantic;
    if (!semantic) return undefined;
    const threshold = typeof call.options.semantic === 'object' ? call.options.semantic.threshold : this.ctx.semanticThreshold;
    const query: SemanticQuery =
      threshold !== undefined ? { ...semantic, scope: call.scope, key: call.key, threshold } : { ...semantic, scope: call.scope, key: call.key };
    const r = await this.ctx.runner.read<SemanticSearchResult>(l, 'search', (c) => l.layer.search!(query, c));
    if (r === FAILED) return FAILED;
    if (r.rejected && r.rejected.length > 0) {
      call.addRejected(r.rejected);
      this.ctx.events.emit('reject', { key: call.key, layer: l.name, rejected: r.rejected });
    }
    const calibration = calibrationOf(r, l.name);
    if (calibration) call.addCalibration(calibration);
    if (!r.hit) {
      if (r.inFlight && r.inFlight.length > 0) call.inFlight = r.inFlight;
      return undefined;
    }
    if (r.hit.key.scopeId !== call.key.scopeId) {
      emitError(this.ctx, new LayerError(l.name, 'search', `layer "${l.name}" returned an entry of another scope; discarded`), l.name, 'search');
      return undefined;
    }
    return new Found(r.hit.entry, r.hit.key, r.hit.similarity, r.hit.text, calibration?.action === 'serve' ? calibration : undefined);
  }

  /**
   * Turns one layer's answer into a hit, or counts the miss (and why). `batch` is set by
   * `readMany`: backfill is left to it, and entries to delete are collected in the array.
   */
  private settle(
    call: CallRecord,
    i: number,
    answer: CacheEntry | Found | undefined | Failed,
    t0: number,
    since: number,
    batch?: CacheKey[] | null,
  ): LookupHit | undefined {
    if (answer === FAILED) return undefined;
    const ctx = this.ctx;
    const l = ctx.layers[i]!;
    l.stats.latency.record(performance.now() - t0);
    if (answer === undefined || answer === null) {
      l.stats.misses++;
      return undefined;
    }
    const found = answer instanceof Found ? answer : undefined;
    const entry = found ? found.entry : (answer as CacheEntry);
    const key = found ? found.key : call.key;
    const now = ctx.now();
    if (!isCacheEntry(entry)) {
      l.stats.misses++;
      emitError(
        ctx,
        new DecodeError(`@strata-cache/core: layer "${l.name}" returned a malformed entry (createdAt, tags or ttlMs); treated as a miss`),
        l.name,
        'get',
      );
      if (!l.semantic) this.remove(l, key, batch);
      return undefined;
    }
    if (isExpired(entry, now)) {
      l.stats.misses++;
      if (!l.semantic && !l.layer.capabilities.nativeTtl) this.remove(l, key, batch);
      return undefined;
    }
    // A watermark covers it: a purge this process knows of (made here, heard on the bus, or
    // loaded from the store) happened after its load began. Wherever it was found — a delete that
    // failed, a racing write, a restored snapshot — it is a miss, and it is removed.
    if (ctx.sync.table.refuses(key, entry)) {
      l.stats.misses++;
      this.remove(l, key, batch);
      return undefined;
    }
    if (ctx.invalidations.epoch !== since && ctx.invalidations.invalidatedSince(since, key, entry)) {
      l.stats.misses++;
      return undefined;
    }
    if (!acceptHit(ctx, call, key, entry, l.name, now)) {
      l.stats.misses++;
      return undefined;
    }
    l.stats.hits++;
    const semanticHit = found?.similarity !== undefined;
    if (batch === undefined && ctx.backfill && i > 0 && (!semanticHit || ctx.backfillSemanticHits)) this.backfill(i, call.key, entry);
    const hit: { -readonly [K in keyof LookupHit]: LookupHit[K] } = { key, entry, layer: l.name, ageMs: now - entry.createdAt };
    if (semanticHit) {
      hit.similarity = found!.similarity;
      hit.matchedText = found!.text;
      if (found!.calibration) hit.calibration = found!.calibration;
    }
    if (call.rejected) hit.rejected = call.rejected;
    return hit;
  }

  private remove(l: ResolvedLayer, key: CacheKey, batch: CacheKey[] | null | undefined): void {
    if (batch) batch.push(key);
    else this.ctx.runner.background(l, 'delete', (c) => l.layer.delete(key, c));
  }

  /** Copies an entry found in layer `hitIndex` into the writable, non-semantic layers above it. */
  backfill(hitIndex: number, key: CacheKey, entry: CacheEntry): void {
    for (let j = 0; j < hitIndex; j++) {
      const upper = this.ctx.layers[j]!;
      if (!upper.write || upper.semantic) continue;
      this.ctx.runner.background(upper, 'set', (c) => upper.layer.set(key, entry, c));
    }
  }

  /** Backfill after a batched read: one `setMany` per upper layer that declares `batch`. */
  private backfillMany(calls: readonly CallRecord[], hits: ReadonlyArray<LookupHit | undefined>): void {
    if (!this.ctx.backfill) return;
    const layers = this.ctx.layers;
    for (let j = 0; j < layers.length; j++) {
      const upper = layers[j]!;
      if (!upper.write || upper.semantic) continue;
      const items: Array<{ key: CacheKey; entry: CacheEntry }> = [];
      hits.forEach((h, i) => {
        if (!h || (h.similarity !== undefined && !this.ctx.backfillSemanticHits)) return;
        if (layers.findIndex((x) => x.name === h.layer) > j) items.push({ key: calls[i]!.key, entry: h.entry });
      });
      if (items.length === 0) continue;
      if (upper.batch) this.ctx.runner.background(upper, 'setMany', (c) => upper.layer.setMany!(items, c));
      else for (const it of items) this.ctx.runner.background(upper, 'set', (c) => upper.layer.set(it.key, it.entry, c));
    }
  }
}
