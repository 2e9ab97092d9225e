import {
  type CacheEntry,
  type CacheKey,
  type Embedder,
  type FeedbackVerdict,
  InvalidOptionError,
  LAYER_SPECIFICATION_VERSION,
  type LayerCapabilities,
  type LayerContext,
  type LayerV1,
  type ScanPage,
  type Scope,
  type SemanticQuery,
  type RejectedCandidate,
  type SemanticSearchResult,
  StrataError,
  isExpired,
  scopeBaseId,
  scopeId,
} from '@strata-cache/core';
import { CachingEmbedder, isCancellation } from './caching-embedder.js';
import { LayerCalibration } from './calibration.js';
import { WritePath, settleBy } from './write-path.js';
import { type ImportOptions, importEntries } from './import.js';
import { type SemanticLayerStats, layerStats } from './stats.js';
import { EmbedderBusyError, EmbeddingQueue } from './embedding-queue.js';
import { loadHnsw } from './hnsw.js';
import { type AnswerGroupModel, GroupRebuilder } from './answer-groups.js';
import { RecentMisses } from './in-flight.js';
import { type MatchCandidate, checkGuards, matchCandidates } from './match.js';
import { PKG, type ResolvedOptions, type SemanticLayerOptions, checkThreshold, resolveOptions } from './options.js';
import { loadSnapshot, writeStoreSnapshot } from './persist.js';
import { type Rec, RecordStore, type RemovalReason } from './records.js';
import type { SemanticMutation } from './replication.js';
import { Replicator } from './replicator.js';
import { SnapshotRejected, discardSnapshot } from './snapshot.js';

export type { SemanticLayerOptions, EmbeddingQueueOptions } from './options.js';
export type { SemanticCalibrationStats } from './calibration.js';
export type { SemanticLayerStats } from './stats.js';

const CAPABILITIES: LayerCapabilities = Object.freeze({
  nativeTtl: true,
  batch: true,
  semantic: true,
  shared: false,
  tags: true,
  remote: false,
});

/**
 * L3: an in-process semantic cache. Exact partitions (scope, model, system prompt, history,
 * tools, sampling — everything but the last user turn — plus the embedder's id and dimension),
 * cosine similarity of the last user turn inside a partition, then guards.
 *
 * Pieces: `RecordStore` (entries, tag/scope indexes, partitions), `CachingEmbedder` (text → vector
 * LRU + de-duplication) over `EmbeddingQueue` (admission control, cancellation, batching) over the
 * embedder, `matchCandidates` (threshold → guards → selector), snapshot I/O (persist.ts) and an
 * optional replication feed (replicator.ts).
 */
type ScanOptions = Parameters<NonNullable<LayerV1['scan']>>[0];

export class SemanticLayer implements LayerV1 {
  readonly specificationVersion = LAYER_SPECIFICATION_VERSION;
  readonly name: string;
  readonly capabilities = CAPABILITIES;
  readonly embedder: Embedder;
  private readonly o: ResolvedOptions;
  private readonly store: RecordStore;
  private readonly queue: EmbeddingQueue;
  private readonly vectors: CachingEmbedder;
  private readonly replicator: Replicator | undefined;
  private readonly writes: WritePath;
  private readonly calibration: LayerCalibration | undefined;
  /** Lookups that missed moments ago (their answers are likely loading): see `inFlight`. */
  private readonly recentMisses: RecentMisses | undefined;
  private opening: Promise<void> | undefined;
  /** Set once start-up (snapshot, rebuild, feed) finished: operations wait for it. */
  private started = false;
  private dirty = false;
  private closing = false;
  private closed = false;
  private snapshotting: Promise<string | undefined> | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  private counters = { skippedOverload: 0, cancelledLookups: 0, unrepresentable: 0 };
  private readonly rebuilder: GroupRebuilder | undefined;
  private groupHits = 0;

