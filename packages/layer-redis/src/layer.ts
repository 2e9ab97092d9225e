import {
  type CacheEntry,
  type CacheKey,
  DecodeError,
  LAYER_SPECIFICATION_VERSION,
  type LayerCapabilities,
  type LayerContext,
  type LayerV1,
  type LoadCoordinator,
  type ScanPage,
  type Scope,
} from '@strata-cache/core';
import type { Cluster, Redis, RedisOptions } from 'ioredis';
import { Admin } from './admin.js';
import type { BreakerState } from './breaker.js';
import { Connection } from './connection.js';
import { LockCoordinator } from './coordinator.js';
import { UnboundValueError, UnreadableFormatError } from './envelope.js';
import { closedError } from './errors.js';
import { KeySpace } from './keys.js';
import { type RedisLayerOptions, type ResolvedOptions, resolveOptions } from './options.js';
import { ReadBatcher } from './read-batcher.js';
import { Subscriber } from './subscriber.js';
import { Writer } from './writes.js';

export type { RedisLayerOptions } from './options.js';

const CAPABILITIES: LayerCapabilities = Object.freeze({
  nativeTtl: true,
  batch: true,
  semantic: false,
  shared: true,
  tags: true,
  remote: true,
});

/** Counters for observability and tests. */
export interface RedisLayerStats {
  readonly state: BreakerState;
  /** Times the circuit opened. */
  readonly opens: number;
  /** Operations refused immediately because the circuit was open or the client not connected. */
  readonly fastFails: number;
  /** Operations that timed out. */
  readonly timeouts: number;
  /** Values that could not be decoded, were bound to another key, or were too large (served as misses). */
  readonly decodeErrors: number;
}

/**
 * L2: a Redis (or Redis Cluster) layer shared by every process, via ioredis.
 *
 * Never the reason a request fails: every operation has a time limit, nothing is queued while
 * disconnected, and a circuit breaker stops calling a dead or hung server (then probes it and
 * resumes by itself). Failures surface as rejections that MultiLayerCache turns into misses
 * plus `error` events.
 *
 * The work is split by concern: {@link Connection} (client, fail-open execution),
 * {@link ReadBatcher} (per-tick GET/MGET), {@link Writer} (MULTI writes, deletes, draining at
 * close), {@link Admin} (purges, scan), {@link LockCoordinator} and one shared
 * {@link Subscriber} connection for everything that listens.
 */
export class RedisLayer implements LayerV1 {
  readonly specificationVersion = LAYER_SPECIFICATION_VERSION;
  readonly name: string;
  readonly capabilities = CAPABILITIES;
  /** Key layout helper (exposed for tools and tests). */
  readonly keys: KeySpace;
  /** Cross-process coalescing for `new MultiLayerCache({ coordinator: layer.coordinator })`. */
  readonly coordinator: LoadCoordinator;

  private readonly o: ResolvedOptions;
  private readonly conn: Connection;
  private readonly reads: ReadBatcher;
  private readonly writer: Writer;
  private readonly admin: Admin;
  private readonly lock: LockCoordinator;
  private readonly subscriber: Subscriber;
  /** close() has begun: new operations are refused; writes already started still drain. */
  private closing: Promise<void> | undefined;

  constructor(options: RedisLayerOptions = {}) {
    this.o = resolveOptions(options);
    this.name = this.o.name;
    this.keys = new KeySpace(this.o.prefix, this.o.slotsPerScope);
    this.conn = new Connection(this.o, this.name);
    this.writer = new Writer(this.conn, this.keys, this.o);
    this.reads = new ReadBatcher(this.conn, {
      timeoutMs: this.o.timeoutMs,
      maxValueBytes: this.o.maxValueBytes,
      discard: (rk, error) => {
        // Corrupt, foreign or oversized values are removed so they stop costing errors; a value
        // of another format is left alone (another version wrote it and still reads it).
        if (error instanceof UnreadableFormatError || error instanceof UnboundValueError) return;
        if (!(error instanceof DecodeError) || this.closing) return;
        void this.writer.remove('delete', rk).catch(() => undefined);
      },
    });
    this.admin = new Admin(this.conn, this.keys, this.writer, this.reads);
    this.subscriber = new Subscriber(() =>
      this.conn.duplicate({ lazyConnect: false, enableOfflineQueue: true, maxRetriesPerRequest: null, autoResubscribe: true, enableAutoPipelining: false }),
    );
    this.lock = new LockCoordinator(this.conn, this.keys, this.o, this.reads, this.writer, this.subscriber);
    this.coordinator = { begin: (key) => this.lock.begin(key) };
  }

  /** Circuit breaker state: `closed` (using Redis), `open` (failing fast), `half-open` (probing). */
  get state(): BreakerState {
    return this.conn.breaker.state;
  }

  stats(): RedisLayerStats {
    return { state: this.conn.breaker.state, opens: this.conn.breaker.opens, ...this.conn.counters };
  }

  /**
   * Connects now (optional warm-up, e.g. at process start) so the first request does not wait
   * for the connection. Resolves when ready; rejects after connectTimeoutMs.
   */
  async connect(): Promise<void> {
    this.assertOpen();
    await this.conn.exec('connect', this.o.connectTimeoutMs, (c) => c.ping());
  }

