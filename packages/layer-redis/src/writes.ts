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
  /** Expiry rounded up to the grid (see `roundUp`; Infinity without TTL): the registries' score. */
  readonly registered: number;
  /** Expiry for the indexes' and registries' own TTL (ms): `registered` (or a century) + slack. */
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
 * Index TTLs and registry scores are rounded up to a grid of a sixteenth of the entry's TTL, at
 * most a minute: writes within one grid step need no PEXPIREAT GT nor registry update (see
 * `Writer`). An index then outlives its longest-lived member by at most 1/16 of its TTL (≤ 1
 * min) + 1 s.
 */
const GRID_MAX_MS = 60_000;
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
 * longest-lived member's: `PEXPIREAT … NX` (a new index gets one) and `PEXPIREAT … GT` (an
 * existing one is only ever extended). Entries without TTL give their indexes an expiry a
 * century out. Expired members are trimmed lazily (ZREMRANGEBYSCORE, at most once a second per
 * index and process).
 *
 * Most writes need only SET + ZADD + `PEXPIREAT … NX`: the TTLs are rounded up to a grid (see
 * `roundUp`), and this process remembers the expiry it has set on each index and registry and
 * each registry member's score (once EXEC acknowledged it). A write whose rounded expiry is
 * covered sends no `PEXPIREAT … GT` and no registry update. What makes that memory true:
 * nothing ever lowers a TTL or a score (NX / GT only), and no operation of this layer deletes an
 * index or registry key before its TTL — purges, clear and scan leave an emptied index as a
 * placeholder (one member `<index>:-` that is no entry, score 0) with the TTL it had, and
 * registries are never deleted (see admin.ts, scripts.ts). What the layer cannot see — a
 * restarted, restored or failed-over server — makes the connection fail or reconnect, and then
 * the memory is dropped (as after any failed write). The NX is still sent on every write, with
 * the remembered expiry: should an index be gone anyway (evicted, deleted by hand), the write
 * that re-creates it gives it a TTL at once.
 */
export class Writer {
  private readonly writes = new Set<PendingWrite>();
  /** Latest set() per entry key (the coordinator releases its lock once it has landed). */
  private readonly latest = new Map<string, Promise<void>>();
  /** Every write and delete not settled yet (close() waits for them). */
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly trimmedAt = new Map<string, number>();
  /** Expiry this process has set (acknowledged) on an index or registry key. */
  private readonly expirySent = new Map<string, number>();
  /** Score this process has set (acknowledged) for a registry member, per `<registry>\n<member>`. */
  private readonly scoreSent = new Map<string, number>();
  /** Writes that became ready in the current event-loop turn, per shard. */
  private batch: Map<string, Ready[]> | undefined;

  constructor(
    private readonly conn: Connection,
    private readonly keys: KeySpace,
    private readonly o: ResolvedOptions,
  ) {
    // A reconnect or a circuit that closes again may be a restarted, restored or failed-over
    // server: what this process set before may be gone.
    conn.onAvailable(() => this.forgetSent());
  }

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
    const registered = ttl === undefined ? Number.POSITIVE_INFINITY : roundUp(now + ttl, ttl);
    const expireAt = (ttl === undefined ? roundUp(now + NO_TTL_MS, NO_TTL_MS) : registered) + INDEX_SLACK_MS;
    return new Promise<void>((resolve, reject) => {
      let b = this.batch;
      if (b === undefined) {
        b = this.batch = new Map();
        setImmediate(this.flush);
      }
      let list = b.get(shard);
      if (!list) b.set(shard, (list = []));
      list.push({ w, value, ttl, tags, score, registered, expireAt, now, signal, resolve, reject });
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
            // Failed or timed out: maybe a server that restarted or failed over.
            this.forgetSent();
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
      const sent: Sent[] = [];
      const pending = tags.flatMap((t) => this.register(c, this.keys.tagScopes(t), topScore(writes.filter((r) => r.tags.includes(t))), shard, expireAt, sent));
      if (pending.length > 0) {
        await Promise.all(pending);
        this.acknowledge(sent);
      }
      writes = live();
      if (writes.length === 0) return this.dropAborted(all);
    }
    // Checked right before the command is handed to the client: a delete issued after this
    // point is sent after it on the same connection, so it wins. A write whose caller gave up
    // before this point is not sent.
    this.dropAborted(all);
    const sent: Sent[] = [];
    const m = c.multi();
    for (const r of writes) {
      if (r.ttl === undefined) m.set(r.w.rk, r.value);
      else m.set(r.w.rk, r.value, 'PX', r.ttl);
    }
    this.indexEntries(m, this.keys.scopeIndex(shard), writes, expireAt, now, sent);
    for (const t of tags) {
      const carrying = writes.filter((r) => r.tags.includes(t));
      this.indexEntries(m, this.keys.tagIndex(shard, t), carrying, expireAt, now, sent);
      if (!c.isCluster) this.register(m, this.keys.tagScopes(t), topScore(carrying), shard, expireAt, sent);
      this.register(m, this.keys.scopeTags(shard), topScore(carrying), t, expireAt, sent);
    }
    const results = await m.exec();
    if (!results) throw new Error('MULTI aborted');
    for (const [error] of results) if (error) throw error;
    this.acknowledge(sent);
  }