  constructor(options: SemanticLayerOptions) {
    const o = resolveOptions(options);
    this.o = o;
    this.embedder = o.embedder;
    this.name = o.name;
    this.queue = new EmbeddingQueue(o.embedder, o.embedding);
    this.vectors = new CachingEmbedder(this.queue, { size: o.embeddingCacheSize });
    this.rebuilder = o.answerGroups ? new GroupRebuilder(o.answerGroups.maxMaps) : undefined;
    this.store = new RecordStore(
      o.maxEntries,
      `${o.embedder.id}\u0000${o.embedder.dimensions}\u0000`,
      { removed: (rec, reason) => this.removed(rec, reason) },
      o.answerGroups && this.rebuilder && { setting: o.answerGroups, rebuilder: this.rebuilder },
    );
    this.writes = new WritePath(this.store, this.vectors, this.queue, {
      name: o.name,
      indexable: (entry) => this.indexableText(entry),
      published: (rec, vec) => {
        this.recentMisses?.written(rec.key.id);
        this.calibration?.written(rec);
        this.publishPut(rec, vec);
      },
      changed: () => {
        this.dirty = true;
      },
    });
    this.recentMisses = o.inFlight ? new RecentMisses(o.inFlight.maxMisses, o.inFlight.windowMs) : undefined;
    this.calibration = o.calibration
      ? new LayerCalibration(o.calibration, {
          name: o.name,
          store: this.store,
          vectors: this.vectors,
          guards: o.guards,
          embedder: {
            id: o.embedder.id,
            dimensions: o.embedder.dimensions,
            represents: o.embedder.represents ? (text: string) => o.embedder.represents!(text) : undefined,
          },
          warn: o.warn,
          changed: () => {
            this.dirty = true;
          },
        })
      : undefined;
    this.replicator = o.replication
      ? new Replicator(o.replication, this.store, {
          embedder: { id: o.embedder.id, dimensions: o.embedder.dimensions },
          indexable: (entry) => this.indexableText(entry),
          put: (key, entry, vector) => this.applyPut(key, entry, vector),
          index: (rec, vector) => this.writes.index(rec, rec.entry.semantic!.text, vector),
          reimport: () => this.reimport(),
          warn: o.warn,
        })
      : undefined;
    this.timers.push(setInterval(() => this.sweepExpired(), o.sweepIntervalMs).unref());
    if (o.snapshotIntervalMs !== undefined) {
      this.timers.push(
        setInterval(() => {
          if (this.dirty && !this.closing) this.snapshot().catch((err: unknown) => o.warn(`${PKG}: background snapshot failed: ${(err as Error).message}`));
        }, o.snapshotIntervalMs).unref(),
      );
    }
  }

  /**
   * Loads hnswlib-node, then the snapshot (or rebuilds from `rebuildFrom`), then joins the
   * replication feed. Every operation awaits it; call it yourself to load eagerly and surface a
   * MissingDependencyError early.
   */
  ready(): Promise<void> {
    this.opening ??= this.open();
    return this.opening;
  }

  get size(): number {
    return this.store.size;
  }

  /** This layer instance's id in a replication feed (its own mutations come back under it). */
  get replicaId(): string | undefined {
    return this.replicator?.origin;
  }

  /** The matching setting in force: default threshold, guard names in order, selector name. */
  get matching(): { readonly threshold: number; readonly guards: readonly string[]; readonly selector: string | undefined } {
    return { threshold: this.o.threshold, guards: this.o.guards.map((g) => g.name), selector: this.o.selector?.name };
  }

  stats(): SemanticLayerStats {
    return layerStats({
      store: this.store,
      vectors: this.vectors,
      counters: this.counters,
      writes: this.writes,
      queue: this.queue,
      replicator: this.replicator,
      calibration: this.calibration,
      answerGroups: this.rebuilder
        ? { maps: this.rebuilder.maps, builds: this.rebuilder.builds, evictions: this.rebuilder.evictions, hits: this.groupHits }
        : undefined,
    });
  }

