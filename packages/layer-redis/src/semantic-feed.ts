import { InvalidOptionError, StrataError } from '@strata-cache/core';
import type { FeedSink, FeedSubscription, SemanticFeed, SemanticMutation } from '@strata-cache/layer-semantic';
import { type Position, feedConfig, parseOffset } from './feed-codec.js';
import { FeedPublisher, type PublisherStats } from './feed-publisher.js';
import { FeedFollower, type FollowerStats, lastOf } from './feed-reader.js';
import { streamKeys } from './feed-streams.js';
import { PKG } from './errors.js';
import { RedisLayer } from './layer.js';
import type { Client } from './scripts.js';
import { withTimeout } from './timing.js';

export interface RedisSemanticFeedOptions {
  /** The RedisLayer whose connection settings (URL or Cluster nodes, TLS, auth) and key prefix the feed uses. Required. */
  layer: RedisLayer;
  /**
   * Streams the feed is split into (slot groups). Each tenant + namespace writes to one of them,
   * so its mutations stay in order; on a Cluster they are spread over the masters. Every
   * process of a fleet must use the same number (an offset taken under another is a gap).
   * @default 4
   */
  streams?: number | undefined;
  /**
   * Approximate length each stream is trimmed to (`XADD … MAXLEN ~`): how far behind a process
   * may fall (or how long it may be down) and still catch up from the stream rather than
   * re-import L2. Redis memory ≈ streams × maxLength × record size (a put with a 512-d vector
   * ≈ 3 KB). @default 10000
   */
  maxLength?: number | undefined;
  /** `XREAD BLOCK` time, ms: an idle follower re-issues its read this often. @default 1000 */
  blockMs?: number | undefined;
  /**
   * How long a read (or a position check) may take beyond `blockMs` before the connection is
   * taken for hung (a paused server) and replaced, ms. @default 2000
   */
  readTimeoutMs?: number | undefined;
  /** Most records read per stream per `XREAD` (bounds the event-loop time one delivery takes). @default 128 */
  readCount?: number | undefined;
  /**
   * Coalescing window, ms: a process appends at most once per window (every record published
   * meanwhile goes in that one pipelined append), and a follower reads at most once per window
   * while records keep coming. A round trip, not the records it carries, is most of what an
   * append or a read costs, so under a steady write rate this divides the CPU per replicated
   * entry (writer, every follower, Redis) by the records per window, for at most this much more
   * lag per hop. After a quiet spell the first record goes out, and is read, at once.
   * @default 5
   */
  batchMs?: number | undefined;
  /** Time limit of one append (a batch of records to one stream), ms; failures are retried. @default 1000 */
  publishTimeoutMs?: number | undefined;
  /** Time a new connection may take to become ready, ms. @default 2000 */
  connectTimeoutMs?: number | undefined;
  /**
   * Records held while Redis is slow or unreachable. Beyond it puts are dropped (oldest first)
   * and invalidations are folded into scope-wide clears — an invalidation is never lost.
   * @default 10000
   */
  maxBuffered?: number | undefined;
  /** A put whose record is larger is not replicated (the entry stays in L2 for exact lookups). @default 1048576 */
  maxRecordBytes?: number | undefined;
  /**
   * How long `subscribe()` without an offset (a process starting without a snapshot) waits to
   * find the streams' ends, ms. When Redis is unreachable the layer starts anyway and
   * re-synchronises once it is back. @default 2000
   */
  startTimeoutMs?: number | undefined;
  /** How long closing waits for records still buffered, ms. @default 5000 */
  closeTimeoutMs?: number | undefined;
  /** Receives publish/read failures (one per outage) and skipped records. @default process.emitWarning */
  onError?: ((error: Error) => void) | undefined;
}

export const SEMANTIC_FEED_DEFAULTS = Object.freeze({
  streams: 4,
  maxLength: 10_000,
  blockMs: 1_000,
  readTimeoutMs: 2_000,
  readCount: 128,
  batchMs: 5,
  publishTimeoutMs: 1_000,
  connectTimeoutMs: 2_000,
  maxBuffered: 10_000,
  maxRecordBytes: 1 << 20,
  startTimeoutMs: 2_000,
  closeTimeoutMs: 5_000,
});

const KNOWN = {
  layer: true,
  streams: true,
  maxLength: true,
  blockMs: true,
  readTimeoutMs: true,
  readCount: true,
  batchMs: true,
  publishTimeoutMs: true,
  connectTimeoutMs: true,
  maxBuffered: true,
  maxRecordBytes: true,
  startTimeoutMs: true,
  closeTimeoutMs: true,
  onError: true,
} satisfies Record<keyof RedisSemanticFeedOptions, true>;

