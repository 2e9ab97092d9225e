import type { CacheEntry, CacheKey, LayerCapabilities, LayerV1, ScanPage, Scope } from '@strata-cache/core/layer-kit';
import {
  InvalidOptionError,
  LAYER_SPECIFICATION_VERSION,
  TagScopeIndex,
  checkUnknownKeys,
  closedError,
  copyEntry,
  copyValue,
} from '@strata-cache/core/layer-kit';
import { LRUCache } from 'lru-cache';

export interface MemoryLayerOptions {
  /** Most entries held; the least recently used go first. @default 10_000 */
  maxEntries?: number | undefined;
  /** Most bytes held (approximate: UTF-16 length of the entry's JSON × 2). Unset = count-bounded only. */
  maxBytes?: number | undefined;
  /** Upper bound on any entry's lifetime in this layer, ms (entries also keep their own TTL). */
  maxTtlMs?: number | undefined;
  /**
   * Store a deep-frozen copy of each entry and hand that copy out on every hit (no copy per hit);
   * a caller that mutates a returned value gets a TypeError instead of corrupting the cache.
   * With `false` the stored copy stays mutable and every `get` returns a fresh deep copy of it
   * (for consumers that must receive mutable objects; costs a copy per hit). @default true
   */
  freeze?: boolean | undefined;
  /** Layer name in stats and events. @default "memory" */
  name?: string | undefined;
}

/** Every default of `MemoryLayer`, in one place. */
export const MEMORY_LAYER_DEFAULTS = Object.freeze({ maxEntries: 10_000, freeze: true, name: 'memory' });

const OPTION_KEYS = { maxEntries: true, maxBytes: true, maxTtlMs: true, freeze: true, name: true } as const satisfies Record<keyof MemoryLayerOptions, true>;

interface Record_ {
  readonly key: CacheKey;
  /** The key's scope id and schema, kept beside the entry so a read compares them without loading the key object. */
  readonly scopeId: string;
  readonly schema: number;
  readonly entry: CacheEntry;
  /** Epoch ms after which this layer no longer serves it: the entry's expiry, capped by maxTtlMs. */
  readonly expiresAt: number;
}

const CAPABILITIES: LayerCapabilities = Object.freeze({
  nativeTtl: true,
  batch: true,
  semantic: false,
  shared: false,
  tags: true,
  remote: false,
});

const PKG = '@strata-cache/layer-memory';

/** L1: an in-process LRU (lru-cache). Synchronous, so a hit costs no promise round-trip. */
export class MemoryLayer implements LayerV1 {
  readonly specificationVersion = LAYER_SPECIFICATION_VERSION;
  readonly name: string;
  readonly capabilities = CAPABILITIES;
  /**
   * Entries are held under their key's hash: it covers scope, profile and request (a flat string
   * straight from the hash function, cheaper to look up than the composed id). The stored key is
   * compared on every read, so a hand-made key reusing a hash in another scope can never match.
   */
  private readonly lru: LRUCache<string, Record_>;
  private readonly freeze: boolean;
  private readonly maxTtlMs: number | undefined;
  /** Current tags and scope of every entry; cleaned whenever an entry leaves the LRU. */
  private readonly index = new TagScopeIndex();
  private closed = false;