  /** Resolves when no answer-group map waits to be (re)built (tests, benchmarks). */
  answerGroupsIdle(): Promise<void> {
    return this.rebuilder?.idle() ?? Promise.resolve();
  }

  /**
   * Resolves when no text waits for the embedder, no embedder call runs and (with calibration) no
   * answer is being judged (benchmarks, tests).
   */
  async embeddingIdle(): Promise<void> {
    do {
      await this.calibration?.idle();
      await this.queue.whenIdle();
    } while (this.calibration && this.calibration.stats().pendingJudgements > 0);
  }

  // ---- exact operations -------------------------------------------------------------

  async get(key: CacheKey, _ctx?: LayerContext): Promise<CacheEntry | undefined> {
    await this.opened();
    const r = this.store.get(key.id);
    if (!r) return undefined;
    if (isExpired(r.entry, Date.now())) {
      this.store.remove(r, 'expired');
      return undefined;
    }
    this.store.touch(r);
    return r.entry;
  }

  /** Entries in key order, `undefined` for missing keys. */
  async getMany(keys: readonly CacheKey[], ctx?: LayerContext): Promise<Array<CacheEntry | undefined>> {
    await this.opened();
    const out: Array<CacheEntry | undefined> = [];
    for (const k of keys) out.push(await this.get(k, ctx));
    return out;
  }

  /**
   * Stores the entry: findable by its exact key at once (before this resolves), and by similarity
   * once this resolves. The vector comes from the embedding cache when a lookup just embedded the
   * same text (the usual write after a miss: no wait), otherwise from the embedder. With a
   * `ctx.deadline` (core passes its budget for the layer) the embedding must fit inside it: one
   * that cannot — the embedder is saturated — is not queued, and the entry is kept for exact
   * lookups only (`stats().writesNotIndexed`), so a write never outlives its budget. Without one
   * (a direct call) it waits for the embedder as long as needed.
   */
  set(key: CacheKey, entry: CacheEntry, ctx?: LayerContext): Promise<void> {
    return this.write([{ key, entry }], ctx, 'write');
  }

  /** Stores entries, their texts embedded in one batch; budget rules as for `set`. */
  setMany(items: ReadonlyArray<{ key: CacheKey; entry: CacheEntry }>, ctx?: LayerContext): Promise<void> {
    return this.write(items, ctx, 'write');
  }

  async delete(key: CacheKey, _ctx?: LayerContext): Promise<boolean> {
    await this.opened();
    const r = this.store.get(key.id);
    return r ? this.store.remove(r, 'delete') : false;
  }

  async deleteMany(keys: readonly CacheKey[], ctx?: LayerContext): Promise<number> {
    let n = 0;
    for (const k of keys) if (await this.delete(k, ctx)) n++;
    return n;
  }

  /** Removes every entry (or those of one tenant + namespace); resolves how many were removed. */
  async clear(scope?: Pick<Scope, 'tenant' | 'namespace'>): Promise<number> {
    await this.opened();
    let n = 0;
    if (!scope) {
      n = this.store.clearAll();
      this.vectors.clear(); // its references pointed into the index
      this.calibration?.cleared();
    } else {
      for (const r of this.store.inScope(scope)) if (this.store.remove(r, 'purge')) n++;
    }
    this.mutated({ type: 'clear', at: Date.now(), ...(scope ? { scope: { tenant: scope.tenant, namespace: scope.namespace } } : {}) });
    return n;
  }

  /** Removes the entries whose current tags include `tag` (optionally in one tenant + namespace). */
  async deleteByTag(tag: string, scope?: Pick<Scope, 'tenant' | 'namespace'>): Promise<number> {
    await this.opened();
    const base = scope ? scopeBaseId(scope) : undefined;
    let n = 0;
    for (const r of this.store.withTag(tag)) if ((base === undefined || r.base === base) && this.store.remove(r, 'purge')) n++;
    this.mutated({ type: 'purge-tag', at: Date.now(), tag, ...(scope ? { scope: { tenant: scope.tenant, namespace: scope.namespace } } : {}) });
    return n;
  }

