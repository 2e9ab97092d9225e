import type { Scope } from '@strata-cache/core';
import type { SemanticMutation } from '@strata-cache/layer-semantic';
import { encodeMutation } from './feed-codec.js';
import { APPEND, streamOf } from './feed-streams.js';
import type { Client } from './scripts.js';
import { withTimeout } from './timing.js';

/** Records per XADD script call (and at most BATCH_BYTES of them). */
const BATCH = 256;
const BATCH_BYTES = 4 << 20;

type ScopeBase = Pick<Scope, 'tenant' | 'namespace'>;

interface Pending {
  readonly origin: string;
  readonly payload: Buffer;
  /** Puts, expiries and evictions: what may be dropped when the buffer overflows. */
  readonly droppable: boolean;
  /** What an invalidation covers (undefined: every scope), to collapse it into a `clear`. */
  readonly scope: ScopeBase | undefined;
  readonly at: number;
}

export interface PublisherSettings {
  readonly keys: readonly string[];
  readonly maxLength: number;
  readonly publishTimeoutMs: number;
  readonly maxBuffered: number;
  readonly maxRecordBytes: number;
  /** Shortest time between two rounds of appends, ms (0: every turn). */
  readonly batchMs: number;
}

export interface PublisherHost {
  /** The publishing connection (opened on first use, replaced after a failure). */
  connect(): Promise<Client>;
  /** The connection failed or hung: drop it, the next attempt opens another. */
  discard(client: Client): void;
  report(error: Error): void;
}

export interface PublisherStats {
  /** Records appended to the streams. */
  published: number;
  /** Records waiting to be sent (Redis slow or unreachable). */
  buffered: number;
  /** Puts (and expiries/evictions) dropped because the buffer was full: other processes miss them. */
  dropped: number;
  /** Invalidations folded into scope-wide clears because the buffer was full (never dropped). */
  collapsed: number;
  /** Puts not replicated because their record exceeded `maxRecordBytes`. */
  oversized: number;
  /** Failed or timed-out sends (each retried). */
  publishErrors: number;
}

/**
 * The publishing half of the feed: `publish` is synchronous (it encodes and buffers), sending
 * happens on the next turn (at most one round per `batchMs`), one script call per round (all
 * streams in one on one node, one per stream on a Cluster), one batch in flight per stream
 * so a stream receives a process's records in the order they were made. A failed or timed-out
 * batch is sent again (at-least-once: applying is idempotent), with backoff, until Redis answers.
 *
 * The buffer is bounded (`maxBuffered`). When it overflows, puts are dropped first (oldest
 * first; other processes then miss those entries — a miss, never a wrong answer), then the
 * invalidations left are folded into one `clear` per tenant + namespace they touch (broader,
 * so still safe). An invalidation is never simply dropped.
 */
export class FeedPublisher {
  private readonly queues: Pending[][];
  /** Records at the head of each queue that are being sent (not to be shed). */
  private readonly inFlight: number[];
  private total = 0;
  private failures = 0;
  private retry: NodeJS.Timeout | undefined;
  private scheduled = false;
  /** performance.now() of the last round of appends. */
  private lastRound = Number.NEGATIVE_INFINITY;
  /** Whether the connection is to a Cluster (unknown before the first one). */
  private cluster: boolean | undefined;
  private stopped = false;
  private readonly idle = new Set<() => void>();
  readonly stats: PublisherStats = { published: 0, buffered: 0, dropped: 0, collapsed: 0, oversized: 0, publishErrors: 0 };

  constructor(
    private readonly s: PublisherSettings,
    private readonly host: PublisherHost,
  ) {
    this.queues = s.keys.map(() => []);
    this.inFlight = s.keys.map(() => 0);
  }

