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
 * happens on the next turn, one script call per stream per batch, one batch in flight per stream
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

  private schedule(): void {
    if (this.scheduled || this.retry || this.stopped) return;
    this.scheduled = true;
    // Records published in one turn go out together.
    setImmediate(() => {
      this.scheduled = false;
      for (let i = 0; i < this.queues.length; i++) this.send(i);
    });
  }

  private send(i: number): void {
    const q = this.queues[i]!;
    if (this.stopped || this.inFlight[i]! > 0 || q.length === 0) return;
    let n = 0;
    let bytes = 0;
    const args: Array<string | Buffer | number> = [this.s.maxLength];
    while (n < q.length && n < BATCH && (n === 0 || bytes + q[n]!.payload.length <= BATCH_BYTES)) {
      args.push(q[n]!.origin, q[n]!.payload);
      bytes += q[n]!.payload.length;
      n++;
    }
    this.inFlight[i] = n;
    let used: Client | undefined;
    void this.host
      .connect()
      .then((client) => {
        used = client;
        return withTimeout(
          APPEND.run(client, [this.s.keys[i]!], args),
          this.s.publishTimeoutMs,
          () => new Error(`appending to ${this.s.keys[i]} did not finish within ${this.s.publishTimeoutMs} ms (option: publishTimeoutMs)`),
        );
      })
      .then(
        () => {
          q.splice(0, n);
          this.inFlight[i] = 0;
          this.total -= n;
          this.stats.buffered = this.total;
          this.stats.published += n;
          this.failures = 0;
          this.send(i);
          if (this.total === 0) for (const done of [...this.idle]) done();
        },
        (error: unknown) => {
          this.inFlight[i] = 0;
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
                for (let k = 0; k < this.queues.length; k++) this.send(k);
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