  async deleteOlderVersions(scope: Scope): Promise<number> {
    await this.opened();
    let n = 0;
    for (const r of this.store.inScope(scope)) if (r.key.scope.version < scope.version && this.store.remove(r, 'purge')) n++;
    this.mutated({ type: 'purge-versions', at: Date.now(), scope: { tenant: scope.tenant, namespace: scope.namespace, version: scope.version } });
    return n;
  }

  /** Pages through live entries; the cursor is an offset into a snapshot of key ids. */
  async scan(options: ScanOptions = {}): Promise<ScanPage> {
    await this.opened();
    return this.store.page(options.scope, options.cursor, options.count ?? 100, Date.now());
  }

  // ---- similarity -------------------------------------------------------------------

  /**
   * The nearest stored texts of the query's partition, judged by `matchCandidates` (threshold →
   * guards → selector). Honours `ctx.signal` and `ctx.deadline`: a lookup whose embedding cannot
   * be had in time skips at once (a miss, `stats().skippedOverload`), one abandoned while its
   * text waits is dropped from the embedder's queue.
   */
  async search(query: SemanticQuery, ctx?: LayerContext): Promise<SemanticSearchResult> {
    await this.opened();
    const threshold = query.threshold === undefined ? this.o.threshold : checkThreshold(query.threshold, 'query.threshold');
    // With calibration, a threshold is a floor only when one was given (here or by the request).
    const floor = query.threshold !== undefined ? threshold : this.o.thresholdGiven ? this.o.threshold : undefined;
    if (typeof query.text !== 'string' || !this.matchable(query.text)) return {};
    const pk = this.store.partitionPrefix + query.partition;
    const writing = this.writes.pendingIn(pk);
    // Nothing stored in this exact partition (nor missed there moments ago): no candidate can
    // exist, skip the embedding.
    if (!this.store.partitions.get(pk)?.size && !writing && !this.recentMisses?.has(pk, Date.now())) return {};
    let vec: Float32Array | undefined;
    try {
      const embedding = this.vectors.embed([query.text], {
        priority: 'lookup',
        ...(ctx?.deadline !== undefined ? { deadline: ctx.deadline } : {}),
        ...(ctx?.signal ? { signal: ctx.signal } : {}),
      });
      if (!writing) [vec] = await embedding;
      else {
        // Entries of this partition still embedding were stored before this lookup: it must see
        // them (a lookup right after store() finds the entry). Their embeddings move ahead of it,
        // so once its own vector is here they are done or running: wait for those, within its
        // deadline. A lookup that skips the layer (embedder busy) does not wait at all.
        const writes = [...writing];
        this.writes.expedite(writes);
        [vec] = await embedding;
        await settleBy(Promise.all(writes.map((w) => w.done)), ctx?.deadline, ctx?.signal);
      }
    } catch (e) {
      if (e instanceof EmbedderBusyError) {
        this.counters.skippedOverload++;
        return {};
      }
      if (isCancellation(e) || ctx?.signal?.aborted) {
        this.counters.cancelledLookups++;
        return {};
      }
      throw e;
    }
    this.assertOpen();
    if (!vec) return {};
    const part = this.store.partitions.get(pk);
    if (!part) return this.missed(query, pk, vec, threshold, floor, {});
    const sid = scopeId(query.scope);
    const now = Date.now();
    const recs: Rec[] = [];
    const candidates: MatchCandidate[] = [];
    // The answer-group rule compares the answers of the `neighbours` nearest prompts (a request
    // with its own threshold, or a partition without a learned map, is judged as without it).
    const groups = query.threshold === undefined && !this.calibration ? part.answers : undefined;
    if (groups) this.rebuilder!.searched(groups);
    const fetch = groups?.ready ? Math.max(this.o.topK, this.o.answerGroups!.neighbours) : this.o.topK;
    // How many of the kept candidates came from the `topK` nearest: those alone go to the
    // threshold, guards and selector, exactly as without the rule.
    let inTopK = 0;
    const found = part.search(vec, fetch);
    for (let at = 0; at < found.length; at++) {
      const c = found[at]!;
      const r = part.owner(c.label);
      if (!r || r.key.scopeId !== sid) continue;
      if (isExpired(r.entry, now)) {
        // Skipped either way; removed here only when it would have been judged (the sweep gets the rest).
        if (c.similarity >= (this.calibration ? -1 : threshold)) this.store.remove(r, 'expired');
        continue;
      }
      recs.push(r);
      candidates.push({ text: r.entry.semantic!.text, similarity: c.similarity, value: r.entry.value, vector: () => r.vector() });
      if (at < this.o.topK) inTopK++;
    }
    if (this.calibration) return this.missed(query, pk, vec, threshold, floor, this.calibration.search(query, vec, recs, candidates, floor));
    const byGroup = groups?.ready ? this.groupPick(groups, query.text, vec, recs, candidates, threshold) : undefined;
    if (byGroup?.pick !== undefined) {
      const r = recs[byGroup.pick]!;
      this.store.touch(r);
      this.groupHits++;
      return { hit: { key: r.key, entry: r.entry, similarity: candidates[byGroup.pick]!.similarity, text: candidates[byGroup.pick]!.text } };
    }
    if (candidates.length > inTopK) {
      candidates.length = inTopK;
      recs.length = inTopK;
    }
    const { pick, rejected } = matchCandidates({ text: query.text, vector: vec }, candidates, { threshold, guards: this.o.guards, selector: this.o.selector });
    const dup = byGroup?.rejected && rejected.find((x) => x.text === byGroup.rejected!.text && x.guard === byGroup.rejected!.guard);
    if (byGroup?.rejected && !dup) rejected.unshift(byGroup.rejected);
    if (pick !== undefined) {
      const r = recs[pick]!;
      this.store.touch(r);
      return {
        hit: { key: r.key, entry: r.entry, similarity: candidates[pick]!.similarity, text: candidates[pick]!.text },
        ...(rejected.length ? { rejected } : {}),
      };
    }
    return this.missed(query, pk, vec, threshold, floor, rejected.length ? { rejected } : {});
  }

