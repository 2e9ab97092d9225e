import { join } from 'node:path';
import {
  type CacheEntry,
  type CacheKey,
  type Embedder,
  InvalidOptionError,
  LAYER_SPECIFICATION_VERSION,
  type LayerCapabilities,
  type LayerContext,
  type LayerV1,
  type RejectedCandidate,
  type ScanPage,
  type Scope,
  type CandidateSelector,
  type SemanticGuard,
  type SemanticQuery,
  type SemanticSearchResult,
  StrataError,
  embedderFits,
  isExpired,
  scopeBaseId,
  scopeId,
} from '@strata-cache/core';
import { recommendedSetting } from '@strata-cache/semantic-guards';
import { type HnswModule, loadHnsw } from './hnsw.js';
import { Lru } from './lru.js';
import { type HnswParams, type IndexEnv, Partition, type PartitionState } from './partition.js';
import { type SnapshotFile, SnapshotRejected, discardSnapshot, openSnapshot, writeSnapshot } from './snapshot.js';

const PKG = '@strata-cache/layer-semantic';

export interface SemanticLayerOptions {
  /** Turns texts into unit vectors; its `id` and `dimensions` are part of every partition. Required. */
  embedder: Embedder;
  /**
   * Cosine similarity (−1…1; 1 = same direction) a candidate needs to be a hit. The one scale
   * used everywhere; a request overrides it with `query.threshold`
   * (MultiLayerCache: `semanticThreshold`, or `{ semantic: { threshold } }` per call).
   * @default the measured setting's: `recommendedSetting(embedder).threshold` from
   * `@strata-cache/semantic-guards` (0.7 with USE-lite and its verifier, which then does most of the work; 0.965 with the guards alone;
   * tuned on USE-lite — with another embedder, measure and set your own)
   */
  threshold?: number;
  /** Nearest candidates fetched per lookup; each above the threshold is run through the guards in turn. @default 4 */
  topK?: number;
  /**
   * Checks a candidate must pass after the threshold (numbers, negation, ...). The first
   * candidate every guard accepts is the hit; turned-down ones are reported in `rejected`.
   * Pass `[]` for none.
   * @default `recommendedSetting(embedder).guards`: `defaultGuards()` from `@strata-cache/semantic-guards`,
   * plus its learned verifier when the embedder is USE-lite (512-d)
   */
  guards?: readonly SemanticGuard[];
  /**
   * Chooses among the candidates that passed the threshold and the guards, or declines them
   * all (reported in `rejected` under the selector's name) — e.g. `lexicalSelector()` from
   * `@strata-cache/semantic-guards`, which declines when two stored prompts match about equally.
   * `false`: none — the most similar accepted candidate is the hit.
   * @default `lexicalSelector()` from `@strata-cache/semantic-guards`
   */
  selector?: CandidateSelector | false;
  /** Most entries held; the least recently used (written or hit) go first. @default 100_000 */
  maxEntries?: number;
  /**
   * Longest compared text (characters) matched by similarity. Longer texts are stored and
   * served by exact key only: encoders truncate long inputs, and two long prompts that differ
   * only past the cut would otherwise look identical.
   * @default 1_000
   */
  maxTextLength?: number;
  /** Texts whose vectors are kept (LRU), so the same text is never embedded twice. 0 disables. @default 10_000 */
  embeddingCacheSize?: number;
  /** HNSW graph parameters (hnswlib-node, inner-product space on unit vectors). */
  hnsw?: {
    /** Links per node. @default 16 */
    m?: number;
    /** Candidate list while inserting. @default 100 */
    efConstruction?: number;
    /** Candidate list while searching (recall vs speed). @default 64 */
    ef?: number;
    /** Seed of the level generator (reproducible graphs). @default 100 */
    randomSeed?: number;
  };
  /**
   * Partitions up to this many entries are searched exactly over a packed array (no graph, no
   * per-partition overhead); a partition that grows past it gets its own HNSW graph.
   * @default 1_024
   */
  flatLimit?: number;
  /**
   * Directory for snapshots (index + metadata). Loaded on start; written by `snapshot()`, by
   * `close()` and every `snapshotIntervalMs`. One process per directory.
   */
  persistDir?: string;
  /** Writes a snapshot this often when something changed (ms). Unset = only on `snapshot()` / `close()`. */
  snapshotIntervalMs?: number;
  /**
   * A layer (e.g. L2 Redis) whose `scan()` entries carry `semantic` descriptors: when no valid
   * snapshot exists on start, the index is rebuilt from it.
   */
  rebuildFrom?: LayerV1;
  /** Removes expired entries this often (ms); lookups skip and remove them in any case. @default 60_000 */
  sweepIntervalMs?: number;
  /** Receives warnings (discarded snapshot, failed background snapshot). @default process.emitWarning */
  onWarning?: (message: string) => void;
  /** Layer name in stats and events. @default "semantic" */
  name?: string;
}