  constructor(options: MemoryLayerOptions = {}) {
    checkUnknownKeys(options, OPTION_KEYS, '', PKG);
    const maxEntries = options.maxEntries ?? MEMORY_LAYER_DEFAULTS.maxEntries;
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) {
      throw new InvalidOptionError(`${PKG}: option "maxEntries" must be a positive integer`, { field: 'maxEntries' });
    }
    if (options.maxBytes !== undefined && !(Number.isSafeInteger(options.maxBytes) && options.maxBytes > 0)) {
      throw new InvalidOptionError(`${PKG}: option "maxBytes" must be a positive integer`, { field: 'maxBytes' });
    }
    if (options.maxTtlMs !== undefined && !(typeof options.maxTtlMs === 'number' && options.maxTtlMs > 0 && Number.isFinite(options.maxTtlMs))) {
      throw new InvalidOptionError(`${PKG}: option "maxTtlMs" must be a positive finite number`, { field: 'maxTtlMs' });
    }
    if (options.freeze !== undefined && typeof options.freeze !== 'boolean') {
      throw new InvalidOptionError(`${PKG}: option "freeze" must be a boolean`, { field: 'freeze' });
    }
    if (options.name !== undefined && (typeof options.name !== 'string' || options.name === '')) {
      throw new InvalidOptionError(`${PKG}: option "name" must be a non-empty string`, { field: 'name' });
    }
    this.name = options.name ?? MEMORY_LAYER_DEFAULTS.name;
    this.freeze = options.freeze ?? MEMORY_LAYER_DEFAULTS.freeze;
    this.maxTtlMs = options.maxTtlMs;
    this.lru = new LRUCache<string, Record_>({
      max: maxEntries,
      ...(options.maxBytes !== undefined ? { maxSize: options.maxBytes, sizeCalculation: (r: Record_) => Math.max(1, approxBytes(r.entry)) } : {}),
      // Entries carry their own expiry (createdAt + ttlMs, capped by maxTtlMs), checked on every
      // read; lru-cache's own TTL tracking would check a second clock on every get.
      // On replacement set() re-indexes the new entry itself (its current tags are the truth).
      dispose: (_r, keyId, reason) => {
        if (reason !== 'set') this.index.remove(keyId);
      },
    });
  }

  get size(): number {
    return this.lru.size;
  }

  get(key: CacheKey): CacheEntry | undefined {
    if (this.closed) throw this.closedError();
    const r = this.lru.get(key.hash);
    if (r === undefined || r.scopeId !== key.scopeId || r.schema !== key.schema) return undefined;
    if (r.expiresAt <= Date.now()) {
      this.lru.delete(key.hash);
      return undefined;
    }
    return this.freeze ? r.entry : copyValue(r.entry);
  }

  set(key: CacheKey, entry: CacheEntry): void {
    if (this.closed) throw this.closedError();
    const now = Date.now();
    const expiresAt = Math.min(expiryOf(entry), this.maxTtlMs === undefined ? Number.POSITIVE_INFINITY : now + this.maxTtlMs);
    if (expiresAt <= now) {
      this.delete(key);
      return;
    }
    // A copy: the caller keeps its object, and nothing it does to it reaches the cache.
    const stored = copyEntry(entry, { freeze: this.freeze });
    this.lru.set(key.hash, { key, scopeId: key.scopeId, schema: key.schema, entry: stored, expiresAt });
    if (!this.lru.has(key.hash)) {
      this.index.remove(key.hash); // too large for maxBytes: lru-cache refused it
      return;
    }
    this.index.add(key.hash, key.scope, stored.tags);
  }

  delete(key: CacheKey): boolean {
    if (this.closed) throw this.closedError();
    const r = this.lru.peek(key.hash, { allowStale: true });
    return r !== undefined && r.scopeId === key.scopeId && r.schema === key.schema && this.lru.delete(key.hash);
  }

  getMany(keys: readonly CacheKey[]): Array<CacheEntry | undefined> {
    return keys.map((k) => this.get(k));
  }

  setMany(items: ReadonlyArray<{ key: CacheKey; entry: CacheEntry }>): void {
    for (const it of items) this.set(it.key, it.entry);
  }

  deleteMany(keys: readonly CacheKey[]): number {
    let n = 0;
    for (const k of keys) if (this.delete(k)) n++;
    return n;
  }

  clear(scope?: Pick<Scope, 'tenant' | 'namespace'>): number {
    if (this.closed) throw this.closedError();
    if (!scope) {
      const n = this.lru.size;
      this.lru.clear();
      return n;
    }
    let n = 0;
    for (const id of this.index.inScope(scope)) if (this.lru.delete(id)) n++;
    return n;
  }

  deleteByTag(tag: string, scope?: Pick<Scope, 'tenant' | 'namespace'>): number {
    if (this.closed) throw this.closedError();
    let n = 0;
    for (const id of this.index.withTag(tag, scope)) if (this.lru.delete(id)) n++;
    return n;
  }

  deleteOlderVersions(scope: Scope): number {
    if (this.closed) throw this.closedError();
    let n = 0;
    for (const id of this.index.inScope(scope)) {
      const r = this.lru.peek(id);
      if (r && r.key.scope.version < scope.version && this.lru.delete(id)) n++;
    }
    return n;
  }

  /** Pages through live entries; the cursor is an offset into a snapshot of key ids. */
  scan(options: { scope?: Pick<Scope, 'tenant' | 'namespace'> | undefined; cursor?: string | undefined; count?: number | undefined } = {}): ScanPage {
    if (this.closed) throw this.closedError();
    const count = options.count ?? 100;
    const ids = options.scope ? this.index.inScope(options.scope) : [...this.lru.keys()];
    const start = options.cursor ? Number(options.cursor) : 0;
    const items: Array<{ key: CacheKey; entry: CacheEntry }> = [];
    let i = start;
    for (; i < ids.length && items.length < count; i++) {
      const r = this.lru.peek(ids[i]!);
      if (r && r.expiresAt > Date.now()) items.push({ key: r.key, entry: this.freeze ? r.entry : copyValue(r.entry) });
    }
    return i < ids.length ? { items, cursor: String(i) } : { items };
  }

  /** Drops every entry; afterwards every operation throws `STRATA_CLOSED`. A second call is a no-op. */
  close(): void {
    if (this.closed) return;
    this.lru.clear();
    this.index.clear();
    this.closed = true;
  }

  private closedError() {
    return closedError(`${PKG}: MemoryLayer "${this.name}"`);
  }
}

function expiryOf(entry: CacheEntry): number {
  return entry.ttlMs === undefined ? Number.POSITIVE_INFINITY : entry.createdAt + entry.ttlMs;
}

function approxBytes(entry: CacheEntry): number {
  try {
    return JSON.stringify(entry).length * 2;
  } catch {
    return 1024;
  }
}