  /**
   * A lookup's result, with — when it missed — the lookups that missed moments ago in its
   * partition that it would be served from once their answers are stored (`inFlight`); then it is
   * remembered itself. They must be what a new entry is served from: at least the threshold, or
   * with calibration what the calibrator serves without evidence of an entry's own (see
   * `LayerCalibration.joinable`); and past every guard.
   */
  private missed(
    query: SemanticQuery,
    pk: string,
    vec: Float32Array,
    threshold: number,
    floor: number | undefined,
    out: SemanticSearchResult,
  ): SemanticSearchResult {
    const misses = this.recentMisses;
    if (!misses || out.hit || !query.key) return out;
    const now = Date.now();
    const q = { keyId: query.key.id, scopeId: scopeId(query.scope), text: query.text, vector: vec };
    const joinable = this.calibration ? this.calibration.joinable(query.scope.tenant, query.text, floor) : (similarity: number) => similarity >= threshold;
    const named = misses.match(pk, q, joinable, this.o.guards, now);
    misses.remember(pk, { ...q, at: now });
    return named.length > 0 ? { ...out, inFlight: named } : out;
  }

  /**
   * The answer-group rule over a lookup's neighbours: the answer its model decides for, served
   * through its most similar prompt when that prompt passes every guard (a turned-down prompt is
   * reported, and the threshold, guards and selector decide as without the rule).
   */
  private groupPick(
    model: AnswerGroupModel,
    text: string,
    vec: Float32Array,
    recs: readonly Rec[],
    candidates: readonly MatchCandidate[],
    threshold: number,
  ): { pick?: number; rejected?: RejectedCandidate } | undefined {
    const d = model.decide(
      vec,
      recs.map((r) => r.label),
    );
    if (!d) return undefined;
    const i = recs.findIndex((r) => model.keyOf(r.label) === d.key);
    if (i < 0) return undefined;
    const c = candidates[i]!;
    // How far the rule may extrapolate: the prompt served through must be this similar itself.
    if (!(c.similarity >= model.setting.minSimilarity)) return undefined;
    const turnedDown = checkGuards({ text, vector: vec }, c, threshold, this.o.guards);
    return turnedDown ? { rejected: { ...turnedDown, reason: `answer group of ${d.size}: ${turnedDown.reason}` } } : { pick: i };
  }

