import type { FleetClock, InvalidationMessage, InvalidationWatermark } from './bus.js';
import { type CacheEntry, entryStamp } from './entry.js';
import type { CacheKey } from './fingerprint.js';
import { type Scope, parseScopeId, scopeBaseId } from './scope.js';

/**
 * The stable text id of what an invalidation targets (one watermark per id, max-merged):
 * `<type>|<tenant/namespace or *>|<rest>` — `key|<scope>|<key id>`, `tag|<scope or *>|<tag>`,
 * `clear|<scope or *>|`, `version|<scope>|`. Tenant and namespace are percent-encoded (as in
 * scope ids) and so is the tag: no part contains a raw `|`, and the second field always names the
 * tenant+namespace a store folds the watermark into (see `WatermarkStore.prune`).
 */
export function watermarkId(m: InvalidationMessage): string {
  switch (m.type) {
    case 'key':
      return 'key|' + scopeBaseId(m.scope) + '|' + m.keyId;
    case 'tag':
      return 'tag|' + (m.scope ? scopeBaseId(m.scope) : '*') + '|' + encodeURIComponent(m.tag);
    case 'clear':
      return 'clear|' + (m.scope ? scopeBaseId(m.scope) : '*') + '|';
    case 'scope-version':
      return 'version|' + scopeBaseId(m.scope) + '|';
  }
}

/**
 * The watermark a store keeps as `id` with `score` (`at`, or the version for `version|` ids), or
 * undefined for an id this version cannot read (it is then ignored).
 */
export function watermarkFromId(id: string, score: number): InvalidationWatermark | undefined {
  if (!Number.isFinite(score)) return undefined;
  const a = id.indexOf('|');
  const b = a < 0 ? -1 : id.indexOf('|', a + 1);
  if (b < 0) return undefined;
  const type = id.slice(0, a);
  const base = id.slice(a + 1, b);
  const rest = id.slice(b + 1);
  try {
    const scope = base === '*' ? undefined : baseScope(base);
    switch (type) {
      case 'key': {
        const m = /^v\d+:([^:]+):[A-Za-z0-9_-]+$/.exec(rest);
        if (!scope || !m) return undefined;
        const keyScope = parseScopeId(m[1]!);
        if (keyScope.tenant !== scope.tenant || keyScope.namespace !== scope.namespace) return undefined;
        return { message: { type: 'key', keyId: rest, scope: keyScope }, at: score };
      }
      case 'tag': {
        if (rest === '') return undefined;
        const tag = decodeURIComponent(rest);
        return { message: scope ? { type: 'tag', tag, scope } : { type: 'tag', tag }, at: score };
      }
      case 'clear':
        return { message: scope ? { type: 'clear', scope } : { type: 'clear' }, at: score };
      case 'version':
        if (!scope || !Number.isSafeInteger(score) || score < 0) return undefined;
        return { message: { type: 'scope-version', scope: { ...scope, version: score } }, at: 0 };
      default:
        return undefined;
    }
  } catch {
    return undefined;
  }
}

/** What a store ranks a watermark by: its version for `scope-version`, else `at`. */
export function watermarkScore(w: InvalidationWatermark): number {
  return w.message.type === 'scope-version' ? w.message.scope.version : w.at;
}

function baseScope(base: string): Pick<Scope, 'tenant' | 'namespace'> {
  const s = parseScopeId(base + '/v0');
  return { tenant: s.tenant, namespace: s.namespace };
}

/** The process's own clock, as a FleetClock: exact for processes that share it (one process). */
export const localClock: FleetClock = Object.freeze({
  now: () => performance.timeOrigin + performance.now(),
  errorMs: () => 0,
});

interface ScopeMarks {
  clear: number;
  version: number;
  /**
   * Key watermarks of this tenant+namespace by key hash (the hash covers the rest of the key id):
   * looked up only for scopes that have any, with a flat string — a key id is built by
   * concatenation, and hashing one as a Map key first copies it.
   */
  keys: Map<string, number> | undefined;
}

interface TagMarks {
  /** Watermark of the tag in every scope. */
  any: number;
  /** tenant → namespace → watermark of the tag in that tenant+namespace. */
  scoped: Map<string, Map<string, number>> | undefined;
}

const NONE = Number.NEGATIVE_INFINITY;

/**
 * The watermarks this process knows, laid out for the read path: an entry is checked with one
 * compare when there are none, else with a Map lookup for its key, one for its scope and one
 * per tag — no I/O, no allocation. `all` holds every watermark by id for saving, re-asserting
 * and pruning.
 */
export class WatermarkTable {
  private global = NONE;
  private readonly scopes = new Map<string, Map<string, ScopeMarks>>();
  private readonly tags = new Map<string, TagMarks>();
  private readonly all = new Map<string, InvalidationWatermark>();

  /** Number of watermarks held. */
  get size(): number {
    return this.all.size;
  }

  get(id: string): InvalidationWatermark | undefined {
    return this.all.get(id);
  }

  values(): IterableIterator<InvalidationWatermark> {
    return this.all.values();
  }

  /** Adds a watermark, or raises the one of the same target; true when it changed anything. */
  add(message: InvalidationMessage, at: number): boolean {
    const w: InvalidationWatermark = { message, at };
    const id = watermarkId(message);
    const prev = this.all.get(id);
    if (prev !== undefined && watermarkScore(prev) >= watermarkScore(w)) return false;
    this.all.set(id, w);
    switch (message.type) {
      case 'key':
        (this.scope(message.scope).keys ??= new Map()).set(hashOf(message.keyId), at);
        break;
      case 'tag': {
        let t = this.tags.get(message.tag);
        if (!t) this.tags.set(message.tag, (t = { any: NONE, scoped: undefined }));
        if (!message.scope) t.any = at;
        else setNested((t.scoped ??= new Map()), message.scope, at);
        break;
      }
      case 'clear':
        if (!message.scope) this.global = at;
        else this.scope(message.scope).clear = at;
        break;
      case 'scope-version':
        this.scope(message.scope).version = message.scope.version;
        break;
    }
    return true;
  }