const OPTION_NAMES = new Set([
  'embedder', 'threshold', 'topK', 'guards', 'selector', 'maxEntries', 'maxTextLength', 'embeddingCacheSize', 'hnsw', 'flatLimit',
  'persistDir', 'snapshotIntervalMs', 'rebuildFrom', 'sweepIntervalMs', 'onWarning', 'name',
]);

const CAPABILITIES: LayerCapabilities = Object.freeze({
  nativeTtl: true,
  batch: true,
  semantic: true,
  shared: false,
  tags: true,
  remote: false,
});

interface Rec {
  readonly key: CacheKey;
  readonly entry: CacheEntry;
  readonly base: string;
  /** Set when the entry's text is in the similarity index. */
  part?: Partition;
  label: number;
}

/** Counts for monitoring and tests. */
export interface SemanticLayerStats {
  entries: number;
  /** Entries whose text is in the similarity index. */
  indexed: number;
  partitions: number;
  /** Partitions searched over an HNSW graph (the rest are exact flat scans). */
  graphPartitions: number;
  /** Estimated bytes of vectors and graphs. */
  indexBytes: number;
  embeddingCache: number;
  embeddings: number;
  embeddingCacheHits: number;
}

/**
 * L3: an in-process semantic cache. Exact partitions (scope, model, system prompt, history,
 * tools, sampling — everything but the last user turn — plus the embedder's id and dimension),
 * cosine similarity of the last user turn inside a partition, then guards.
 */
export class SemanticLayer implements LayerV1 {
  readonly specificationVersion = LAYER_SPECIFICATION_VERSION;
  readonly name: string;
  readonly capabilities = CAPABILITIES;
  readonly embedder: Embedder;
  private readonly threshold: number;
  private readonly topK: number;
  private readonly guards: readonly SemanticGuard[];
  private readonly guardsNeedVectors: boolean;
  private readonly selector: CandidateSelector | undefined;
  private readonly maxEntries: number;
  private readonly maxTextLength: number;
  private readonly params: HnswParams;
  private readonly flatLimit: number;
  private readonly persistDir: string | undefined;
  private readonly rebuildSource: LayerV1 | undefined;
  private readonly warn: (m: string) => void;
  private readonly partitionPrefix: string;

  /** key id → record, in least-recently-used order. */
  private records = new Map<string, Rec>();
  private partitions = new Map<string, Partition>();
  private readonly tagIndex = new Map<string, Set<string>>();
  private readonly scopeIndex = new Map<string, Set<string>>();
  private readonly vectors: Lru<string, Float32Array>;
  private readonly inflight = new Map<string, Promise<Float32Array>>();
  /** Writes waiting for their embedding, per key: set/delete bump `seq`, so only the latest lands. */
  private readonly writes = new Map<string, { seq: number; pending: number }>();
  /** Bumped by clear / deleteByTag / deleteOlderVersions: writes that started before are dropped. */
  private purgeEpoch = 0;
  private env: IndexEnv | undefined;
  private opening: Promise<void> | undefined;
  private dirty = false;
  private closed = false;
  private snapshotting: Promise<string | undefined> | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  private counters = { embeddings: 0, cacheHits: 0 };