  /** The calibrating mode's search: the calibrator decides over the candidates (see calibration.ts). */
  /**
   * Calibrating mode: the upstream answer of a lookup whose search returned a calibration token
   * (a shadow check or a near miss). Judged against the stored candidate's answer in the
   * background; resolves when the judgement is done (`MultiLayerCache` calls it, off the
   * caller's path). A no-op without calibration.
   */
  async observe(token: unknown, value: unknown, ctx?: LayerContext): Promise<void> {
    await this.opened();
    await this.calibration?.observe(token, value, ctx);
  }

  /**
   * Calibrating mode: a user's verdict on a hit this layer served (`MultiLayerCache.feedback`
   * routes it here). A `'wrong'` counts against the entry's neighbourhood and removes the entry;
   * resolves `{ evict }` (core then removes it from every layer).
   */
  async feedback(token: unknown, verdict: FeedbackVerdict, _ctx?: LayerContext): Promise<{ evict: boolean }> {
    await this.opened();
    if (verdict !== 'wrong' && verdict !== 'right') throw new InvalidOptionError(`${PKG}: feedback verdict must be 'wrong' or 'right'`, { field: 'verdict' });
    const r = this.calibration ? this.calibration.feedback(token, verdict) : { evict: verdict === 'wrong' };
    const id = (token as { d?: { id?: unknown } } | null)?.d?.id;
    if (r.evict && typeof id === 'string') {
      const rec = this.store.get(id);
      if (rec) this.store.remove(rec, 'delete');
    }
    return r;
  }

  // ---- lifecycle --------------------------------------------------------------------

  /** Removes expired entries now (also runs every `sweepIntervalMs`). Resolves the count. */
  sweepExpired(): number {
    if (!this.started || this.closed) return 0;
    return this.store.sweepExpired(Date.now());
  }

  /** Rebuilds graphs that carry many deleted slots now, instead of in the background. */
  async compact(): Promise<void> {
    await this.opened();
    await Promise.all([...this.store.partitions.values()].map((p) => p.compact()));
  }

  /**
   * Writes an atomic snapshot to `persistDir` (temp directory + checksums + rename).
   * Resolves its path. Blocks the event loop while graphs are serialised (hnswlib writes
   * synchronously), so prefer quiet moments for large indexes.
   */
  async snapshot(): Promise<string | undefined> {
    if (!this.o.persistDir) throw new InvalidOptionError(`${PKG}: snapshot() needs option "persistDir"`, { field: 'persistDir' });
    await this.opened();
    return this.snapshotNow();
  }

  /**
   * Re-indexes every entry of `source` (e.g. the L2 Redis layer) that carries a semantic
   * descriptor: pages through its `scan()`, embedding each page in one batch. Resolves the count.
   */
  async rebuildFrom(source: LayerV1, options: { scope?: Pick<Scope, 'tenant' | 'namespace'>; pageSize?: number } = {}): Promise<number> {
    if (typeof source.scan !== 'function') throw new InvalidOptionError(`${PKG}: rebuildFrom() needs a layer that implements scan()`, { field: 'rebuildFrom' });
    await this.opened();
    return this.importFrom(source, options);
  }

