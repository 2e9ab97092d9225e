import { InvalidOptionError } from '@strata-cache/core';
import type { Cluster, ClusterNode, ClusterOptions, Redis, RedisOptions } from 'ioredis';
import type { BreakerState } from './breaker.js';
import type { Compression } from './envelope.js';
import { PKG } from './errors.js';

export interface RedisLayerOptions {
  /**
   * An existing ioredis `Redis` or `Cluster` instance. The layer does not close it (see
   * `closeClient`) and does not change its settings: it fails fast by itself while the client
   * is not `ready`, so an offline queue on the instance is never used by the layer.
   * Exactly one of `client`, `url`, `redisOptions` or `cluster` (or none: `redis://127.0.0.1:6379`).
   */
  client?: Redis | Cluster | undefined;
  /** Connection URL (`redis://user:pass@host:6379/0`, `rediss://...`). @default "redis://127.0.0.1:6379" */
  url?: string | undefined;
  /**
   * ioredis options for a client the layer creates (merged over the layer's fail-open defaults:
   * lazyConnect, enableOfflineQueue false, maxRetriesPerRequest 0, enableAutoPipelining false,
   * autoResendUnfulfilledCommands false, connectTimeout 2000, capped reconnect backoff).
   * With `url`, these are applied on top of the URL. @default {}
   */
  redisOptions?: RedisOptions | undefined;
  /** Create an ioredis `Cluster` from these start-up nodes (with the same fail-open defaults). */
  cluster?: { nodes: ClusterNode[]; options?: ClusterOptions | undefined } | undefined;
  /** Key prefix (no `{` `}`); every key the layer writes starts with `<prefix>:`. @default "strata" */
  prefix?: string | undefined;
  /** Layer name in stats and events. @default "redis" */
  name?: string | undefined;
  /**
   * Time limit of one read (GET / MGET) and of each command of the coordinator's lock, ms,
   * counted from when the command is sent (time the event loop was busy before sending it does
   * not count). Waiting for a connection that is being re-established also counts. Keep it at
   * or below the budget MultiLayerCache gives the layer. @default 50
   */
  timeoutMs?: number | undefined;
  /**
   * Time the first operation may wait for the initial connection (and loading ioredis), ms.
   * Later reconnects are never waited for: operations fail fast until the breaker's probe
   * succeeds. @default 2000
   */
  connectTimeoutMs?: number | undefined;
  /** Time limit of one write / delete command, ms (writes are off the request path). @default 1000 */
  writeTimeoutMs?: number | undefined;
  /** Time limit of each command of an admin operation (clear, deleteByTag, scan, ...), ms. @default 5000 */
  adminTimeoutMs?: number | undefined;
  /**
   * Longest `close()` waits for writes and deletes still encoding or in flight before it closes
   * the connection, ms. @default 10000
   */
  closeTimeoutMs?: number | undefined;
  /** Compression of stored values at or above `compressThreshold` bytes of JSON. @default "deflate" */
  compression?: Compression | undefined;
  /**
   * Smallest JSON size (bytes) that is compressed. Below it a hit costs a GET and a
   * `JSON.parse`; compressing a 2 KB answer saves about 1 KB of Redis memory but costs more
   * CPU per hit than the GET itself (see the README's measurements). @default 16384
   */
  compressThreshold?: number | undefined;
  /**
   * Largest entry (bytes of JSON, before compression) the layer writes or reads. A larger stored
   * value (or one that inflates past it: a decompression bomb) is a miss plus a `DecodeError`
   * and is deleted; a larger write is refused (and the key's older value deleted). @default 33554432 (32 MiB)
   */
  maxValueBytes?: number | undefined;
  /** Upper bound on any entry's lifetime in Redis, ms; also applies to entries without TTL. @default undefined (entry TTL only) */
  maxTtlMs?: number | undefined;
  /**
   * Redis Cluster: slots one tenant+namespace is spread over. 1 keeps a whole scope (entries and
   * indexes) in one slot — simple and atomic, but one very large scope then lives on one master.
   * Changing it changes every key (old entries become unreachable misses). @default 1
   */
  slotsPerScope?: number | undefined;
  /** Circuit breaker. */
  breaker?:
    | {
        /** Consecutive timeouts / connection errors that open the circuit. @default 3 */
        failureThreshold?: number | undefined;
        /** Wait before probing an open circuit (one PING), ms. @default 500 */
        cooldownMs?: number | undefined;
        /** Time limit of the probe PING, ms. @default 250 */
        probeTimeoutMs?: number | undefined;
      }
    | undefined;
  /** Cross-process coalescing lock used by `layer.coordinator`. */
  lock?:
    | {
        /** Lock lifetime, ms; the holder renews it every ttl/3 while its loader runs, so a dead holder frees it within this. @default 5000 */
        ttlMs?: number | undefined;
        /**
         * Longest a miss spends in coordination (taking the lock, or waiting for another process's
         * load) before it loads by itself, ms: one deadline that every lock command and wait
         * respects. @default 60000
         */
        maxWaitMs?: number | undefined;
        /** First poll interval while waiting, ms (doubles up to pollMaxMs). @default 20 */
        pollMinMs?: number | undefined;
        /** Largest poll interval, ms. @default 200 */
        pollMaxMs?: number | undefined;
      }
    | undefined;
  /** Close (QUIT) the client in `close()`. @default true when the layer created the client, false for `client` */
  closeClient?: boolean | undefined;
  /** Called on every circuit breaker transition (for logs and metrics). */
  onStateChange?: ((state: BreakerState, cause?: unknown) => void) | undefined;
}

