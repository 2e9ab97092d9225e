import {
  type CacheEntry,
  type CacheKey,
  InvalidOptionError,
  LAYER_SPECIFICATION_VERSION,
  type LayerCapabilities,
  type LayerV1,
  type ScanPage,
  type Scope,
  isExpired,
  scopeBaseId,
} from '@strata-cache/core';
import { LRUCache } from 'lru-cache';

export interface MemoryLayerOptions {
  /** Most entries held; the least recently used go first. @default 10_000 */
  maxEntries?: number;
  /** Most bytes held (approximate: UTF-16 length of the entry's JSON × 2). Unset = count-bounded only. */
  maxBytes?: number;
  /** Upper bound on any entry's lifetime in this layer, ms (entries also keep their own TTL). */
  maxTtlMs?: number;
  /**
   * Deep-freeze entries when they are stored, so a caller that mutates a returned value gets
   * a TypeError instead of silently corrupting the cache for everyone else. @default true
   */
  freeze?: boolean;
  /** Layer name in stats and events. @default "memory" */
  name?: string;
}

interface Record_ {
  readonly key: CacheKey;
  readonly entry: CacheEntry;
  readonly base: string;
}

const CAPABILITIES: LayerCapabilities = Object.freeze({
  nativeTtl: true,
  batch: false,
  semantic: false,
  shared: false,
  tags: true,
  remote: false,
});

/** L1: an in-process LRU (lru-cache). Synchronous, so a hit costs no promise round-trip. */
export class MemoryLayer implements LayerV1 {
  readonly specificationVersion = LAYER_SPECIFICATION_VERSION;
  readonly name: string;
  readonly capabilities = CAPABILITIES;
  private readonly lru: LRUCache<string, Record_>;
  private readonly freeze: boolean;
  private readonly maxTtlMs: number | undefined;
  /** tag → key ids; cleaned whenever an entry leaves the LRU, so it never outlives its entries. */
  private readonly tagIndex = new Map<string, Set<string>>();
  /** tenant/namespace → key ids, for clear(scope) and version purges without a full scan. */
  private readonly scopeIndex = new Map<string, Set<string>>();

