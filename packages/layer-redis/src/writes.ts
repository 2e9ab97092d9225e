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

/** A write ready to be sent (encoded), waiting for the end of the tick. */
interface Ready {
  readonly w: PendingWrite;
  readonly value: Buffer;
  readonly ttl: number | undefined;
  /** Encoded tags. */
  readonly tags: readonly string[];
  /** Expiry as a ZSET score ('+inf' without TTL). */
  readonly score: string;
  /** Expiry for the indexes' own TTL (ms). */
  readonly expireAt: number;
  readonly now: number;
  readonly signal: AbortSignal | undefined;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
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
 * Writes and deletes. Writes are one MULTI/EXEC in the entry's slot: SET (value and TTL
 * together) plus the entry's index memberships, so an entry is never reachable without its
 * index entries — no Lua. Writes that become ready in the same event-loop turn share one MULTI
 * per slot (one ZADD per index for all of them), which brings a burst of writes close to plain
 * SETs in Redis CPU (see the README). They are sent once the turn's callbacks have run
 * (setImmediate), not at the end of each callback: when many upstream answers arrive together
 * (timers or sockets of one turn), their writes leave as one MULTI after the reads those callers
 * start next, instead of one MULTI per answer in front of them.
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
  /** Writes that became ready in the current event-loop turn, per shard. */
  private batch: Map<string, Ready[]> | undefined;

  constructor(
    private readonly conn: Connection,
    private readonly keys: KeySpace,
    private readonly o: ResolvedOptions,
  ) {}

  set(key: CacheKey, entry: CacheEntry, signal?: AbortSignal): Promise<void> {
    const rk = this.keys.entry(key);
    const now = Date.now();
    let ttl = entry.ttlMs === undefined ? undefined : Math.ceil(entry.createdAt + entry.ttlMs - now);
    // Whole milliseconds (PX takes integers only), and never above the cap.
    if (this.o.maxTtlMs !== undefined) ttl = Math.min(ttl ?? Number.POSITIVE_INFINITY, this.o.maxTtlMs);
    // Already expired: make sure no older value stays behind (nor lands after, still encoding).
    if (ttl !== undefined && ttl <= 0) return this.deleteEntry('set', rk).then(() => undefined);
    const tags = [...new Set(entry.tags.map(encodeTag))];
    let value: Buffer | Promise<Buffer>;
    try {
      value = encodeEntry(entry, entryHeader(key.id, tags), this.o);
    } catch (error) {
      return this.refuse(rk, error);
    }
    const w: PendingWrite = { rk, key, tags: entry.tags, cancelled: false };
    this.writes.add(w);
    // A value whose (deferred) compression fails is refused like one that cannot be encoded at all.
    const encoded = value instanceof Promise ? value.catch((error: unknown) => this.refuse(rk, error, w)) : value;
    const p = this.write(w, encoded, ttl, tags, now, signal);
    this.latest.set(rk, p);
    const forget = () => {
      this.writes.delete(w);
      if (this.latest.get(rk) === p) this.latest.delete(rk);
    };
    p.then(forget, forget);
    return this.track(p);
  }

  /**
   * A new answer that cannot be stored (too large, or a value that cannot be encoded: a BigInt, a
   * cycle): the older one must not keep being served in its place, nor land after the delete
   * while still encoding. Rejects with a LayerError naming why.
   */
  private refuse(rk: string, error: unknown, self?: PendingWrite): Promise<never> {
    const refused =
      error instanceof EntryTooLarge
        ? new LayerError(this.conn.name, 'set', `${PKG}: not stored: ${error.message} (option: maxValueBytes)`)
        : new LayerError(this.conn.name, 'set', `${PKG}: not stored: the value cannot be encoded (${error instanceof Error ? error.message : String(error)})`, {
            cause: error,
          });
    if (self) self.cancelled = true;
    return this.deleteEntry('set', rk).then(
      () => Promise.reject(refused),
      () => Promise.reject(refused),
    );
  }

  private async write(
    w: PendingWrite,
    pending: Buffer | Promise<Buffer>,
    ttl: number | undefined,
    tags: string[],
    now: number,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const value = await pending;
    if (w.cancelled) return;
    if (signal?.aborted) throw abortedError(this.conn.name, 'set', signal);
    const shard = this.keys.shardOf(w.key);
    const score = ttl === undefined ? '+inf' : String(now + ttl);
    const expireAt = (ttl === undefined ? now + NO_TTL_MS : now + ttl) + INDEX_SLACK_MS;
    return new Promise<void>((resolve, reject) => {
      let b = this.batch;
      if (b === undefined) {
        b = this.batch = new Map();
        setImmediate(this.flush);
      }
      let list = b.get(shard);
      if (!list) b.set(shard, (list = []));
      list.push({ w, value, ttl, tags, score, expireAt, now, signal, resolve, reject });
    });
  }

  /** Sends the writes that became ready in this turn: one MULTI per shard (hash tag, hence slot). */
  private readonly flush = (): void => {
    const b = this.batch!;
    this.batch = undefined;
    for (const [shard, writes] of b) {
      this.conn
        .exec('set', this.o.writeTimeoutMs, (c) => this.send(c, shard, writes))
        .then(
          () => {
            for (const r of writes) r.resolve();
          },
          (error: unknown) => {
            for (const r of writes) r.reject(error);
          },
        );
    }
  };

  private async send(c: Client, shard: string, all: Ready[]): Promise<void> {
    const live = () => all.filter((r) => !r.w.cancelled && !r.signal?.aborted);
    let writes = live();
    if (writes.length === 0) return this.dropAborted(all);
    const expireAt = Math.max(...writes.map((r) => r.expireAt));
    const now = writes[0]!.now;
    const tags = [...new Set(writes.flatMap((r) => r.tags))];
    if (c.isCluster && tags.length > 0) {
      // The tag → shards registries live in other slots: written first, so a tagged entry is
      // never reachable without them.
      await Promise.all(tags.flatMap((t) => this.register(c, this.keys.tagScopes(t), topScore(writes.filter((r) => r.tags.includes(t))), shard, expireAt)));
      writes = live();
      if (writes.length === 0) return this.dropAborted(all);
    }
    // Checked right before the command is handed to the client: a delete issued after this
    // point is sent after it on the same connection, so it wins. A write whose caller gave up
    // before this point is not sent.
    this.dropAborted(all);
    const m = c.multi();
    for (const r of writes) {
      if (r.ttl === undefined) m.set(r.w.rk, r.value);
      else m.set(r.w.rk, r.value, 'PX', r.ttl);
    }
    this.indexEntries(m, this.keys.scopeIndex(shard), writes, expireAt, now);
    for (const t of tags) {
      const carrying = writes.filter((r) => r.tags.includes(t));
      this.indexEntries(m, this.keys.tagIndex(shard, t), carrying, expireAt, now);
      if (!c.isCluster) this.register(m, this.keys.tagScopes(t), topScore(carrying), shard, expireAt);
      const seen = shard + '\n' + t;
      if ((this.scopeTagsAt.get(seen) ?? -Infinity) + SCOPE_TAGS_EVERY_MS <= now) {
        remember(this.scopeTagsAt, seen, now);
        this.register(m, this.keys.scopeTags(shard), topScore(carrying), t, expireAt);
      }
    }
    const results = await m.exec();
    for (const [error] of results ?? []) if (error) throw error;
  }

  /** Rejects the writes whose caller gave up before they were sent (they are not sent). */
  private dropAborted(all: readonly Ready[]): void {
    for (const r of all) if (!r.w.cancelled && r.signal?.aborted) r.reject(abortedError(this.conn.name, 'set', r.signal));
  }

  /** Adds the writes to an index (one ZADD), keeps its TTL at or above every member's, trims it now and then. */
  private indexEntries(m: ChainableCommander, index: string, writes: readonly Ready[], expireAt: number, now: number): void {
    m.zadd(index, ...writes.flatMap((r) => [r.score, r.w.rk]));
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
   * Deletes an entry key for good: this process's writes of it still encoding started before the
   * delete and would undo it, so they are dropped (see `cancel`).
   */
  deleteEntry(operation: string, rk: string): Promise<number> {
    this.cancel((w) => w.rk === rk);
    return this.remove(operation, rk);
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

/** The highest expiry score among writes ('+inf' when one has no TTL). */
function topScore(writes: readonly Ready[]): string {
  return writes.some((r) => r.ttl === undefined) ? '+inf' : String(Math.max(...writes.map((r) => Number(r.score))));
}