/** Every default of the package, in one place. */
export const REDIS_LAYER_DEFAULTS = Object.freeze({
  url: 'redis://127.0.0.1:6379',
  prefix: 'strata',
  name: 'redis',
  timeoutMs: 50,
  connectTimeoutMs: 2_000,
  writeTimeoutMs: 1_000,
  adminTimeoutMs: 5_000,
  closeTimeoutMs: 10_000,
  compression: 'deflate' as Compression,
  compressThreshold: 16_384,
  maxValueBytes: 32 * 1024 * 1024,
  slotsPerScope: 1,
  breaker: Object.freeze({ failureThreshold: 3, cooldownMs: 500, probeTimeoutMs: 250 }),
  lock: Object.freeze({ ttlMs: 5_000, maxWaitMs: 60_000, pollMinMs: 20, pollMaxMs: 200 }),
});

const KNOWN = Object.keys({
  client: true,
  url: true,
  redisOptions: true,
  cluster: true,
  prefix: true,
  name: true,
  timeoutMs: true,
  connectTimeoutMs: true,
  writeTimeoutMs: true,
  adminTimeoutMs: true,
  closeTimeoutMs: true,
  compression: true,
  compressThreshold: true,
  maxValueBytes: true,
  maxTtlMs: true,
  slotsPerScope: true,
  breaker: true,
  lock: true,
  closeClient: true,
  onStateChange: true,
} satisfies Record<keyof RedisLayerOptions, true>);
const KNOWN_BREAKER = Object.keys({ failureThreshold: true, cooldownMs: true, probeTimeoutMs: true } satisfies Record<
  keyof NonNullable<RedisLayerOptions['breaker']>,
  true
>);
const KNOWN_LOCK = Object.keys({ ttlMs: true, maxWaitMs: true, pollMinMs: true, pollMaxMs: true } satisfies Record<
  keyof NonNullable<RedisLayerOptions['lock']>,
  true
>);

