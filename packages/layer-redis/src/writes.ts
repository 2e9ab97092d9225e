import { type CacheEntry, type CacheKey, LayerError } from '@strata-cache/core';
import type { ChainableCommander } from 'ioredis';
import type { Connection } from './connection.js';
import { EntryTooLarge, encodeEntry, entryHeader } from './envelope.js';
import { PKG, abortedError } from './errors.js';
import { type KeySpace, encodeTag } from './keys.js';
import type { ResolvedOptions } from './options.js';
import type { Client } from './scripts.js';

/** A set() in flight; `cancelled` once a delete / invalidation of this process covers it. */
interface PendingWrite {
  readonly rk: string;
  readonly key: CacheKey;
  readonly tags: readonly string[];
  cancelled: boolean;
}

/** Index keys expire this long after their longest-lived member. */
const INDEX_SLACK_MS = 1_000;
/** Expiry given to indexes of entries without TTL (an index always has one: see indexEntry). */
const NO_TTL_MS = 100 * 365 * 24 * 3_600_000;
/** Each index's expired members are trimmed by at most one write per this interval (per process). */
const TRIM_EVERY_MS = 1_000;
/**
 * A scope's tag list is refreshed at most this often per tag and process. It only serves
 * clear(scope) to find the scope's tag indexes and unlink them; a tag index it misses (its entry
 * in the list expired meanwhile) still expires with its own members.
 */
const SCOPE_TAGS_EVERY_MS = 10_000;
const MEMO_MAX = 10_000;

/**
 * Writes and deletes. A write is one MULTI/EXEC in the entry's slot: SET (value and TTL
 * together) plus the entry's index memberships, so an entry is never reachable without its
 * index entries — no Lua, and close to a plain SET in Redis CPU (see the README).
 *
 * Every index is a ZSET scored by its members' expiry, with a TTL that never falls below its
 * longest-lived member's: each write sends `PEXPIREAT … NX` (a new index gets one) and
 * `PEXPIREAT … GT` (an existing one is only ever extended). Entries without TTL give their
 * indexes an expiry a century out. Expired members are trimmed lazily (ZREMRANGEBYSCORE, at
 * most once a second per index and process).
 */
export class Writer {
  private readonly writes = new Set<PendingWrite>();
  /** Latest set() per entry key (the coordinator releases its lock once it has landed). */
  private readonly latest = new Map<string, Promise<void>>();
  /** Every write and delete not settled yet (close() waits for them). */
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly trimmedAt = new Map<string, number>();
  private readonly scopeTagsAt = new Map<string, number>();

  constructor(
    private readonly conn: Connection,
    private readonly keys: KeySpace,
    private readonly o: ResolvedOptions,
  ) {}

  set(key: CacheKey, entry: CacheEntry, signal?: AbortSignal): Promise<void> {
    const rk = this.keys.entry(key);
    const now = Date.now();
    let ttl = entry.ttlMs === undefined ? undefined : Math.ceil(entry.createdAt + entry.ttlMs - now);
    if (this.o.maxTtlMs !== undefined) ttl = Math.min(ttl ?? Number.POSITIVE_INFINITY, this.o.maxTtlMs);
    // Already expired: make sure no older value stays behind.
    if (ttl !== undefined && ttl <= 0) return this.remove('set', rk).then(() => undefined);
    const tags = [...new Set(entry.tags.map(encodeTag))];
    let value: Buffer | Promise<Buffer>;
    try {
      value = encodeEntry(entry, entryHeader(key.id, tags), this.o);
    } catch (error) {
      if (!(error instanceof EntryTooLarge)) return Promise.reject(error);
      // The new answer cannot be stored: the older one must not keep being served instead.
      const refused = new LayerError(this.conn.name, 'set', `${PKG}: not stored: ${error.message} (option: maxValueBytes)`);
      return this.remove('set', rk).then(
        () => Promise.reject(refused),
        () => Promise.reject(refused),
      );
    }
    const w: PendingWrite = { rk, key, tags: entry.tags, cancelled: false };
    this.writes.add(w);
    const p = this.write(w, value, ttl, tags, now, signal);
    this.latest.set(rk, p);
    const forget = () => {
      this.writes.delete(w);
      if (this.latest.get(rk) === p) this.latest.delete(rk);
    };
    p.then(forget, forget);
    return this.track(p);
  }