  /** Rejects the writes whose caller gave up before they were sent (they are not sent). */
  private dropAborted(all: readonly Ready[]): void {
    for (const r of all) if (!r.w.cancelled && r.signal?.aborted) r.reject(abortedError(this.conn.name, 'set', r.signal));
  }

  /**
   * Adds the writes to an index (one ZADD), keeps its TTL at or above every member's (GT only when
   * this process has not set that expiry yet, NX always), trims it now and then.
   */
  private indexEntries(m: ChainableCommander, index: string, writes: readonly Ready[], expireAt: number, now: number, sent: Sent[]): void {
    m.zadd(index, ...writes.flatMap((r) => [r.score, r.w.rk]));
    const had = this.expirySent.get(index) ?? Number.NEGATIVE_INFINITY;
    if (had >= expireAt) m.pexpireat(index, had, 'NX');
    else {
      m.pexpireat(index, expireAt, 'NX');
      m.pexpireat(index, expireAt, 'GT');
      sent.push([this.expirySent, index, expireAt]);
    }
    if ((this.trimmedAt.get(index) ?? Number.NEGATIVE_INFINITY) + TRIM_EVERY_MS <= now) {
      remember(this.trimmedAt, index, now);
      m.zremrangebyscore(index, '-inf', '(' + now);
    }
  }

  /**
   * A registry ZSET (member → latest rounded expiry): never lowers a member's score nor the key's
   * expiry. Nothing is sent when this process has already set both at least this high.
   */
  private register(m: ChainableCommander | Client, key: string, score: number, member: string, expireAt: number, sent: Sent[]): Array<unknown> {
    const sk = key + '\n' + member;
    if ((this.scoreSent.get(sk) ?? Number.NEGATIVE_INFINITY) >= score && (this.expirySent.get(key) ?? Number.NEGATIVE_INFINITY) >= expireAt) return [];
    sent.push([this.scoreSent, sk, score], [this.expirySent, key, expireAt]);
    return [
      m.zadd(key, 'GT', score === Number.POSITIVE_INFINITY ? '+inf' : String(score), member),
      m.pexpireat(key, expireAt, 'NX'),
      m.pexpireat(key, expireAt, 'GT'),
    ];
  }

  /** Records what an acknowledged EXEC (or registry write) has set. */
  private acknowledge(sent: readonly Sent[]): void {
    for (const [memo, key, value] of sent) if ((memo.get(key) ?? Number.NEGATIVE_INFINITY) < value) remember(memo, key, value);
  }

  /** Forgets what this process has set: the next writes send every PEXPIREAT and registry update again. */
  forgetSent(): void {
    this.expirySent.clear();
    this.scoreSent.clear();
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

/** The highest rounded expiry among writes (Infinity when one has no TTL). */
function topScore(writes: readonly Ready[]): number {
  return Math.max(...writes.map((r) => r.registered));
}

/** `at` rounded up to a grid of ttl/16, at most GRID_MAX_MS (whole milliseconds). */
function roundUp(at: number, ttl: number): number {
  const grid = Math.min(GRID_MAX_MS, Math.max(1, Math.floor(ttl / 16)));
  return Math.ceil(at / grid) * grid;
}

/** A memo entry to record once the server has acknowledged it. */
type Sent = [Map<string, number>, string, number];