  constructor(options: SemanticLayerOptions) {
    if (typeof options !== 'object' || options === null) throw new InvalidOptionError(`${PKG}: options with an "embedder" are required`, { field: 'embedder' });
    for (const k of Object.keys(options)) {
      if (!OPTION_NAMES.has(k)) throw new InvalidOptionError(`${PKG}: unknown option "${k}"`, { field: k });
    }
    const e = options.embedder;
    if (!e || typeof e.embed !== 'function' || typeof e.id !== 'string' || !Number.isSafeInteger(e.dimensions) || e.dimensions < 1) {
      throw new InvalidOptionError(`${PKG}: option "embedder" must be an Embedder { id, dimensions, embed(texts) }`, { field: 'embedder' });
    }
    this.embedder = e;
    // Omitted matching options take the setting the quality benchmark measured (semantic-guards).
    const recommended = options.threshold === undefined || options.guards === undefined || options.selector === undefined ? recommendedSetting(e) : undefined;
    this.threshold = checkThreshold(options.threshold ?? recommended!.threshold, 'threshold');
    this.topK = posInt(options.topK ?? 4, 'topK');
    this.guards = [...(options.guards ?? recommended!.guards)];
    for (const g of this.guards) {
      if (!g || typeof g.name !== 'string' || typeof g.check !== 'function') throw new InvalidOptionError(`${PKG}: every entry of option "guards" must be a SemanticGuard { name, check }`, { field: 'guards' });
      // A learned guard judges vectors of one embedder only: another's would be scored as noise.
      if (g.embedder && !embedderFits(g.embedder, e)) {
        throw new InvalidOptionError(
          `${PKG}: guard "${g.name}" was trained for ${g.embedder.family} (${g.embedder.dimensions}-d) vectors, but the embedder is "${e.id}" (${e.dimensions}-d); leave that guard out or use its embedder`,
          { field: 'guards' },
        );
      }
    }
    this.guardsNeedVectors = this.guards.some((g) => g.needsVectors === true);
    const sel = options.selector === undefined ? recommended!.selector : options.selector;
    if (sel !== false && (!sel || typeof sel.name !== 'string' || typeof sel.select !== 'function')) {
      throw new InvalidOptionError(`${PKG}: option "selector" must be a CandidateSelector { name, select } or false`, { field: 'selector' });
    }
    this.selector = sel === false ? undefined : sel;
    this.maxEntries = posInt(options.maxEntries ?? 100_000, 'maxEntries');
    this.maxTextLength = posInt(options.maxTextLength ?? 1_000, 'maxTextLength');
    const cacheSize = options.embeddingCacheSize ?? 10_000;
    if (!Number.isSafeInteger(cacheSize) || cacheSize < 0) throw new InvalidOptionError(`${PKG}: option "embeddingCacheSize" must be a non-negative integer`, { field: 'embeddingCacheSize' });
    this.vectors = new Lru(cacheSize);
    const h = options.hnsw ?? {};
    for (const k of Object.keys(h)) {
      if (!['m', 'efConstruction', 'ef', 'randomSeed'].includes(k)) throw new InvalidOptionError(`${PKG}: unknown option "hnsw.${k}"`, { field: `hnsw.${k}` });
    }
    this.params = {
      m: posInt(h.m ?? 16, 'hnsw.m'),
      efConstruction: posInt(h.efConstruction ?? 100, 'hnsw.efConstruction'),
      ef: posInt(h.ef ?? 64, 'hnsw.ef'),
      randomSeed: posInt(h.randomSeed ?? 100, 'hnsw.randomSeed'),
    };
    this.flatLimit = posInt(options.flatLimit ?? 1_024, 'flatLimit');
    if (options.persistDir !== undefined && (typeof options.persistDir !== 'string' || options.persistDir === '')) {
      throw new InvalidOptionError(`${PKG}: option "persistDir" must be a directory path`, { field: 'persistDir' });
    }
    this.persistDir = options.persistDir;
    if (options.rebuildFrom !== undefined && typeof options.rebuildFrom.scan !== 'function') {
      throw new InvalidOptionError(`${PKG}: option "rebuildFrom" must be a layer that implements scan()`, { field: 'rebuildFrom' });
    }
    this.rebuildSource = options.rebuildFrom;
    this.warn = options.onWarning ?? ((m) => process.emitWarning(m, { code: 'STRATA_SEMANTIC' }));
    this.name = options.name ?? 'semantic';
    this.partitionPrefix = `${e.id}\u0000${e.dimensions}\u0000`;
    const sweep = options.sweepIntervalMs ?? 60_000;
    if (!(sweep > 0)) throw new InvalidOptionError(`${PKG}: option "sweepIntervalMs" must be a positive number`, { field: 'sweepIntervalMs' });
    this.timers.push(setInterval(() => this.sweepExpired(), sweep).unref());
    if (options.snapshotIntervalMs !== undefined) {
      if (!(options.snapshotIntervalMs > 0) || !this.persistDir) {
        throw new InvalidOptionError(`${PKG}: option "snapshotIntervalMs" must be a positive number and needs "persistDir"`, { field: 'snapshotIntervalMs' });
      }
      this.timers.push(
        setInterval(() => {
          if (this.dirty) this.snapshot().catch((err: unknown) => this.warn(`${PKG}: background snapshot failed: ${(err as Error).message}`));
        }, options.snapshotIntervalMs).unref(),
      );
    }
  }

  /**
   * Loads hnswlib-node, then the snapshot (or rebuilds from `rebuildFrom`). Every operation
   * awaits it; call it yourself to load eagerly and surface a MissingDependencyError early.
   */
  ready(): Promise<void> {
    this.opening ??= this.open();
    return this.opening;
  }