  /**
   * True when a watermark covers this entry (its key, its tenant+namespace or an older version
   * of it, one of its current tags, everything) at or after the entry's stamp.
   */
  refuses(key: CacheKey, entry: Pick<CacheEntry, 'createdAt' | 'stamp' | 'tags'>): boolean {
    if (this.all.size === 0) return false;
    const stamp = entryStamp(entry);
    if (stamp <= this.global) return true;
    const scope = key.scope;
    const s = this.scopes.get(scope.tenant)?.get(scope.namespace);
    if (s !== undefined) {
      if (stamp <= s.clear || scope.version < s.version) return true;
      if (s.keys !== undefined) {
        const k = s.keys.get(key.hash);
        if (k !== undefined && stamp <= k) return true;
      }
    }
    if (this.tags.size > 0) {
      const tags = entry.tags;
      for (let i = 0; i < tags.length; i++) {
        const t = this.tags.get(tags[i]!);
        if (t === undefined) continue;
        if (stamp <= t.any) return true;
        const at = t.scoped?.get(scope.tenant)?.get(scope.namespace);
        if (at !== undefined && stamp <= at) return true;
      }
    }
    return false;
  }

  /**
   * Keeps the table bounded: key and tag watermarks older than `before`, then the oldest
   * watermarks beyond `max` (down to 90% of it), are folded into a `clear` watermark of their
   * tenant+namespace (the store-wide one for unscoped tags and for scope clears), which refuses
   * at least what they refused. Version watermarks are kept (one per tenant+namespace).
   * Returns the watermarks it added or raised (to be saved).
   */
  prune(before: number, max: number): InvalidationWatermark[] {
    const raised = new Map<string, InvalidationWatermark>();
    const fold = (id: string, w: InvalidationWatermark) => {
      this.remove(id, w);
      const m = w.message;
      const into: InvalidationMessage =
        m.type === 'clear' || (m.type === 'tag' && !m.scope)
          ? { type: 'clear' }
          : { type: 'clear', scope: baseOf((m as { scope: Pick<Scope, 'tenant' | 'namespace'> }).scope) };
      if (this.add(into, w.at)) raised.set(watermarkId(into), this.all.get(watermarkId(into))!);
    };
    for (const [id, w] of [...this.all]) {
      if ((w.message.type === 'key' || w.message.type === 'tag') && w.at < before) fold(id, w);
    }
    const target = Math.floor(max * 0.9);
    // Key and tag watermarks first (into their scope), then — only when that is not enough —
    // scope-wide ones (into the store-wide one): one tenant's purges never cost another's entries
    // while there is any other way.
    for (const kinds of [['key', 'tag'], ['clear']]) {
      if (this.all.size <= max) break;
      const oldest = [...this.all].filter(([id, w]) => kinds.includes(w.message.type) && id !== 'clear|*|').sort((x, y) => x[1].at - y[1].at);
      for (const [id, w] of oldest) {
        if (this.all.size <= target) break;
        if (this.all.get(id) === w) fold(id, w);
      }
    }
    return [...raised.values()];
  }

  private scope(s: Pick<Scope, 'tenant' | 'namespace'>): ScopeMarks {
    let byNs = this.scopes.get(s.tenant);
    if (!byNs) this.scopes.set(s.tenant, (byNs = new Map()));
    let m = byNs.get(s.namespace);
    if (!m) byNs.set(s.namespace, (m = { clear: NONE, version: 0, keys: undefined }));
    return m;
  }

  private remove(id: string, w: InvalidationWatermark): void {
    this.all.delete(id);
    const m = w.message;
    switch (m.type) {
      case 'key': {
        const s = this.scopes.get(m.scope.tenant)?.get(m.scope.namespace);
        s?.keys?.delete(hashOf(m.keyId));
        if (s?.keys?.size === 0) s.keys = undefined;
        break;
      }
      case 'tag': {
        const t = this.tags.get(m.tag);
        if (!t) break;
        if (!m.scope) t.any = NONE;
        else {
          const byNs = t.scoped?.get(m.scope.tenant);
          byNs?.delete(m.scope.namespace);
          if (byNs?.size === 0) t.scoped!.delete(m.scope.tenant);
        }
        if (t.any === NONE && (t.scoped === undefined || t.scoped.size === 0)) this.tags.delete(m.tag);
        break;
      }
      case 'clear':
        if (!m.scope) this.global = NONE;
        else {
          const s = this.scopes.get(m.scope.tenant)?.get(m.scope.namespace);
          if (s) s.clear = NONE;
        }
        break;
      case 'scope-version':
        break;
    }
  }
}

/** The hash part of a key id (`v<schema>:<scope id>:<hash>`). */
function hashOf(keyId: string): string {
  return keyId.slice(keyId.lastIndexOf(':') + 1);
}

function setNested(map: Map<string, Map<string, number>>, s: Pick<Scope, 'tenant' | 'namespace'>, at: number): void {
  let byNs = map.get(s.tenant);
  if (!byNs) map.set(s.tenant, (byNs = new Map()));
  byNs.set(s.namespace, at);
}

function baseOf(s: Pick<Scope, 'tenant' | 'namespace'>): Pick<Scope, 'tenant' | 'namespace'> {
  return { tenant: s.tenant, namespace: s.namespace };
}