  private async write(w: PendingWrite, pending: Buffer | Promise<Buffer>, ttl: number | undefined, tags: string[], now: number, signal: AbortSignal | undefined): Promise<void> {
    const value = await pending;
    if (w.cancelled) return;
    if (signal?.aborted) throw abortedError(this.conn.name, 'set', signal);
    const shard = this.keys.shardOf(w.key);
    const score = ttl === undefined ? '+inf' : String(now + ttl);
    const expireAt = (ttl === undefined ? now + NO_TTL_MS : now + ttl) + INDEX_SLACK_MS;
    await this.conn.exec(
      'set',
      this.o.writeTimeoutMs,
      async (c) => {
        if (c.isCluster && tags.length > 0) {
          // The tag → shards registries live in other slots: written first, so a tagged entry is
          // never reachable without them.
          await Promise.all(tags.flatMap((t) => this.register(c, this.keys.tagScopes(t), score, shard, expireAt)));
        }
        // Checked right before the command is handed to the client: a delete issued after this
        // point is sent after it on the same connection, so it wins.
        if (w.cancelled) return;
        const m = c.multi();
        if (ttl === undefined) m.set(w.rk, value);
        else m.set(w.rk, value, 'PX', ttl);
        this.indexEntry(m, this.keys.scopeIndex(shard), score, w.rk, expireAt, now);
        for (const t of tags) {
          this.indexEntry(m, this.keys.tagIndex(shard, t), score, w.rk, expireAt, now);
          if (!c.isCluster) this.register(m, this.keys.tagScopes(t), score, shard, expireAt);
          const seen = shard + '\n' + t;
          if ((this.scopeTagsAt.get(seen) ?? -Infinity) + SCOPE_TAGS_EVERY_MS <= now) {
            remember(this.scopeTagsAt, seen, now);
            this.register(m, this.keys.scopeTags(shard), score, t, expireAt);
          }
        }
        const results = await m.exec();
        for (const [error] of results ?? []) if (error) throw error;
      },
      signal,
    );
  }

  private indexEntry(m: ChainableCommander, index: string, score: string, member: string, expireAt: number, now: number): void {
    m.zadd(index, score, member);
    m.pexpireat(index, expireAt, 'NX');
    m.pexpireat(index, expireAt, 'GT');
    if ((this.trimmedAt.get(index) ?? -Infinity) + TRIM_EVERY_MS <= now) {
      remember(this.trimmedAt, index, now);
      m.zremrangebyscore(index, '-inf', '(' + now);
    }
  }

  /** A registry ZSET (member → latest expiry): never lowers a member's score nor the key's expiry. */
  private register(m: ChainableCommander | Client, key: string, score: string, member: string, expireAt: number): Array<unknown> {
    return [m.zadd(key, 'GT', score, member), m.pexpireat(key, expireAt, 'NX'), m.pexpireat(key, expireAt, 'GT')];
  }

  /** A delete (or DEL of an expired / refused write), tracked so close() waits for it. */
  remove(operation: string, ...rks: string[]): Promise<number> {
    return this.track(this.conn.exec(operation, this.o.writeTimeoutMs, (c) => c.del(...rks)));
  }

  /**
   * A delete or invalidation must not be undone by a write of this process that started before
   * it but is still encoding: such writes are dropped. Writes already handed to the client were
   * sent first, and Redis applies them in order.
   */
  cancel(covers: (w: { readonly key: CacheKey; readonly rk: string; readonly tags: readonly string[] }) => boolean): void {
    for (const w of this.writes) if (!w.cancelled && covers(w)) w.cancelled = true;
  }

  /** The latest set() of this entry key that has not settled yet. */
  pendingFor(rk: string): Promise<void> | undefined {
    return this.latest.get(rk);
  }

  /** After clear(): the lazily refreshed scope tag lists are gone. */
  forgetScopeTags(): void {
    this.scopeTagsAt.clear();
  }

  track<T>(p: Promise<T>): Promise<T> {
    this.inflight.add(p);
    const done = () => this.inflight.delete(p);
    p.then(done, done);
    return p;
  }

  /** Resolves when every write and delete started so far has settled, or after `ms`; true when all did. */
  async drain(ms: number): Promise<boolean> {
    const until = Date.now() + ms;
    while (this.inflight.size > 0) {
      const left = until - Date.now();
      if (left <= 0) return false;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.allSettled([...this.inflight]), new Promise((r) => (timer = setTimeout(r, left)))]);
      clearTimeout(timer);
    }
    return true;
  }
}

function remember(memo: Map<string, number>, key: string, at: number): void {
  if (memo.size >= MEMO_MAX) memo.clear();
  memo.set(key, at);
}