  get size(): number {
    return this.records.size;
  }

  /** The matching setting in force: default threshold, guard names in order, selector name. */
  get matching(): { readonly threshold: number; readonly guards: readonly string[]; readonly selector: string | undefined } {
    return { threshold: this.threshold, guards: this.guards.map((g) => g.name), selector: this.selector?.name };
  }

  stats(): SemanticLayerStats {
    let indexed = 0;
    let graphs = 0;
    let bytes = 0;
    for (const p of this.partitions.values()) {
      indexed += p.size;
      bytes += p.indexBytes;
      if (p.mode === 'hnsw') graphs++;
    }
    return {
      entries: this.records.size,
      indexed,
      partitions: this.partitions.size,
      graphPartitions: graphs,
      indexBytes: bytes,
      embeddingCache: this.vectors.size,
      embeddings: this.counters.embeddings,
      embeddingCacheHits: this.counters.cacheHits,
    };
  }

  // ---- exact operations -------------------------------------------------------------

  async get(key: CacheKey): Promise<CacheEntry | undefined> {
    await this.ready();
    const r = this.records.get(key.id);
    if (!r) return undefined;
    if (isExpired(r.entry, Date.now())) {
      this.remove(key.id);
      return undefined;
    }
    this.touch(key.id, r);
    return r.entry;
  }

  async getMany(keys: readonly CacheKey[]): Promise<Array<CacheEntry | undefined>> {
    await this.ready();
    return Promise.all(keys.map((k) => this.get(k)));
  }

  async set(key: CacheKey, entry: CacheEntry, _ctx?: LayerContext): Promise<void> {
    await this.setMany([{ key, entry }]);
  }

  /** Writes entries; the texts that need vectors are embedded in one batch. */
  async setMany(items: ReadonlyArray<{ key: CacheKey; entry: CacheEntry }>): Promise<void> {
    await this.ready();
    await this.write(items);
  }

  private async write(items: ReadonlyArray<{ key: CacheKey; entry: CacheEntry }>): Promise<void> {
    this.assertOpen();
    const epoch = this.purgeEpoch;
    const now = Date.now();
    const plan = items.map(({ key, entry }) => {
      let w = this.writes.get(key.id);
      if (!w) this.writes.set(key.id, (w = { seq: 0, pending: 0 }));
      w.seq++;
      w.pending++;
      const live = !isExpired(entry, now);
      return { key, entry, w, seq: w.seq, text: live ? this.indexableText(entry) : undefined };
    });
    let vecs: Array<Float32Array | undefined>;
    try {
      const texts = plan.filter((p) => p.text !== undefined).map((p) => p.text!);
      const got = texts.length > 0 ? await this.embedTexts(texts) : [];
      let k = 0;
      vecs = plan.map((p) => (p.text !== undefined ? got[k++] : undefined));
    } finally {
      for (const p of plan) if (--p.w.pending === 0 && this.writes.get(p.key.id) === p.w) this.writes.delete(p.key.id);
    }
    if (this.closed) return;
    plan.forEach((p, i) => {
      // A newer write or a delete of this key, or a purge, happened while embedding: drop this one.
      if (p.w.seq !== p.seq || this.purgeEpoch !== epoch) return;
      this.put(p.key, p.entry, vecs[i]);
    });
  }

  async delete(key: CacheKey): Promise<boolean> {
    await this.ready();
    const w = this.writes.get(key.id);
    if (w) w.seq++; // a write of this key still embedding must not land after the delete
    return this.remove(key.id);
  }

  async deleteMany(keys: readonly CacheKey[]): Promise<number> {
    let n = 0;
    for (const k of keys) if (await this.delete(k)) n++;
    return n;
  }

  async clear(scope?: Pick<Scope, 'tenant' | 'namespace'>): Promise<number> {
    await this.ready();
    this.purgeEpoch++;
    if (!scope) {
      const n = this.records.size;
      for (const p of this.partitions.values()) p.drop();
      this.partitions.clear();
      this.records.clear();
      this.tagIndex.clear();
      this.scopeIndex.clear();
      this.dirty = true;
      return n;
    }
    const ids = [...(this.scopeIndex.get(scopeBaseId(scope)) ?? [])];
    for (const id of ids) this.remove(id);
    return ids.length;
  }

  async deleteByTag(tag: string, scope?: Pick<Scope, 'tenant' | 'namespace'>): Promise<number> {
    await this.ready();
    this.purgeEpoch++;
    const ids = this.tagIndex.get(tag);
    if (!ids) return 0;
    const base = scope ? scopeBaseId(scope) : undefined;
    let n = 0;
    for (const id of [...ids]) {
      const r = this.records.get(id);
      if (!r || (base !== undefined && r.base !== base)) continue;
      if (this.remove(id)) n++;
    }
    return n;
  }