export interface RedisSemanticFeedStats extends PublisherStats, FollowerStats {
  /** Layers subscribed through this feed. */
  followers: number;
}

/**
 * The semantic layer's replication feed over Redis Streams: `new SemanticLayer({ embedder,
 * replication: { feed: new RedisSemanticFeed({ layer: redis }) }, rebuildFrom: redis })` in every
 * process, and each process's index follows every other's writes, deletes and purges — entries
 * travel with their vectors, so followers never embed them.
 *
 * Publishing appends to capped streams (one per slot group, chosen by tenant + namespace) on a
 * connection of its own; each subscription reads them with `XREAD BLOCK` on its own connection.
 * See the README ("Semantic feed") for why Streams, the trim policy, ordering and lag.
 *
 * The feed closes with the last layer subscribed to it (after sending what is buffered).
 */
export class RedisSemanticFeed implements SemanticFeed {
  /** The stream keys, in order (for tools and tests). */
  readonly keys: readonly string[];
  private readonly o: Record<keyof typeof SEMANTIC_FEED_DEFAULTS, number>;
  private readonly layer: RedisLayer;
  private readonly report: (error: Error) => void;
  private readonly config: string;
  private readonly publisher: FeedPublisher;
  private readonly followers = new Set<FeedFollower>();
  /** Origins that published through this feed (this process's layers). */
  private readonly origins = new Set<string>();
  private client: Promise<Client> | undefined;
  /** `client` once it resolved (so a failed connection is dropped at once, not a turn later). */
  private current: Client | undefined;
  private closing: Promise<void> | undefined;