  /** Buffers one mutation for every stream it belongs to; never throws. */
  publish(origin: string, m: SemanticMutation): void {
    if (this.stopped) return;
    let payload: Buffer;
    try {
      payload = encodeMutation(m);
    } catch (error) {
      this.host.report(new Error(`could not encode a ${m?.type} mutation: ${(error as Error)?.message ?? String(error)}`));
      return;
    }
    if (payload.length > this.s.maxRecordBytes && m.type === 'put') {
      // Its entry stays in L2 (exact lookups everywhere); only the other indexes lack it.
      this.stats.oversized++;
      return;
    }
    const droppable = m.type === 'put' || (m.type === 'delete' && m.reason !== 'delete');
    const scope = m.type === 'put' || m.type === 'delete' ? m.key.scope : m.scope;
    const item: Pending = { origin, payload, droppable, scope: scope && { tenant: scope.tenant, namespace: scope.namespace }, at: m.at };
    if (scope) this.enqueue(streamOf(scope, this.queues.length), item);
    else for (let i = 0; i < this.queues.length; i++) this.enqueue(i, item);
    if (this.total > this.s.maxBuffered) this.shed();
    this.schedule();
  }

  /** Resolves once everything buffered was sent, or after `timeoutMs`. */
  flush(timeoutMs: number): Promise<void> {
    if (this.total === 0) return Promise.resolve();
    this.schedule();
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.idle.delete(done);
        resolve();
      };
      const t = setTimeout(done, timeoutMs);
      t.unref?.();
      this.idle.add(done);
    });
  }

  /** Stops sending; what is still buffered is dropped (call `flush` first). */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.retry);
    for (const done of [...this.idle]) done();
  }

  private enqueue(i: number, item: Pending): void {
    this.queues[i]!.push(item);
    this.total++;
    this.stats.buffered = this.total;
  }

  /**
   * Sends what is buffered: on the next turn (records published in one turn go out together),
   * but at most one round every `batchMs` — under a steady stream of writes each round carries
   * every record of the last `batchMs` in one pipelined write (one script call per stream)
   * instead of one round trip per record, which is what an append costs in CPU, here and in
   * every follower woken by it. A record after a quiet spell goes out on the next turn.
   */
  private schedule(): void {
    if (this.scheduled || this.retry || this.stopped) return;
    this.scheduled = true;
    const round = () => {
      this.scheduled = false;
      this.lastRound = performance.now();
      this.sendAll();
    };
    const wait = this.lastRound + this.s.batchMs - performance.now();
    if (wait < 1) setImmediate(round);
    else setTimeout(round, Math.ceil(wait));
  }

  /**
   * Sends a batch from every stream that has records and none in flight: on one node all of
   * them in one script call (one round trip, and a blocked follower is woken once for all);
   * on a Cluster (streams in different slots) one call per stream. Before the first connection
   * tells which, one call per stream.
   */
  private sendAll(): void {
    if (this.stopped) return;
    const ready: number[] = [];
    for (let i = 0; i < this.queues.length; i++) if (this.inFlight[i] === 0 && this.queues[i]!.length > 0) ready.push(i);
    if (this.cluster === false && ready.length > 1) this.send(ready);
    else for (const i of ready) this.send([i]);
  }

  private send(streams: number[]): void {
    const keys: string[] = [];
    const counts: number[] = [];
    const pairs: Array<string | Buffer> = [];
    let bytes = 0;
    for (const i of streams) {
      const q = this.queues[i]!;
      // The whole call stays under BATCH_BYTES (one record at least); what is left goes next round.
      if (keys.length > 0 && bytes + q[0]!.payload.length > BATCH_BYTES) break;
      let n = 0;
      while (n < q.length && n < BATCH && (n === 0 || bytes + q[n]!.payload.length <= BATCH_BYTES)) {
        pairs.push(q[n]!.origin, q[n]!.payload);
        bytes += q[n]!.payload.length;
        n++;
      }
      this.inFlight[i] = n;
      keys.push(this.s.keys[i]!);
      counts.push(n);
    }
    const sent = streams.slice(0, keys.length);
    let used: Client | undefined;
    void this.host
      .connect()
      .then((client) => {
        used = client;
        this.cluster = client.isCluster;
        return withTimeout(
          APPEND.run(client, keys, [this.s.maxLength, ...counts, ...pairs]),
          this.s.publishTimeoutMs,
          () => new Error(`appending to ${keys.join(', ')} did not finish within ${this.s.publishTimeoutMs} ms (option: publishTimeoutMs)`),
        );
      })
      .then(
        () => {
          // Streams left out of this call (over BATCH_BYTES) go with the next round too.
          let more = sent.length < streams.length;
          for (const i of sent) {
            const n = this.inFlight[i]!;
            this.queues[i]!.splice(0, n);
            this.inFlight[i] = 0;
            this.total -= n;
            this.stats.published += n;
            if (this.queues[i]!.length > 0) more = true;
          }
          this.stats.buffered = this.total;
          this.failures = 0;
          // The rest goes with the next round.
          if (more) this.schedule();
          if (this.total === 0) for (const done of [...this.idle]) done();
        },
        (error: unknown) => {
          for (const i of sent) this.inFlight[i] = 0;
          this.stats.publishErrors++;
          // A failed or hung connection is not used again: the next attempt opens a fresh one
          // (rather than queueing behind a stopped server, or on a client that gave up reconnecting).
          if (used) this.host.discard(used);
          // One report per outage, not one per retry.
          if (this.failures++ === 0)
            this.host.report(new Error(`could not append to the semantic feed (${(error as Error)?.message ?? String(error)}); retrying`));
          if (!this.retry && !this.stopped) {
            this.retry = setTimeout(
              () => {
                this.retry = undefined;
                this.sendAll();
              },
              Math.min(2_000, 50 * 2 ** Math.min(this.failures, 6)),
            );
            this.retry.unref?.();
          }
        },
      );
  }

  /** The buffer overflowed: drop the oldest puts, then fold invalidations into scope clears. */
  private shed(): void {
    let excess = this.total - this.s.maxBuffered;
    for (let i = 0; i < this.queues.length && excess > 0; i++) {
      const q = this.queues[i]!;
      const keep = q.slice(0, this.inFlight[i]);
      for (let k = this.inFlight[i]!; k < q.length; k++) {
        if (excess > 0 && q[k]!.droppable) {
          excess--;
          this.total--;
          this.stats.dropped++;
        } else keep.push(q[k]!);
      }
      this.queues[i] = keep;
    }
    if (excess > 0) for (let i = 0; i < this.queues.length; i++) this.collapse(i);
    this.stats.buffered = this.total;
  }

  /** Replaces the invalidations waiting in stream `i` by one `clear` per scope they touch (one for all when any is un-scoped). */
  private collapse(i: number): void {
    const q = this.queues[i]!;
    const head = q.slice(0, this.inFlight[i]);
    const waiting = q.slice(this.inFlight[i]);
    if (waiting.length < 2) return;
    const scopes = new Map<string, { scope: ScopeBase | undefined; at: number; origin: string }>();
    for (const p of waiting) {
      const k = p.scope ? `${p.scope.tenant}\u0000${p.scope.namespace}` : '';
      const had = scopes.get(k);
      scopes.set(k, { scope: p.scope, at: Math.max(p.at, had?.at ?? 0), origin: p.origin });
    }
    const all = scopes.get('');
    const clears = all ? [all] : [...scopes.values()];
    if (clears.length >= waiting.length) return;
    const folded: Pending[] = clears.map((c) => ({
      origin: c.origin,
      payload: encodeMutation({ type: 'clear', at: c.at, ...(c.scope ? { scope: c.scope } : {}) }),
      droppable: false,
      scope: c.scope,
      at: c.at,
    }));
    this.stats.collapsed += waiting.length;
    this.total -= waiting.length - folded.length;
    this.queues[i] = [...head, ...folded];
  }
}
