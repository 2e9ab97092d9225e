import { MissingDependencyError } from '@strata-cache/core';
import type { Cluster, ClusterOptions, Redis, RedisOptions } from 'ioredis';
import { CircuitBreaker } from './breaker.js';
import { CircuitOpenError, PKG, RedisTimeoutError, abortedError, closedError, isAvailabilityError, optionFor, timeoutError, wrap } from './errors.js';
import type { ResolvedOptions } from './options.js';
import type { Client } from './scripts.js';
import { DeadlineQueue, withTimeout } from './timing.js';

/** Counters for observability and tests. */
export interface Counters {
  fastFails: number;
  timeouts: number;
  decodeErrors: number;
}

/**
 * The layer's connection: creates (or adopts) the ioredis client, and runs every command
 * fail-open — refused at once while the circuit is open or the layer closed, limited in time
 * (counted from when the command is sent), feeding the circuit breaker.
 */
export class Connection {
  readonly breaker: CircuitBreaker;
  readonly counters: Counters = { fastFails: 0, timeouts: 0, decodeErrors: 0 };
  /** One FIFO of deadlines per common limit (timeoutMs, writeTimeoutMs, adminTimeoutMs). */
  private readonly queues = new Map<number, DeadlineQueue>();
  /** Set by RedisLayer.close() once writes have drained: every command is refused from then on. */
  closed = false;
  client: Client | undefined;
  private clientPromise: Promise<Client> | undefined;
  private connecting: Promise<void> | undefined;
  /** One readiness wait shared by every operation (no listener per waiting request). */
  private ready: Promise<void> | undefined;
  private everReady = false;
  private readonly availability = new Set<() => void>();
  private readonly watched = new WeakSet<object>();

  constructor(
    readonly o: ResolvedOptions,
    readonly name: string,
  ) {
    if (o.source.client) this.client = o.source.client;
    const userListener = o.source.onStateChange;
    this.breaker = new CircuitBreaker({
      failureThreshold: o.failureThreshold,
      cooldownMs: o.cooldownMs,
      probe: () => this.probe(),
      onStateChange: (state, cause) => {
        try {
          userListener?.(state, cause);
        } catch {
          // the application's listener must not break the breaker (a request left unsettled, no probe scheduled)
        }
        if (state === 'closed') this.available();
      },
    });
    if (this.client) this.watch(this.client);
    for (const ms of [o.timeoutMs, o.writeTimeoutMs, o.adminTimeoutMs]) if (!this.queues.has(ms)) this.queues.set(ms, new DeadlineQueue(ms));
  }

  /**
   * Calls `listener` whenever Redis becomes usable again after it was not: the circuit closed
   * after being open, or the connection was re-established (a restarted server, a failover).
   * Returns a function that removes it.
   */
  onAvailable(listener: () => void): () => void {
    this.availability.add(listener);
    return () => void this.availability.delete(listener);
  }

  private available(): void {
    for (const l of [...this.availability]) {
      try {
        l();
      } catch {
        // a listener must not break the connection's bookkeeping
      }
    }
  }

  /** Reconnects ('ready' after the first) count as recovery: probe at once, tell listeners. */
  private watch(client: Client): void {
    if (this.watched.has(client)) return;
    this.watched.add(client);
    let readyBefore = client.status === 'ready';
    client.on('ready', () => {
      const again = readyBefore;
      readyBefore = true;
      if (!again || this.closed) return;
      if (this.breaker.state === 'closed') this.available();
      else this.breaker.probeSoon();
    });
  }

  /** The client when a command can be sent right now (connected, circuit closed, layer open). */
  hot(): Client | undefined {
    const c = this.client;
    return c !== undefined && c.status === 'ready' && !this.closed && this.breaker.allow() ? c : undefined;
  }

  queue(ms: number): DeadlineQueue {
    return this.queues.get(ms)!;
  }

  /** The ioredis client (created on first use when the layer owns it). */
  async getClient(): Promise<Client> {
    return this.client ?? (await this.createClient());
  }

  /** A new connection with the layer's settings (e.g. a pub/sub subscriber); the caller closes it. */
  async duplicate(overrides: Partial<RedisOptions> = {}): Promise<Client> {
    const client = await this.getClient();
    if (client.isCluster) {
      const c = client as Cluster;
      return c.duplicate(undefined, { ...c.options, redisOptions: { ...c.options.redisOptions, ...overrides }, ...pickClusterLevel(overrides) });
    }
    return (client as Redis).duplicate(overrides);
  }