  async deleteOlderVersions(scope: Scope): Promise<number> {
    await this.ready();
    this.purgeEpoch++;
    let n = 0;
    for (const id of [...(this.scopeIndex.get(scopeBaseId(scope)) ?? [])]) {
      const r = this.records.get(id);
      if (r && r.key.scope.version < scope.version && this.remove(id)) n++;
    }
    return n;
  }

  /** Pages through live entries; the cursor is an offset into a snapshot of key ids. */
  async scan(options: { scope?: Pick<Scope, 'tenant' | 'namespace'>; cursor?: string; count?: number } = {}): Promise<ScanPage> {
    await this.ready();
    const count = options.count ?? 100;
    const ids = options.scope ? [...(this.scopeIndex.get(scopeBaseId(options.scope)) ?? [])] : [...this.records.keys()];
    const start = options.cursor ? Number(options.cursor) : 0;
    const now = Date.now();
    const items: Array<{ key: CacheKey; entry: CacheEntry }> = [];
    let i = start;
    for (; i < ids.length && items.length < count; i++) {
      const r = this.records.get(ids[i]!);
      if (r && !isExpired(r.entry, now)) items.push({ key: r.key, entry: r.entry });
    }
    return i < ids.length ? { items, cursor: String(i) } : { items };
  }

  // ---- similarity -------------------------------------------------------------------

  async search(query: SemanticQuery, _ctx?: LayerContext): Promise<SemanticSearchResult> {
    await this.ready();
    this.assertOpen();
    const threshold = query.threshold === undefined ? this.threshold : checkThreshold(query.threshold, 'query.threshold');
    if (typeof query.text !== 'string' || query.text.length > this.maxTextLength) return {};
    const pk = this.partitionPrefix + query.partition;
    // Nothing stored in this exact partition: no candidate can exist, skip the embedding.
    if (!this.partitions.get(pk)?.size) return {};
    const [vec] = await this.embedTexts([query.text]);
    const part = this.partitions.get(pk);
    if (!part || !vec) return {};
    const sid = scopeId(query.scope);
    const now = Date.now();
    const rejected: RejectedCandidate[] = [];
    const candidates = part.search(vec, this.topK);
    // Candidates that pass the threshold and every guard; without a selector the first one wins.
    const accepted: Array<{ id: string; r: Rec; similarity: number; text: string }> = [];
    for (const c of candidates) {
      if (c.similarity < threshold) break; // most similar first
      const id = part.owner(c.label);
      const r = id === undefined ? undefined : this.records.get(id);
      if (!r || r.key.scopeId !== sid) continue;
      if (isExpired(r.entry, now)) {
        this.remove(id!);
        continue;
      }
      const text = r.entry.semantic!.text;
      let verdict: { guard: string; reason: string } | undefined;
      const input = this.guardsNeedVectors
        ? { query: query.text, candidate: text, similarity: c.similarity, threshold, queryVector: vec, candidateVector: part.vector(c.label) }
        : { query: query.text, candidate: text, similarity: c.similarity, threshold };
      for (const g of this.guards) {
        const v = g.check(input);
        if (!v.accept) {
          verdict = { guard: g.name, reason: v.reason };
          break;
        }
      }
      if (verdict) {
        rejected.push({ similarity: c.similarity, text, guard: verdict.guard, reason: verdict.reason });
        continue;
      }
      accepted.push({ id: id!, r, similarity: c.similarity, text });
      if (!this.selector) break;
    }
    let chosen = accepted[0];
    if (this.selector && accepted.length > 0) {
      const v = this.selector.select(query.text, accepted);
      chosen = v.pick === undefined ? undefined : accepted[v.pick];
      if (v.pick === undefined) {
        for (const a of accepted) rejected.push({ similarity: a.similarity, text: a.text, guard: this.selector.name, reason: v.reason });
      } else if (!chosen) {
        throw new StrataError('STRATA_LAYER', `${PKG}: selector "${this.selector.name}" picked candidate ${v.pick} of ${accepted.length}`);
      }
    }
    if (chosen) {
      this.touch(chosen.id, chosen.r);
      return { hit: { key: chosen.r.key, entry: chosen.r.entry, similarity: chosen.similarity, text: chosen.text }, ...(rejected.length ? { rejected } : {}) };
    }
    return rejected.length ? { rejected } : {};
  }