  constructor(options: RedisSemanticFeedOptions) {
    if (typeof options !== 'object' || options === null) throw new InvalidOptionError(`${PKG}: RedisSemanticFeed needs options { layer }`, { field: 'layer' });
    for (const k of Object.keys(options)) {
      if (!Object.hasOwn(KNOWN, k)) throw new InvalidOptionError(`${PKG}: unknown RedisSemanticFeed option "${k}"`, { field: k });
    }
    if (!(options.layer instanceof RedisLayer))
      throw new InvalidOptionError(`${PKG}: RedisSemanticFeed needs option "layer" (a RedisLayer)`, { field: 'layer' });
    if (options.onError !== undefined && typeof options.onError !== 'function')
      throw new InvalidOptionError(`${PKG}: option "onError" must be a function`, { field: 'onError' });
    const o: Record<keyof typeof SEMANTIC_FEED_DEFAULTS, number> = { ...SEMANTIC_FEED_DEFAULTS };
    for (const k of Object.keys(SEMANTIC_FEED_DEFAULTS) as Array<keyof typeof SEMANTIC_FEED_DEFAULTS>) {
      const v = options[k];
      if (v === undefined) continue;
      // (blockMs 0 would be XREAD's "block for ever", which the read time limit would then cut;
      // batchMs 0 turns coalescing off.)
      const min = k === 'batchMs' ? 0 : 1;
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
        const what = min === 0 ? 'a non-negative integer' : 'a positive integer';
        throw new InvalidOptionError(`${PKG}: RedisSemanticFeed option "${k}" must be ${what} (got ${String(v)})`, { field: k });
      }
      o[k] = v;
    }
    if (o.streams > 256) throw new InvalidOptionError(`${PKG}: RedisSemanticFeed option "streams" must be at most 256`, { field: 'streams' });
    this.o = o;
    this.layer = options.layer;
    this.report = options.onError ?? ((e) => process.emitWarning(e.message, { code: 'STRATA_SEMANTIC_FEED' }));
    const prefix = options.layer.keys.prefix;
    this.keys = Object.freeze(streamKeys(prefix, o.streams));
    this.config = feedConfig(prefix, o.streams);
    this.publisher = new FeedPublisher(
      {
        keys: this.keys,
        maxLength: o.maxLength,
        publishTimeoutMs: o.publishTimeoutMs,
        maxBuffered: o.maxBuffered,
        maxRecordBytes: o.maxRecordBytes,
        batchMs: o.batchMs,
      },
      {
        connect: () => this.commandClient(),
        discard: (c) => this.discard(c),
        report: (e) => this.report(e),
      },
    );
  }

  /** Buffers one of a layer's mutations; it is appended on the next turn. Never throws. */
  publish(origin: string, mutation: SemanticMutation): void {
    if (this.closing) return;
    // (Bounded: a process has a few layers; past that, records are simply decoded up front.)
    if (this.origins.size < 64 && typeof origin === 'string') this.origins.add(origin);
    this.publisher.publish(origin, mutation);
  }

  /**
   * Follows the streams from `from` (an offset this feed gave the layer), or from their current
   * ends. Resolves without waiting for Redis when there is an offset; without one it waits up to
   * `startTimeoutMs` to find the ends (failing that, the layer re-synchronises once Redis is back).
   */
  async subscribe(from: string | undefined, sink: FeedSink): Promise<FeedSubscription> {
    if (this.closing) throw new StrataError('STRATA_CLOSED', `${PKG}: RedisSemanticFeed is closed`);
    let positions: Position[] | undefined;
    if (from !== undefined) {
      positions = parseOffset(from, this.config, this.keys.length);
      if (!positions)
        this.report(
          new Error(`semantic feed: offset ${JSON.stringify(String(from).slice(0, 60))} was taken under other settings (streams or prefix); re-synchronising`),
        );
    } else {
      positions = await this.ends().catch((error: unknown) => {
        this.report(
          new Error(
            `semantic feed: could not find the streams' ends (${(error as Error)?.message ?? String(error)}); the layer re-synchronises once Redis answers`,
          ),
        );
        return undefined;
      });
    }
    const follower: FeedFollower = new FeedFollower(
      {
        keys: this.keys,
        config: this.config,
        blockMs: this.o.blockMs,
        readTimeoutMs: this.o.readTimeoutMs,
        readCount: this.o.readCount,
        batchMs: this.o.batchMs,
        local: this.origins,
      },
      {
        connect: () => this.open(false),
        cluster: (await this.layer.getClient()).isCluster,
        report: (e) => this.report(e),
        closed: async () => {
          this.followers.delete(follower);
          // The last layer left: the feed closes (unless it is closing already, which is what closed this follower).
          if (this.followers.size === 0 && !this.closing) await this.close();
        },
      },
      sink,
      positions,
    );
    this.followers.add(follower);
    follower.start();
    return follower;
  }

  /** Resolves once everything published so far was appended, or after `timeoutMs`. */
  flush(timeoutMs: number = this.o.closeTimeoutMs): Promise<void> {
    return this.publisher.flush(timeoutMs);
  }

  stats(): RedisSemanticFeedStats {
    const s: RedisSemanticFeedStats = { ...this.publisher.stats, received: 0, decodeErrors: 0, gaps: 0, readErrors: 0, followers: this.followers.size };
    for (const f of this.followers) {
      s.received += f.stats.received;
      s.decodeErrors += f.stats.decodeErrors;
      s.gaps += f.stats.gaps;
      s.readErrors += f.stats.readErrors;
    }
    return s;
  }

  /**
   * Stops following, sends what is buffered (up to `closeTimeoutMs`) and closes the feed's
   * connections. Idempotent; happens by itself when the last subscribed layer closes.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.all([...this.followers].map((f) => f.close()));
      await this.publisher.flush(this.o.closeTimeoutMs);
      this.publisher.stop();
      const c = this.client;
      this.client = undefined;
      if (c) (await c.catch(() => undefined))?.disconnect();
    })();
    return this.closing;
  }

  /** Every stream's last entry as a position. */
  private async ends(): Promise<Position[]> {
    const deadline = Date.now() + this.o.startTimeoutMs;
    const c = await withTimeout(
      this.commandClient(),
      this.o.startTimeoutMs,
      () => new Error(`Redis not ready within ${this.o.startTimeoutMs} ms (option: startTimeoutMs)`),
    );
    const out: Position[] = [];
    for (const key of this.keys) out.push(await lastOf(c, key, Math.max(1, deadline - Date.now())));
    return out;
  }

  /** The connection for appends and position checks (one, reopened after a failure). */
  private commandClient(): Promise<Client> {
    if (!this.client) {
      const p = this.open(true).then((c) => {
        if (this.client === p) this.current = c;
        return c;
      });
      p.catch(() => {
        if (this.client === p) this.client = undefined;
      });
      this.client = p;
    }
    return this.client;
  }

  private discard(c: Client): void {
    if (this.current === c) {
      this.current = undefined;
      this.client = undefined;
    }
    c.disconnect();
  }

  /**
   * A connection of the feed's own, with the layer's settings: nothing queued while it is down
   * (the feed retries by itself), no retries of commands in flight when it drops.
   */
  private async open(pipelined: boolean): Promise<Client> {
    const c = await this.layer.duplicateClient({
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      enableAutoPipelining: pipelined,
    });
    c.on('error', () => undefined);
    try {
      await withTimeout(
        c.connect(),
        this.o.connectTimeoutMs,
        () => new Error(`Redis not ready within ${this.o.connectTimeoutMs} ms (option: connectTimeoutMs)`),
      );
    } catch (error) {
      c.disconnect();
      throw error;
    }
    return c;
  }
}