  /**
   * Runs one Redis operation fail-open: refused at once while the circuit is open or the layer
   * closed, limited to `timeoutMs` from when it is sent (waiting for the first connection has
   * connectTimeoutMs), and feeding the breaker. An operation whose `signal` aborted before it
   * was sent is not sent.
   */
  async exec<T>(operation: string, timeoutMs: number, fn: (c: Client) => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (this.closed) throw closedError(this.name);
    if (!this.breaker.allow()) {
      this.counters.fastFails++;
      throw new CircuitOpenError(this.name, operation, `${PKG}: circuit ${this.breaker.state} (Redis unavailable); ${operation} skipped`);
    }
    const client = this.client ?? (await this.createClient());
    if (client.status !== 'ready') {
      // The very first connection (plus loading ioredis) gets connectTimeoutMs, not the
      // per-operation limit; MultiLayerCache's budget still bounds the request. Call
      // connect() at start-up to take this off the first request entirely.
      await this.waitReady(client, operation, this.everReady ? timeoutMs : this.o.connectTimeoutMs, signal);
    }
    this.everReady = true;
    if (signal?.aborted) throw abortedError(this.name, operation, signal);
    if (this.closed) throw closedError(this.name);
    const queue = this.queues.get(timeoutMs);
    if (queue) return this.timed(fn(client), queue, operation);
    try {
      const r = await withTimeout(fn(client), timeoutMs, () => {
        this.counters.timeouts++;
        return timeoutError(this.name, operation, timeoutMs);
      });
      this.breaker.success();
      return r;
    } catch (error) {
      if (isAvailabilityError(error)) this.breaker.failure(error);
      throw wrap(this.name, operation, error);
    }
  }

  /** Settles with `p`, or rejects when the queue's time limit passes first; feeds the breaker. */
  timed<T, R = T>(p: Promise<T>, queue: DeadlineQueue, operation: string, map?: (v: T) => R): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const handle = queue.add(() => {
        this.counters.timeouts++;
        const error = timeoutError(this.name, operation, queue.ms);
        this.breaker.failure(error);
        reject(error);
      });
      p.then(
        (v) => {
          if (handle.done) return;
          handle.done = true;
          this.breaker.success();
          if (!map) return resolve(v as unknown as R);
          try {
            resolve(map(v));
          } catch (error) {
            reject(error);
          }
        },
        (error: unknown) => {
          if (handle.done) return;
          handle.done = true;
          if (isAvailabilityError(error)) this.breaker.failure(error);
          reject(wrap(this.name, operation, error));
        },
      );
    });
  }

  /** Not ready: wait for the first connection within the time limit; fail fast when it was lost. */
  private async waitReady(client: Client, operation: string, timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
    const status = client.status;
    if (status === 'wait') this.startConnect(client);
    else if (status !== 'connecting' && status !== 'connect') {
      // reconnecting / close / end: the server is known to be gone; the breaker's probe will notice its return.
      this.counters.fastFails++;
      const error = new CircuitOpenError(this.name, operation, `${PKG}: Redis connection is ${status}; ${operation} skipped`);
      this.breaker.trip(error);
      throw error;
    }
    let ready = this.readyPromise(client);
    let onAbort: (() => void) | undefined;
    if (signal) {
      // A caller that gives up while the connection is being made sends nothing.
      if (signal.aborted) throw abortedError(this.name, operation, signal);
      ready = Promise.race([
        ready,
        new Promise<never>((_, reject) =>
          signal.addEventListener('abort', (onAbort = () => reject(abortedError(this.name, operation, signal))), { once: true }),
        ),
      ]);
    }
    try {
      await withTimeout(ready, timeoutMs, () => {
        this.counters.timeouts++;
        return new RedisTimeoutError(
          this.name,
          operation,
          `${PKG}: Redis not ready within ${timeoutMs} ms (option: ${this.everReady ? optionFor(operation) : 'connectTimeoutMs'})`,
        );
      });
    } catch (error) {
      if (isAvailabilityError(error)) this.breaker.failure(error);
      throw wrap(this.name, operation, error);
    } finally {
      if (onAbort) signal!.removeEventListener('abort', onAbort);
    }
  }

  /** Resolves on 'ready', rejects when the connection attempt ends ('close' / 'end'); shared by all waiters. */
  private readyPromise(client: Client): Promise<void> {
    if (client.status === 'ready') return Promise.resolve();
    if (this.ready) return this.ready;
    const p = new Promise<void>((resolve, reject) => {
      const cleanup = () => {
        client.off('ready', onReady);
        client.off('close', onClose);
        client.off('end', onClose);
        if (this.ready === p) this.ready = undefined;
      };
      const onReady = () => {
        cleanup();
        resolve();
      };
      const onClose = () => {
        cleanup();
        reject(new Error('connection closed before it was ready'));
      };
      client.once('ready', onReady);
      client.once('close', onClose);
      client.once('end', onClose);
    });
    p.catch(() => undefined);
    this.ready = p;
    return p;
  }

  private startConnect(client: Client): void {
    if (this.connecting || client.status !== 'wait') return;
    this.connecting = client
      .connect()
      .catch(() => undefined) // reconnects are ioredis' job; availability is the breaker's
      .finally(() => {
        this.connecting = undefined;
      });
  }

  private async probe(): Promise<void> {
    const client = this.client ?? (await this.createClient());
    if (client.status === 'wait') this.startConnect(client);
    await withTimeout(client.ping(), this.o.probeTimeoutMs, () => new Error('probe PING timed out'));
  }

  private createClient(): Promise<Client> {
    if (this.clientPromise) return this.clientPromise;
    this.clientPromise = (async () => {
      const mod = await loadIoredis();
      const o = this.o.source;
      let client: Client;
      if (o.cluster) {
        const { redisOptions: userRedis, ...userCluster } = o.cluster.options ?? {};
        client = new mod.Cluster(o.cluster.nodes, {
          lazyConnect: true,
          enableOfflineQueue: false,
          // Off: the layer batches itself (a tick's reads → one MGET per slot, its writes → one
          // MULTI); ioredis' auto-pipelining would hold every batch for another event-loop turn.
          enableAutoPipelining: false,
          clusterRetryStrategy: (times: number) => Math.min(100 * times, 1_000),
          ...userCluster,
          redisOptions: { connectTimeout: this.o.connectTimeoutMs, maxRetriesPerRequest: 0, autoResendUnfulfilledCommands: false, ...userRedis },
        });
      } else {
        const base: RedisOptions = {
          lazyConnect: true,
          enableOfflineQueue: false,
          // 0: commands in flight when the connection drops are rejected at once. (With
          // autoResendUnfulfilledCommands false and retries > 0, ioredis drops them without
          // settling them on reconnect, which wedges its auto-pipeline queue for good.)
          maxRetriesPerRequest: 0,
          // Off: the layer batches itself (a tick's reads → one MGET, its writes → one MULTI);
          // ioredis' auto-pipelining would hold every batch for another event-loop turn
          // (setImmediate) before writing it: measured, a slower GET and a longer tail.
          enableAutoPipelining: false,
          autoResendUnfulfilledCommands: false,
          connectTimeout: this.o.connectTimeoutMs,
          retryStrategy: (times: number) => Math.min(50 * times, 500),
        };
        client = new mod.Redis(o.url ?? 'redis://127.0.0.1:6379', { ...base, ...(o.redisOptions ?? {}) });
      }
      // The layer reports failures through its operations; without a listener ioredis would log
      // every reconnect attempt as an unhandled error.
      client.on('error', () => undefined);
      this.watch(client);
      this.client = client;
      return client;
    })();
    return this.clientPromise;
  }

  /** Masters of a Cluster (sorted, so cursors over them are stable), or the one server. */
  async masters(operation: string): Promise<Redis[]> {
    const client = await this.getClient();
    if (!client.isCluster) return [client as Redis];
    await this.exec(operation, this.o.adminTimeoutMs, async () => undefined);
    const nodes = (client as Cluster).nodes('master');
    return [...nodes].sort((a, b) => nodeId(a).localeCompare(nodeId(b)));
  }

  /** Stops the breaker and QUITs (or, when not `graceful`, drops) the client when the layer owns it. */
  async close(options: { graceful: boolean } = { graceful: true }): Promise<void> {
    this.closed = true;
    this.breaker.dispose();
    const client = this.client ?? (this.clientPromise ? await this.clientPromise.catch(() => undefined) : undefined);
    if (client && this.o.closeClient) {
      if (client.status === 'ready' && options.graceful) {
        await withTimeout(client.quit(), 1_000, () => new Error('quit timed out')).catch(() => client.disconnect());
      } else client.disconnect();
    }
  }
}