  // ---- lifecycle --------------------------------------------------------------------

  /** Removes expired entries now (also runs every `sweepIntervalMs`). Resolves the count. */
  sweepExpired(): number {
    if (!this.env) return 0;
    const now = Date.now();
    let n = 0;
    for (const [id, r] of [...this.records]) if (isExpired(r.entry, now) && this.remove(id)) n++;
    return n;
  }

  /** Rebuilds graphs that carry many deleted slots now, instead of in the background. */
  async compact(): Promise<void> {
    await this.ready();
    await Promise.all([...this.partitions.values()].map((p) => p.compact()));
  }

  /**
   * Writes an atomic snapshot to `persistDir` (temp directory + checksums + rename).
   * Resolves its path. Blocks the event loop while graphs are serialised (hnswlib writes
   * synchronously), so prefer quiet moments for large indexes.
   */
  async snapshot(): Promise<string | undefined> {
    if (!this.persistDir) throw new InvalidOptionError(`${PKG}: snapshot() needs option "persistDir"`, { field: 'persistDir' });
    await this.ready();
    while (this.snapshotting) await this.snapshotting.catch(() => undefined);
    const p = this.writeSnapshotNow();
    this.snapshotting = p;
    try {
      return await p;
    } finally {
      this.snapshotting = undefined;
    }
  }

  /**
   * Re-indexes every entry of `source` (e.g. the L2 Redis layer) that carries a semantic
   * descriptor: pages through its `scan()`, embedding each page in one batch. Resolves the count.
   */
  async rebuildFrom(source: LayerV1, options: { scope?: Pick<Scope, 'tenant' | 'namespace'>; pageSize?: number } = {}): Promise<number> {
    if (typeof source.scan !== 'function') throw new InvalidOptionError(`${PKG}: rebuildFrom() needs a layer that implements scan()`, { field: 'rebuildFrom' });
    await this.ready();
    return this.importFrom(source, options);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    for (const t of this.timers) clearInterval(t);
    if (this.opening) {
      await this.opening.catch(() => undefined);
      if (this.persistDir && this.dirty && this.env) {
        try {
          await this.snapshot();
        } catch (e) {
          this.warn(`${PKG}: final snapshot failed: ${(e as Error).message}`);
        }
      }
    }
    this.closed = true;
    await Promise.all([...this.partitions.values()].map((p) => p.idle()));
    for (const p of this.partitions.values()) p.drop();
    this.partitions.clear();
    this.records.clear();
    this.tagIndex.clear();
    this.scopeIndex.clear();
    this.vectors.clear();
  }

  // ---- internals --------------------------------------------------------------------

  private async open(): Promise<void> {
    const hnsw: HnswModule = await loadHnsw();
    this.env = { hnsw, params: this.params, dims: this.embedder.dimensions, flatLimit: this.flatLimit };
    let loaded = false;
    if (this.persistDir) {
      try {
        loaded = await this.loadSnapshot(this.persistDir);
      } catch (e) {
        const why = e instanceof SnapshotRejected ? e.message : `unreadable (${(e as Error).message})`;
        this.warn(`${PKG}: discarded the snapshot in ${this.persistDir}: ${why}; ${this.rebuildSource ? 'rebuilding from option "rebuildFrom"' : 'starting empty'}`);
        await discardSnapshot(this.persistDir).catch(() => undefined);
      }
    }
    if (!loaded && this.rebuildSource) await this.importFrom(this.rebuildSource, {});
  }

  private async importFrom(source: LayerV1, options: { scope?: Pick<Scope, 'tenant' | 'namespace'>; pageSize?: number }): Promise<number> {
    let cursor: string | undefined;
    let n = 0;
    const now = Date.now();
    do {
      const page = await source.scan!({ ...(options.scope ? { scope: options.scope } : {}), count: options.pageSize ?? 256, ...(cursor ? { cursor } : {}) });
      const items = page.items.filter((it) => !isExpired(it.entry, now) && !this.records.has(it.key.id));
      if (items.length > 0) {
        await this.write(items);
        n += items.length;
      }
      cursor = page.cursor;
    } while (cursor);
    return n;
  }

  private indexableText(entry: CacheEntry): string | undefined {
    const s = entry.semantic;
    if (!s || typeof s.text !== 'string' || typeof s.partition !== 'string') return undefined;
    return s.text.length <= this.maxTextLength ? s.text : undefined;
  }