  constructor(options: MemoryLayerOptions = {}) {
    const known = new Set(['maxEntries', 'maxBytes', 'maxTtlMs', 'freeze', 'name']);
    for (const k of Object.keys(options)) {
      if (!known.has(k)) throw new InvalidOptionError(`@strata-cache/layer-memory: unknown option "${k}"`, { field: k });
    }
    const maxEntries = options.maxEntries ?? 10_000;
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) {
      throw new InvalidOptionError('@strata-cache/layer-memory: option "maxEntries" must be a positive integer', { field: 'maxEntries' });
    }
    if (options.maxBytes !== undefined && !(Number.isSafeInteger(options.maxBytes) && options.maxBytes > 0)) {
      throw new InvalidOptionError('@strata-cache/layer-memory: option "maxBytes" must be a positive integer', { field: 'maxBytes' });
    }
    if (options.maxTtlMs !== undefined && !(options.maxTtlMs > 0)) {
      throw new InvalidOptionError('@strata-cache/layer-memory: option "maxTtlMs" must be a positive number', { field: 'maxTtlMs' });
    }
    this.name = options.name ?? 'memory';
    this.freeze = options.freeze ?? true;
    this.maxTtlMs = options.maxTtlMs;
    this.lru = new LRUCache<string, Record_>({
      max: maxEntries,
      ...(options.maxBytes !== undefined
        ? { maxSize: options.maxBytes, sizeCalculation: (r: Record_) => Math.max(1, approxBytes(r.entry)) }
        : {}),
      // Entries carry their own expiry (createdAt + ttlMs); lru-cache's TTL only bounds memory.
      ttlAutopurge: false,
      allowStale: false,
      dispose: (r, keyId, reason) => this.unindex(keyId, r, reason === 'set'),
    });
  }

  get size(): number {
    return this.lru.size;
  }

  get(key: CacheKey): CacheEntry | undefined {
    const r = this.lru.get(key.id);
    if (r === undefined) return undefined;
    if (isExpired(r.entry, Date.now())) {
      this.lru.delete(key.id);
      return undefined;
    }
    return r.entry;
  }

  set(key: CacheKey, entry: CacheEntry): void {
    const stored = this.freeze ? deepFreeze(entry) : entry;
    const remaining = entry.ttlMs === undefined ? undefined : entry.createdAt + entry.ttlMs - Date.now();
    if (remaining !== undefined && remaining <= 0) {
      this.lru.delete(key.id);
      return;
    }
    const ttl = minDefined(remaining, this.maxTtlMs);
    const base = scopeBaseId(key.scope);
    this.lru.set(key.id, { key, entry: stored, base }, ttl === undefined ? {} : { ttl: Math.ceil(ttl) });
    if (!this.lru.has(key.id)) return; // too large for maxBytes: lru-cache refused it
    for (const tag of stored.tags) addTo(this.tagIndex, tag, key.id);
    addTo(this.scopeIndex, base, key.id);
  }

  delete(key: CacheKey): boolean {
    return this.lru.delete(key.id);
  }

  clear(scope?: Pick<Scope, 'tenant' | 'namespace'>): void {
    if (!scope) {
      this.lru.clear();
      return;
    }
    const ids = this.scopeIndex.get(scopeBaseId(scope));
    if (ids) for (const id of [...ids]) this.lru.delete(id);
  }

  deleteByTag(tag: string, scope?: Pick<Scope, 'tenant' | 'namespace'>): number {
    const ids = this.tagIndex.get(tag);
    if (!ids) return 0;
    const base = scope ? scopeBaseId(scope) : undefined;
    let n = 0;
    for (const id of [...ids]) {
      const r = this.lru.peek(id, { allowStale: true });
      if (base !== undefined && r && r.base !== base) continue;
      if (this.lru.delete(id)) n++;
    }
    return n;
  }

  deleteOlderVersions(scope: Scope): number {
    const ids = this.scopeIndex.get(scopeBaseId(scope));
    if (!ids) return 0;
    let n = 0;
    for (const id of [...ids]) {
      const r = this.lru.peek(id, { allowStale: true });
      if (r && r.key.scope.version < scope.version && this.lru.delete(id)) n++;
    }
    return n;
  }

  /** Pages through live entries; the cursor is an offset into a snapshot of key ids. */
  scan(options: { scope?: Pick<Scope, 'tenant' | 'namespace'>; cursor?: string; count?: number } = {}): ScanPage {
    const count = options.count ?? 100;
    const ids = options.scope ? [...(this.scopeIndex.get(scopeBaseId(options.scope)) ?? [])] : [...this.lru.keys()];
    const start = options.cursor ? Number(options.cursor) : 0;
    const items: Array<{ key: CacheKey; entry: CacheEntry }> = [];
    let i = start;
    for (; i < ids.length && items.length < count; i++) {
      const r = this.lru.peek(ids[i]!);
      if (r) items.push({ key: r.key, entry: r.entry });
    }
    return i < ids.length ? { items, cursor: String(i) } : { items };
  }

  close(): void {
    this.lru.clear();
  }

  /**
   * lru-cache calls dispose before the key leaves its map, and on replacement before the new
   * value is in place: `replaced` tells the two apart. set() indexes the new value's tags.
   */
  private unindex(keyId: string, r: Record_, replaced: boolean): void {
    for (const tag of r.entry.tags) removeFrom(this.tagIndex, tag, keyId);
    if (!replaced) removeFrom(this.scopeIndex, r.base, keyId);
  }
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

function minDefined(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.min(a, b);
}

function approxBytes(entry: CacheEntry): number {
  try {
    return JSON.stringify(entry).length * 2;
  } catch {
    return 1024;
  }
}

function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return value;
  if (ArrayBuffer.isView(value)) return value; // typed arrays cannot be frozen
  Object.freeze(value);
  for (const k of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[k]);
  return value;
}