  /** The ioredis client (created on first use when the layer owns it). */
  async getClient(): Promise<Redis | Cluster> {
    this.assertOpen();
    return this.conn.getClient();
  }

  /** A new connection with the layer's connection settings. The caller owns and closes it. */
  async duplicateClient(overrides: Partial<RedisOptions> = {}): Promise<Redis | Cluster> {
    this.assertOpen();
    return this.conn.duplicate(overrides);
  }

  /**
   * Runs a command through the layer's fail-open path (circuit breaker, time limit, no offline
   * queue). Used by RedisInvalidationBus; handy for tools.
   */
  runCommand<T>(operation: string, timeoutMs: number, fn: (client: Redis | Cluster) => Promise<T>): Promise<T> {
    if (this.closing) return Promise.reject(closedError(this.name));
    return this.conn.exec(operation, timeoutMs, fn);
  }

  /**
   * Listens to a pub/sub channel on the layer's one subscriber connection (shared with the
   * coordinator's wake-ups and every other subscription of this layer). Resolves with the
   * function that stops listening. `onResubscribed` is called each time the subscription is
   * back after the connection was lost (messages published meanwhile were missed).
   */
  async subscribe(
    channel: string,
    onMessage: (message: string) => void,
    onError?: (error: Error) => void,
    onResubscribed?: () => void,
  ): Promise<() => Promise<void>> {
    this.assertOpen();
    return this.subscriber.subscribe(channel, onMessage, onError, onResubscribed);
  }

  /**
   * Calls `listener` whenever Redis becomes usable again after it was not (the connection was
   * re-established, or the circuit breaker closed). Returns a function that removes it.
   */
  onAvailable(listener: () => void): () => void {
    return this.conn.onAvailable(listener);
  }

  // ------------------------------------------------------------------------------ Layer v1

  get(key: CacheKey, ctx?: LayerContext): Promise<CacheEntry | undefined> {
    if (this.closing) return Promise.reject(closedError(this.name));
    return this.reads.read(this.keys.entry(key), key.id, ctx?.signal);
  }

  set(key: CacheKey, entry: CacheEntry, ctx?: LayerContext): Promise<void> {
    if (this.closing) return Promise.reject(closedError(this.name));
    return this.writer.set(key, entry, ctx?.signal);
  }

  async delete(key: CacheKey): Promise<boolean> {
    this.assertOpen();
    const rk = this.keys.entry(key);
    return (await this.writer.deleteEntry('delete', rk)) > 0;
  }

  /** Results in key order; a key that is missing, or whose value cannot be decoded, is `undefined`. */
  async getMany(keys: readonly CacheKey[], ctx?: LayerContext): Promise<Array<CacheEntry | undefined>> {
    this.assertOpen();
    // Reads issued together are coalesced: one MGET per hash tag (Cluster slot).
    return Promise.all(keys.map((k) => this.get(k, ctx).catch((error: unknown) => (error instanceof DecodeError ? undefined : Promise.reject(error)))));
  }

  async setMany(items: ReadonlyArray<{ key: CacheKey; entry: CacheEntry }>, ctx?: LayerContext): Promise<void> {
    this.assertOpen();
    await Promise.all(items.map((i) => this.set(i.key, i.entry, ctx)));
  }

  async deleteMany(keys: readonly CacheKey[]): Promise<number> {
    this.assertOpen();
    const rs = await Promise.all(keys.map((k) => this.delete(k)));
    return rs.filter(Boolean).length;
  }

  /**
   * Removes every entry of the tenant+namespace, or without a scope every entry of this layer with
   * its indexes and locks (not the watermarks, feed streams or other keys under the prefix, nor
   * keys of a longer prefix); resolves the number of entries removed.
   */
  clear(scope?: Pick<Scope, 'tenant' | 'namespace'>): Promise<number> {
    if (this.closing) return Promise.reject(closedError(this.name));
    return this.admin.clear(scope);
  }

  async deleteByTag(tag: string, scope?: Pick<Scope, 'tenant' | 'namespace'>): Promise<number> {
    this.assertOpen();
    return this.admin.deleteByTag(tag, scope);
  }

  async deleteOlderVersions(scope: Scope): Promise<number> {
    this.assertOpen();
    return this.admin.deleteOlderVersions(scope);
  }

  async scan(
    options: { scope?: Pick<Scope, 'tenant' | 'namespace'> | undefined; cursor?: string | undefined; count?: number | undefined } = {},
  ): Promise<ScanPage> {
    this.assertOpen();
    return this.admin.scan(options);
  }

  /**
   * Refuses new operations at once, waits up to `closeTimeoutMs` for writes and deletes still
   * encoding or in flight (so a value written just before lands), then closes the connections.
   * A second call returns the first one's promise.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.lock.closed = true;
    this.lock.wakeAll();
    const drained = await this.writer.drain(this.o.closeTimeoutMs);
    await this.subscriber.close();
    // Writes still pending after closeTimeoutMs mean Redis is not answering: a QUIT would only
    // wait for it too, so the connection is dropped at once (close() stays within its bound).
    await this.conn.close({ graceful: drained });
  }

  private assertOpen(): void {
    if (this.closing) throw closedError(this.name);
  }
}