  private put(key: CacheKey, entry: CacheEntry, vec: Float32Array | undefined): void {
    this.remove(key.id);
    if (isExpired(entry, Date.now())) return;
    const rec: Rec = { key, entry, base: scopeBaseId(key.scope), label: -1 };
    if (vec && entry.semantic) {
      const pk = this.partitionPrefix + entry.semantic.partition;
      let part = this.partitions.get(pk);
      if (!part) this.partitions.set(pk, (part = new Partition(pk, this.env!)));
      rec.part = part;
      rec.label = part.add(vec, key.id);
    }
    this.records.set(key.id, rec);
    for (const tag of entry.tags) addTo(this.tagIndex, tag, key.id);
    addTo(this.scopeIndex, rec.base, key.id);
    this.dirty = true;
    while (this.records.size > this.maxEntries) this.remove(this.records.keys().next().value as string);
  }

  /** Removes an entry everywhere: map, tag/scope indexes and the vector index (a real removal). */
  private remove(id: string): boolean {
    const r = this.records.get(id);
    if (!r) return false;
    this.records.delete(id);
    for (const tag of r.entry.tags) removeFrom(this.tagIndex, tag, id);
    removeFrom(this.scopeIndex, r.base, id);
    if (r.part) {
      r.part.remove(r.label);
      if (r.part.size === 0) {
        r.part.drop();
        this.partitions.delete(r.part.key);
      }
    }
    this.dirty = true;
    return true;
  }

  private touch(id: string, r: Rec): void {
    this.records.delete(id);
    this.records.set(id, r);
  }

  /** Vectors for texts, through the LRU and de-duplicated against embeddings already running. */
  private async embedTexts(texts: readonly string[]): Promise<Float32Array[]> {
    const out: Array<Float32Array | Promise<Float32Array>> = new Array(texts.length);
    const missing: string[] = [];
    const missingAt = new Map<string, number[]>();
    texts.forEach((t, i) => {
      const hit = this.vectors.get(t);
      if (hit) {
        this.counters.cacheHits++;
        out[i] = hit;
        return;
      }
      const running = this.inflight.get(t);
      if (running) {
        out[i] = running;
        return;
      }
      const at = missingAt.get(t);
      if (at) at.push(i);
      else {
        missingAt.set(t, [i]);
        missing.push(t);
      }
    });
    if (missing.length > 0) {
      const batch = this.embedder.embed(missing).then((vs) => {
        if (vs.length !== missing.length) throw new StrataError('STRATA_LAYER', `${PKG}: embedder "${this.embedder.id}" returned ${vs.length} vectors for ${missing.length} texts`);
        for (const v of vs) {
          if (v.length !== this.embedder.dimensions) {
            throw new StrataError('STRATA_LAYER', `${PKG}: embedder "${this.embedder.id}" returned a ${v.length}-d vector, it declares ${this.embedder.dimensions}`);
          }
        }
        this.counters.embeddings += vs.length;
        return vs;
      });
      missing.forEach((t, k) => {
        const p = batch.then((vs) => {
          const v = vs[k]!;
          this.vectors.set(t, v);
          return v;
        });
        this.inflight.set(t, p);
        void p.then(
          () => this.inflight.delete(t),
          () => this.inflight.delete(t),
        );
        for (const i of missingAt.get(t)!) out[i] = p;
      });
    }
    return Promise.all(out);
  }