  /**
   * Waits for writes still embedding (up to `closeTimeoutMs`), writes a final snapshot when
   * `persistDir` is set and something changed, leaves the replication feed and frees the index.
   * Every operation afterwards rejects with `STRATA_CLOSED`; a second call is a no-op.
   */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const t of this.timers) clearInterval(t);
    if (this.opening) {
      await this.opening.catch(() => undefined);
      await this.writes.settle(this.o.closeTimeoutMs);
      await this.calibration?.close(this.o.closeTimeoutMs);
      await this.replicator?.stop(this.o.closeTimeoutMs);
      if (this.o.persistDir && this.dirty && this.store.env) {
        try {
          await this.snapshotNow();
        } catch (e) {
          this.o.warn(`${PKG}: final snapshot failed: ${(e as Error).message}`);
        }
      }
    }
    this.closed = true;
    this.rebuilder?.stop();
    this.queue.shutdown();
    await Promise.all([...this.store.partitions.values()].map((p) => p.idle()));
    this.store.clearAll();
    this.vectors.clear();
    this.recentMisses?.clear();
  }

  // ---- internals --------------------------------------------------------------------

  /** Rejects after close; waits for start-up otherwise (no extra tick once open). */
  private opened(): Promise<void> | void {
    this.assertOpen();
    if (this.started) return;
    return this.ready().then(() => this.assertOpen());
  }

  private async open(): Promise<void> {
    const hnsw = await loadHnsw();
    this.store.env = { hnsw, params: this.o.hnsw, dims: this.embedder.dimensions, flatLimit: this.o.flatLimit };
    let loaded: Awaited<ReturnType<typeof loadSnapshot>> = false;
    const dir = this.o.persistDir;
    if (dir) {
      try {
        loaded = await loadSnapshot(dir, this.store, { embedderId: this.embedder.id, dimensions: this.embedder.dimensions });
        if (loaded) {
          this.store.sweepExpired(Date.now());
          // A snapshot taken with a larger maxTextLength, or before the embedder said what it
          // cannot represent, may hold vectors of texts this layer would not match: out they go.
          this.store.unindexWhere((rec) => this.indexableText(rec.entry, false) !== undefined);
        }
      } catch (e) {
        const why = e instanceof SnapshotRejected ? e.message : `unreadable (${(e as Error).message})`;
        this.o.warn(`${PKG}: discarded the snapshot in ${dir}: ${why}; ${this.o.rebuildFrom ? 'rebuilding from option "rebuildFrom"' : 'starting empty'}`);
        await discardSnapshot(dir).catch(() => undefined);
        this.store.clearAll();
      }
      if (loaded && this.calibration) await this.restoreCalibration(loaded);
    }
    this.dirty = false;
    if (this.replicator) {
      // Joins the feed where the snapshot left off; without a snapshot, from the feed's end after
      // a rebuild from L2 (entries replicated meanwhile arrive through the feed).
      await this.replicator.start(loaded ? loaded.feedOffset : undefined);
    }
    if (!loaded && this.o.rebuildFrom) {
      try {
        await this.importFrom(this.o.rebuildFrom, {});
      } catch (e) {
        // An unreachable L2 must not keep the layer from starting: it starts with what it has.
        this.o.warn(`${PKG}: could not rebuild from option "rebuildFrom" (${(e as Error)?.message ?? String(e)}); starting without those entries`);
      }
    }
    await this.calibration?.start();
    this.started = true;
  }

  /** The calibration state a loaded snapshot carried (refused on its own, the index stays). */
  private async restoreCalibration(loaded: Exclude<Awaited<ReturnType<typeof loadSnapshot>>, false>): Promise<void> {
    try {
      this.calibration!.restore({ calibration: await loaded.extra('calibration.json'), answers: await loaded.extra('answer-vectors.bin') });
    } catch (e) {
      this.o.warn(`${PKG}: could not read the calibration state of the snapshot (${(e as Error).message}); calibration starts afresh`);
    }
  }

  /** The feed lost our place: re-import `rebuildFrom` (newer entries replace ours); resolves the ids it holds. */
  private async reimport(): Promise<ReadonlySet<string> | undefined> {
    if (!this.o.rebuildFrom) return undefined;
    const seen = new Set<string>();
    await this.importFrom(this.o.rebuildFrom, {}, seen);
    return seen;
  }

  private importFrom(source: LayerV1, options: ImportOptions, seen?: Set<string>): Promise<number> {
    return importEntries(source, { store: this.store, writes: this.writes, replicator: this.replicator }, options, seen);
  }

  private indexableText(entry: CacheEntry, count = true): string | undefined {
    const s = entry.semantic;
    if (!s || typeof s.text !== 'string' || typeof s.partition !== 'string') return undefined;
    return this.matchable(s.text, count) ? s.text : undefined;
  }

  /**
   * Whether a text is matched by similarity at all: not longer than `maxTextLength`, and one the
   * embedder can represent (`Embedder.represents`; a text it cannot is counted in
   * `stats().unrepresentable` and served by exact key only).
   */
  private matchable(text: string, count = true): boolean {
    if (text.length > this.o.maxTextLength) return false;
    if (this.embedder.represents && !this.embedder.represents(text)) {
      if (count) this.counters.unrepresentable++;
      return false;
    }
    return true;
  }

  private write(items: ReadonlyArray<{ key: CacheKey; entry: CacheEntry }>, ctx: LayerContext | undefined, priority: 'write' | 'bulk'): Promise<void> {
    if (this.closing) return Promise.reject(this.closedError());
    if (!this.started) return this.ready().then(() => this.write(items, ctx, priority));
    return this.writes.write(items, ctx, priority);
  }

  /** A replicated entry: stored, and indexed with the vector it came with (never re-embedded). */
  private applyPut(key: CacheKey, entry: CacheEntry, vector: Float32Array | undefined): void {
    if (isExpired(entry, Date.now())) return;
    const rec = this.store.put(key, entry);
    this.dirty = true;
    if (vector) this.writes.index(rec, rec.entry.semantic!.text, vector);
  }

  /** Store callback: an entry left (evicted, expired, deleted, purged, replaced). */
  private removed(rec: Rec, reason: RemovalReason): void {
    this.dirty = true;
    this.calibration?.removed(rec, reason);
    const text = rec.entry.semantic?.text;
    if (text !== undefined) this.vectors.forget(text, rec);
    if (reason === 'delete' || reason === 'expired' || reason === 'evicted')
      this.mutated({ type: 'delete', at: Date.now(), key: rec.key, reason, createdAt: rec.entry.createdAt });
  }

  private publishPut(rec: Rec, vec: Float32Array | undefined): void {
    if (!this.replicator) return;
    this.mutated({
      type: 'put',
      at: Date.now(),
      key: rec.key,
      entry: rec.entry,
      ...(vec ? { vector: vec } : {}),
      embedder: { id: this.embedder.id, dimensions: this.embedder.dimensions },
    });
  }

  private mutated(m: SemanticMutation): void {
    this.dirty = true;
    this.replicator?.publish(m);
  }

  private async snapshotNow(): Promise<string | undefined> {
    while (this.snapshotting) await this.snapshotting.catch(() => undefined);
    this.dirty = false;
    const p = writeStoreSnapshot(
      this.o.persistDir!,
      this.store,
      { embedderId: this.embedder.id, dimensions: this.embedder.dimensions },
      () => this.replicator?.offset,
      () => this.calibration?.snapshotFiles() ?? [],
    );
    this.snapshotting = p;
    try {
      return await p;
    } catch (e) {
      this.dirty = true;
      throw e;
    } finally {
      this.snapshotting = undefined;
    }
  }

  private assertOpen(): void {
    if (this.closed || this.closing) throw this.closedError();
  }

  private closedError(): StrataError {
    return new StrataError('STRATA_CLOSED', `${PKG}: layer "${this.name}" is closed`);
  }
}