interface IoredisModule {
  Redis: typeof Redis;
  Cluster: typeof Cluster;
}
let ioredis: Promise<IoredisModule> | undefined;

/**
 * Loads the ioredis peer on first use. The import must be written here, not in core's
 * lazyImport: a bare specifier resolves from the importing file, and ioredis is a peer of this
 * package, not of core (strict pnpm layouts would not find it from core).
 */
function loadIoredis(): Promise<IoredisModule> {
  ioredis ??= import('ioredis')
    .then((m): IoredisModule => ({ Redis: m.Redis, Cluster: m.Cluster }))
    .catch((cause: unknown) => {
      ioredis = undefined;
      throw new MissingDependencyError(
        'ioredis',
        `${PKG} needs its peer dependency "ioredis" (>=5) to create a client (${(cause as Error)?.message ?? cause}). Install it: pnpm add ioredis — or pass your own instance as option "client"`,
        { cause },
      );
    });
  return ioredis!;
}

function nodeId(r: Redis): string {
  return `${r.options.host}:${r.options.port}`;
}

function pickClusterLevel(overrides: Partial<RedisOptions>): Partial<ClusterOptions> {
  const out: Partial<ClusterOptions> = {};
  if (overrides.enableOfflineQueue !== undefined) out.enableOfflineQueue = overrides.enableOfflineQueue;
  if (overrides.lazyConnect !== undefined) out.lazyConnect = overrides.lazyConnect;
  return out;
}
