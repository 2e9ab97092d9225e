import { type CacheKey, type Scope, parseScopeId, scopeBaseId } from '@strata-cache/core';
import { createHash } from 'node:crypto';

/**
 * Key layout (readable with `redis-cli --scan --pattern '<prefix>:*'`):
 *
 *   entry        <prefix>:<schema>:{<tenant>/<namespace>}/v<version>:<hash>
 *   scope index  <prefix>:idx:{<tenant>/<namespace>}              ZSET entry key → expiry (ms)
 *   tag index    <prefix>:tag:{<tenant>/<namespace>}:<tag>        ZSET entry key → expiry
 *   scope tags   <prefix>:tags:{<tenant>/<namespace>}             ZSET tag → latest expiry
 *   tag scopes   <prefix>:tagscopes:<tag>                         ZSET shard → latest expiry
 *   lock         <prefix>:lock:{<tenant>/<namespace>}/v<version>:<hash>
 *
 * tenant and namespace are percent-encoded by core, tags here: none contains ':' '{' '}'.
 * The `{...}` hash tag keeps everything of one tenant+namespace in one Redis Cluster slot, so
 * an entry and its index entries are written by one atomic script. With `slotsPerScope` > 1 the
 * hash tag becomes `{<tenant>/<namespace>#<n>}` (n from the request hash), spreading one big
 * scope over n slots; per-scope operations then visit every shard.
 */
export class KeySpace {
  private readonly entryKey: RegExp;
  private readonly ownKey: RegExp;

  constructor(
    readonly prefix: string,
    readonly slotsPerScope: number,
  ) {
    // Exact shapes of the keys above, so that nothing of another prefix is taken for ours: a
    // prefix `a` must never touch `a:b:1:{...}`, `a:1b:idx:{...}`, `a:tagscopes:...` (prefixes
    // `a:b`, `a:1b`, `a:tagscopes`). Prefixes have no braces, and every key any layer writes has
    // a ':' after its prefix's ':' — so a key of a braced kind is ours only if the brace comes
    // right after `<prefix>:<kind>:`, and `<prefix>:tagscopes:<tag>` only if the rest is one
    // encoded tag (no ':'). What percent-encoding leaves: encodeURIComponent's alphabet. Left
    // ambiguous: only a key someone else writes in exactly one of these shapes under this prefix.
    const p = escapeRegExp(prefix);
    const enc = "[A-Za-z0-9\\-_.!~*'()%]";
    const tag = "[A-Za-z0-9\\-_.!~'()%]*";
    const shard = `\\{${enc}*/${enc}*(?:#\\d+)?\\}`;
    const item = `${shard}/v\\d+:[A-Za-z0-9_-]+`;
    this.entryKey = new RegExp(`^${p}:\\d+:${item}$`);
    this.ownKey = new RegExp(`^${p}:(?:\\d+:${item}|lock:${item}|idx:${shard}|tags:${shard}|tag:${shard}:${tag}|tagscopes:${tag})$`);
  }

  /** Shard id of a tenant+namespace (+ bucket): the content of the hash tag. */
  shardOf(key: CacheKey): string {
    // key.scopeId is `<enc tenant>/<enc namespace>/v<version>` (already encoded by core): its
    // part before the last '/' is the scope base, without re-encoding on every request.
    const sid = key.scopeId;
    const base = sid.slice(0, sid.lastIndexOf('/'));
    if (this.slotsPerScope === 1) return base;
    return base + '#' + bucket(key.hash, this.slotsPerScope);
  }

  shardsOf(scope: Pick<Scope, 'tenant' | 'namespace'>): string[] {
    const base = scopeBaseId(scope);
    if (this.slotsPerScope === 1) return [base];
    return Array.from({ length: this.slotsPerScope }, (_, i) => base + '#' + i);
  }

  entry(key: CacheKey): string {
    return `${this.prefix}:${key.schema}:{${this.shardOf(key)}}/v${key.scope.version}:${key.hash}`;
  }

  lock(key: CacheKey): string {
    return `${this.prefix}:lock:{${this.shardOf(key)}}/v${key.scope.version}:${key.hash}`;
  }

  scopeIndex(shard: string): string {
    return `${this.prefix}:idx:{${shard}}`;
  }

  scopeTags(shard: string): string {
    return `${this.prefix}:tags:{${shard}}`;
  }

  tagIndex(shard: string, encodedTag: string): string {
    return `${this.prefix}:tag:{${shard}}:${encodedTag}`;
  }

  tagScopes(encodedTag: string): string {
    return `${this.prefix}:tagscopes:${encodedTag}`;
  }

  /**
   * SCAN pattern of every key under the prefix. Coarse: it also matches keys of longer prefixes
   * (`<prefix>:b:...`) and keys other components keep under the prefix (watermarks, feed streams);
   * filter with `isOwn` / `isEntry`.
   */
  allPattern(): string {
    return escapeGlob(this.prefix) + ':*';
  }

  /** SCAN pattern of the entries (coarse as `allPattern`: also `<prefix>:1b:...`; filter with `isEntry`). */
  entryPattern(): string {
    return escapeGlob(this.prefix) + ':[0-9]*';
  }

  /** Is `redisKey` one of this layer's entries (exactly `<prefix>:<schema>:{...}/v<version>:<hash>`)? */
  isEntry(redisKey: string): boolean {
    return this.entryKey.test(redisKey);
  }

  /**
   * Is `redisKey` a cache key of this layer — an entry, a lock or one of the indexes above, all
   * of exactly this prefix? Not: watermarks (`<prefix>:wm:...`), feed streams (`<prefix>:sfeed:...`),
   * keys of other components or of a longer prefix.
   */
  isOwn(redisKey: string): boolean {
    return this.ownKey.test(redisKey);
  }

  /** Rebuilds a CacheKey from an entry key (profile is not stored: ''). */
  parseEntry(redisKey: string): CacheKey | undefined {
    const head = this.prefix + ':';
    if (!redisKey.startsWith(head)) return undefined;
    const m = /^(\d+):\{([^}#]+)(?:#\d+)?\}\/v(\d+):([A-Za-z0-9_-]+)$/.exec(redisKey.slice(head.length));
    if (!m) return undefined;
    const scopeId = `${m[2]}/v${m[3]}`;
    let scope: Scope;
    try {
      scope = parseScopeId(scopeId);
    } catch {
      return undefined;
    }
    const schema = Number(m[1]);
    return { schema, scope, scopeId, profile: '', hash: m[4]!, id: `v${schema}:${scopeId}:${m[4]}` };
  }

  /** Scope version encoded in an entry key, or -1. */
  versionOf(redisKey: string): number {
    const m = /\}\/v(\d+):[A-Za-z0-9_-]+$/.exec(redisKey);
    return m ? Number(m[1]) : -1;
  }
}

export function encodeTag(tag: string): string {
  return encodeURIComponent(tag).replace(/\*/g, '%2A');
}

function bucket(hash: string, n: number): number {
  // The hash is already uniform (SHA-256 base64url); hashing again keeps this independent of its alphabet.
  return createHash('sha1').update(hash).digest().readUInt32BE(0) % n;
}

function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, (c) => '\\' + c);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