  private async loadSnapshot(dir: string): Promise<boolean> {
    const snap = await openSnapshot(dir, { embedderId: this.embedder.id, dimensions: this.embedder.dimensions });
    if (!snap) return false;
    const env = this.env!;
    const meta = JSON.parse((await snap.read('partitions.json')).toString('utf8')) as Array<Omit<PartitionState, 'vectors'> & { vectorOffset?: number; graph?: string }>;
    const vbuf = await snap.read('vectors.f32');
    if (vbuf.byteLength % 4 !== 0) throw new SnapshotRejected('vectors.f32 is not a whole number of floats');
    const floats = vbuf.byteOffset % 4 === 0 ? new Float32Array(vbuf.buffer, vbuf.byteOffset, vbuf.byteLength / 4) : new Float32Array(Uint8Array.from(vbuf).buffer);
    // Build everything aside; the layer's state is replaced only when all of it loaded.
    const records = new Map<string, Rec>();
    const owners = meta.map(() => new Map<number, string>());
    const pending: Array<{ rec: Rec; p: number }> = [];
    const lines = (await snap.read('entries.jsonl')).toString('utf8').split('\n');
    for (const line of lines) {
      if (line === '') continue;
      const { k, e, p, l } = JSON.parse(line) as { k: CacheKey; e: CacheEntry; p?: number; l?: number };
      const rec: Rec = { key: k, entry: e, base: scopeBaseId(k.scope), label: l ?? -1 };
      if (p !== undefined) {
        if (!owners[p]) throw new SnapshotRejected(`entry ${k.id} names partition ${p}, which does not exist`);
        owners[p].set(rec.label, k.id);
        pending.push({ rec, p });
      }
      records.set(k.id, rec);
    }
    if (records.size !== snap.manifest.records) throw new SnapshotRejected(`manifest says ${snap.manifest.records} entries, found ${records.size}`);
    const partitions = new Map<string, Partition>();
    const byIndex: Partition[] = [];
    meta.forEach((m, i) => {
      if (!m.key.startsWith(this.partitionPrefix)) throw new SnapshotRejected(`partition ${m.key.slice(0, 40)} belongs to another embedder`);
      const state: PartitionState = { ...m, ...(m.mode === 'flat' ? { vectors: floats.subarray(m.vectorOffset!, m.vectorOffset! + m.labels.length * env.dims) } : {}) };
      const p = Partition.restore(state, env, owners[i]!, m.graph ? snap.file(m.graph) : undefined);
      partitions.set(p.key, p);
      byIndex.push(p);
    });
    for (const { rec, p } of pending) rec.part = byIndex[p];
    this.partitions = partitions;
    this.records = records;
    for (const [id, r] of records) {
      for (const tag of r.entry.tags) addTo(this.tagIndex, tag, id);
      addTo(this.scopeIndex, r.base, id);
    }
    this.sweepExpired();
    this.dirty = false;
    return true;
  }

  private async writeSnapshotNow(): Promise<string | undefined> {
    const dims = this.embedder.dimensions;
    const path = await writeSnapshot(this.persistDir!, (tmp) => {
      // Runs synchronously: metadata, flat vectors and graphs all describe the same moment.
      const parts = [...this.partitions.values()];
      const partIndex = new Map(parts.map((p, i) => [p, i]));
      const meta: Array<Omit<PartitionState, 'vectors'> & { vectorOffset?: number; graph?: string }> = [];
      const flatChunks: Float32Array[] = [];
      const files: SnapshotFile[] = [];
      let offset = 0;
      parts.forEach((p, i) => {
        const { vectors, ...state } = p.exportState();
        if (state.mode === 'flat') {
          meta.push({ ...state, vectorOffset: offset });
          flatChunks.push(vectors!);
          offset += vectors!.length;
        } else {
          const name = `graph-${i}.bin`;
          p.writeGraph(join(tmp, name));
          meta.push({ ...state, graph: name });
          files.push({ name });
        }
      });
      const lines: string[] = [];
      for (const r of this.records.values()) {
        const p = r.part ? partIndex.get(r.part) : undefined;
        lines.push(JSON.stringify(p === undefined ? { k: r.key, e: r.entry } : { k: r.key, e: r.entry, p, l: r.label }));
      }
      const vecBuf = Buffer.alloc(offset * 4);
      let at = 0;
      for (const c of flatChunks) {
        Buffer.from(c.buffer, c.byteOffset, c.byteLength).copy(vecBuf, at);
        at += c.byteLength;
      }
      this.dirty = false;
      return {
        files: [
          { name: 'partitions.json', data: JSON.stringify(meta) },
          { name: 'entries.jsonl', data: lines.join('\n') + '\n' },
          { name: 'vectors.f32', data: vecBuf },
          ...files,
        ],
        manifest: { createdAt: Date.now(), embedderId: this.embedder.id, dimensions: dims, records: this.records.size },
      };
    }).catch((e: unknown) => {
      this.dirty = true;
      throw e;
    });
    return path;
  }

  private assertOpen(): void {
    if (this.closed) throw new StrataError('STRATA_CLOSED', `${PKG}: layer "${this.name}" is closed`);
  }
}

function checkThreshold(v: number, field: string): number {
  if (typeof v !== 'number' || !(v >= -1 && v <= 1)) throw new InvalidOptionError(`${PKG}: "${field}" is a cosine similarity in [-1, 1]`, { field });
  return v;
}

function posInt(v: number, field: string): number {
  if (!Number.isSafeInteger(v) || v < 1) throw new InvalidOptionError(`${PKG}: option "${field}" must be a positive integer`, { field });
  return v;
}

function addTo(index: Map<string, Set<string>>, k: string, id: string): void {
  let s = index.get(k);
  if (!s) index.set(k, (s = new Set()));
  s.add(id);
}

function removeFrom(index: Map<string, Set<string>>, k: string, id: string): void {
  const s = index.get(k);
  if (!s) return;
  s.delete(id);
  if (s.size === 0) index.delete(k);
}