/** Options after validation, with every default applied. */
export interface ResolvedOptions {
  readonly source: RedisLayerOptions;
  readonly prefix: string;
  readonly name: string;
  readonly timeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly writeTimeoutMs: number;
  readonly adminTimeoutMs: number;
  readonly closeTimeoutMs: number;
  readonly compression: Compression;
  readonly compressThreshold: number;
  readonly maxValueBytes: number;
  readonly maxTtlMs: number | undefined;
  readonly slotsPerScope: number;
  readonly failureThreshold: number;
  readonly cooldownMs: number;
  readonly probeTimeoutMs: number;
  readonly lockTtlMs: number;
  readonly lockMaxWaitMs: number;
  readonly pollMinMs: number;
  readonly pollMaxMs: number;
  readonly closeClient: boolean;
}

export function resolveOptions(options: RedisLayerOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError(`${PKG}: options must be an object`);
  for (const k of Object.keys(options)) {
    if (!KNOWN.includes(k)) throw new InvalidOptionError(`${PKG}: unknown option "${k}"`, { field: k });
  }
  checkSub(options.breaker, KNOWN_BREAKER, 'breaker');
  checkSub(options.lock, KNOWN_LOCK, 'lock');
  const sources = ['client', 'url', 'redisOptions', 'cluster'].filter((k) => (options as Record<string, unknown>)[k] !== undefined);
  if (sources.length > 1 && !(sources.length === 2 && sources.includes('url') && sources.includes('redisOptions'))) {
    throw new InvalidOptionError(`${PKG}: pass only one of "client", "url" (optionally with "redisOptions") or "cluster"; got ${sources.join(', ')}`, {
      field: sources[1],
    });
  }
  if (options.client !== undefined && !isClient(options.client)) {
    throw new InvalidOptionError(`${PKG}: option "client" must be an ioredis Redis or Cluster instance`, { field: 'client' });
  }
  if (options.cluster !== undefined && !(Array.isArray(options.cluster?.nodes) && options.cluster.nodes.length > 0)) {
    throw new InvalidOptionError(`${PKG}: option "cluster.nodes" must be a non-empty array of start-up nodes`, { field: 'cluster.nodes' });
  }
  if (options.url !== undefined && !/^rediss?:\/\//.test(options.url)) {
    throw new InvalidOptionError(`${PKG}: option "url" must start with redis:// or rediss://`, { field: 'url' });
  }
  const D = REDIS_LAYER_DEFAULTS;
  const prefix = options.prefix ?? D.prefix;
  if (typeof prefix !== 'string' || prefix === '' || /[{}\s]/.test(prefix)) {
    throw new InvalidOptionError(`${PKG}: option "prefix" must be a non-empty string without braces or whitespace`, { field: 'prefix' });
  }
  const name = options.name ?? D.name;
  if (typeof name !== 'string' || name === '') throw new InvalidOptionError(`${PKG}: option "name" must be a non-empty string`, { field: 'name' });
  const compression = options.compression ?? D.compression;
  if (!['deflate', 'brotli', 'none'].includes(compression)) {
    throw new InvalidOptionError(`${PKG}: option "compression" must be 'deflate', 'brotli' or 'none'`, { field: 'compression' });
  }
  const compressThreshold = options.compressThreshold ?? D.compressThreshold;
  if (typeof compressThreshold !== 'number' || !(compressThreshold >= 0)) {
    throw new InvalidOptionError(`${PKG}: option "compressThreshold" must be >= 0 (bytes)`, { field: 'compressThreshold' });
  }
  const maxValueBytes = options.maxValueBytes ?? D.maxValueBytes;
  if (!Number.isSafeInteger(maxValueBytes) || maxValueBytes < 1024 || maxValueBytes > 2 ** 30) {
    throw new InvalidOptionError(`${PKG}: option "maxValueBytes" must be an integer from 1024 to 2^30 (bytes)`, { field: 'maxValueBytes' });
  }
  const slotsPerScope = options.slotsPerScope ?? D.slotsPerScope;
  if (!Number.isSafeInteger(slotsPerScope) || slotsPerScope < 1 || slotsPerScope > 1024) {
    throw new InvalidOptionError(`${PKG}: option "slotsPerScope" must be an integer in 1..1024`, { field: 'slotsPerScope' });
  }
  const failureThreshold = options.breaker?.failureThreshold ?? D.breaker.failureThreshold;
  if (!Number.isSafeInteger(failureThreshold) || failureThreshold < 1) {
    throw new InvalidOptionError(`${PKG}: option "breaker.failureThreshold" must be a positive integer`, { field: 'breaker.failureThreshold' });
  }
  if (options.closeClient !== undefined && typeof options.closeClient !== 'boolean') {
    throw new InvalidOptionError(`${PKG}: option "closeClient" must be a boolean`, { field: 'closeClient' });
  }
  if (options.onStateChange !== undefined && typeof options.onStateChange !== 'function') {
    throw new InvalidOptionError(`${PKG}: option "onStateChange" must be a function`, { field: 'onStateChange' });
  }
  return {
    source: options,
    prefix,
    name,
    timeoutMs: positive(options.timeoutMs ?? D.timeoutMs, 'timeoutMs'),
    connectTimeoutMs: positive(options.connectTimeoutMs ?? D.connectTimeoutMs, 'connectTimeoutMs'),
    writeTimeoutMs: positive(options.writeTimeoutMs ?? D.writeTimeoutMs, 'writeTimeoutMs'),
    adminTimeoutMs: positive(options.adminTimeoutMs ?? D.adminTimeoutMs, 'adminTimeoutMs'),
    closeTimeoutMs: positive(options.closeTimeoutMs ?? D.closeTimeoutMs, 'closeTimeoutMs'),
    compression,
    compressThreshold,
    maxValueBytes,
    // Whole milliseconds (sent as PX, which takes integers only), rounded down: never above the cap.
    maxTtlMs: options.maxTtlMs === undefined ? undefined : Math.max(1, Math.floor(positive(options.maxTtlMs, 'maxTtlMs'))),
    slotsPerScope,
    failureThreshold,
    cooldownMs: positive(options.breaker?.cooldownMs ?? D.breaker.cooldownMs, 'breaker.cooldownMs'),
    probeTimeoutMs: positive(options.breaker?.probeTimeoutMs ?? D.breaker.probeTimeoutMs, 'breaker.probeTimeoutMs'),
    // Whole milliseconds: it is sent as SET … PX and PEXPIRE, which take integers only.
    lockTtlMs: Math.ceil(positive(options.lock?.ttlMs ?? D.lock.ttlMs, 'lock.ttlMs')),
    lockMaxWaitMs: positive(options.lock?.maxWaitMs ?? D.lock.maxWaitMs, 'lock.maxWaitMs'),
    pollMinMs: positive(options.lock?.pollMinMs ?? D.lock.pollMinMs, 'lock.pollMinMs'),
    pollMaxMs: positive(options.lock?.pollMaxMs ?? D.lock.pollMaxMs, 'lock.pollMaxMs'),
    closeClient: options.closeClient ?? options.client === undefined,
  };
}

function positive(v: number, field: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
    throw new InvalidOptionError(`${PKG}: option "${field}" must be a positive number of milliseconds`, { field });
  }
  return v;
}

function checkSub(value: unknown, known: readonly string[], field: string): void {
  if (value === undefined) return;
  if (typeof value !== 'object' || value === null) throw new InvalidOptionError(`${PKG}: option "${field}" must be an object`, { field });
  for (const k of Object.keys(value)) {
    if (!known.includes(k)) throw new InvalidOptionError(`${PKG}: unknown option "${field}.${k}"`, { field: `${field}.${k}` });
  }
}

function isClient(x: unknown): x is Redis | Cluster {
  const c = x as Redis;
  return typeof c === 'object' && c !== null && typeof c.getBuffer === 'function' && typeof c.multi === 'function' && typeof c.isCluster === 'boolean';
}
