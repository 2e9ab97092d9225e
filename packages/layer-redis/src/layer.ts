import {
  type CacheEntry,
  type CacheKey,
  InvalidOptionError,
  LAYER_SPECIFICATION_VERSION,
  type LayerCapabilities,
  LayerError,
  type LayerV1,
  type LoadCoordinator,
  type LoadTicket,
  type ScanPage,
  type Scope,
  StrataError,
  MissingDependencyError,
  isExpired,
  scopeBaseId,
} from '@strata-cache/core';
import type { Cluster, ClusterNode, ClusterOptions, Redis, RedisOptions } from 'ioredis';
import { randomUUID } from 'node:crypto';
import { type BreakerState, CircuitBreaker } from './breaker.js';
import { type Compression, NewerFormatError, decodeEntry, encodeEntry } from './envelope.js';
import { DeadlineQueue } from './deadlines.js';
import { KeySpace, encodeTag } from './keys.js';
import { type Client, EXTEND_LOCK, PURGE_CHUNK, REGISTER_TAG, RELEASE_LOCK, SET_ENTRY } from './scripts.js';

const PKG = '@strata-cache/layer-redis';

export interface RedisLayerOptions {
  /**
   * An existing ioredis `Redis` or `Cluster` instance. The layer does not close it (see
   * `closeClient`) and does not change its settings: it fails fast by itself while the client
   * is not `ready`, so an offline queue on the instance is never used by the layer.
   * Exactly one of `client`, `url`, `redisOptions` or `cluster` (or none: `redis://127.0.0.1:6379`).
   */
  client?: Redis | Cluster;
  /** Connection URL (`redis://user:pass@host:6379/0`, `rediss://...`). @default "redis://127.0.0.1:6379" */
  url?: string;
  /**
   * ioredis options for a client the layer creates (merged over the layer's fail-open defaults:
   * lazyConnect, enableOfflineQueue false, maxRetriesPerRequest 0, enableAutoPipelining,
   * autoResendUnfulfilledCommands false, connectTimeout 2000, capped reconnect backoff).
   * With `url`, these are applied on top of the URL. @default {}
   */
  redisOptions?: RedisOptions;
  /** Create an ioredis `Cluster` from these start-up nodes (with the same fail-open defaults). */
  cluster?: { nodes: ClusterNode[]; options?: ClusterOptions };
  /** Key prefix (no `{` `}`); every key the layer writes starts with `<prefix>:`. @default "strata" */
  prefix?: string;
  /** Layer name in stats and events. @default "redis" */
  name?: string;
  /**
   * Time limit of one read (GET) including waiting for the first connection, ms. Keep it at or
   * below the budget MultiLayerCache gives the layer. @default 50
   */
  timeoutMs?: number;
  /**
   * Time the first operation may wait for the initial connection (and loading ioredis), ms.
   * Later reconnects are never waited for: operations fail fast until the breaker's probe
   * succeeds. @default 2000
   */
  connectTimeoutMs?: number;
  /** Time limit of one write / delete command, ms (writes are off the request path). @default 1000 */
  writeTimeoutMs?: number;
  /** Time limit of each command of an admin operation (clear, deleteByTag, scan, ...), ms. @default 5000 */
  adminTimeoutMs?: number;
  /** Compression of stored values at or above `compressThreshold` bytes of JSON. @default "deflate" */
  compression?: Compression;
  /** Smallest JSON size (bytes) that is compressed. @default 1024 */
  compressThreshold?: number;
  /** Upper bound on any entry's lifetime in Redis, ms; also applies to entries without TTL. @default undefined (entry TTL only) */
  maxTtlMs?: number;
  /**
   * Redis Cluster: slots one tenant+namespace is spread over. 1 keeps a whole scope (entries and
   * indexes) in one slot — simple and atomic, but one very large scope then lives on one master.
   * Changing it changes every key (old entries become unreachable misses). @default 1
   */
  slotsPerScope?: number;
  /** Circuit breaker. */
  breaker?: {
    /** Consecutive timeouts / connection errors that open the circuit. @default 3 */
    failureThreshold?: number;
    /** Wait before probing an open circuit (one PING), ms. @default 500 */
    cooldownMs?: number;
    /** Time limit of the probe PING, ms. @default 250 */
    probeTimeoutMs?: number;
  };
  /** Cross-process coalescing lock used by `layer.coordinator`. */
  lock?: {
    /** Lock lifetime, ms; the holder renews it every ttl/3 while its loader runs, so a dead holder frees it within this. @default 5000 */
    ttlMs?: number;
    /** Longest a process waits for another's load before loading itself, ms. @default 60000 */
    maxWaitMs?: number;
    /** First poll interval while waiting, ms (doubles up to pollMaxMs). @default 20 */
    pollMinMs?: number;
    /** Largest poll interval, ms. @default 200 */
    pollMaxMs?: number;
  };
  /** Close (QUIT) the client in `close()`. @default true when the layer created the client, false for `client` */
  closeClient?: boolean;
  /** Called on every circuit breaker transition (for logs and metrics). */
  onStateChange?: (state: BreakerState, cause?: unknown) => void;
}

const KNOWN = new Set([
  'client', 'url', 'redisOptions', 'cluster', 'prefix', 'name', 'timeoutMs', 'connectTimeoutMs', 'writeTimeoutMs', 'adminTimeoutMs',
  'compression', 'compressThreshold', 'maxTtlMs', 'slotsPerScope', 'breaker', 'lock', 'closeClient', 'onStateChange',
]);
const KNOWN_BREAKER = new Set(['failureThreshold', 'cooldownMs', 'probeTimeoutMs']);
const KNOWN_LOCK = new Set(['ttlMs', 'maxWaitMs', 'pollMinMs', 'pollMaxMs']);

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
  /** Values that could not be decoded (served as misses). */
  readonly decodeErrors: number;
}

const CHUNK = 500;
/** Most keys in one MGET: larger batches are split (a reply of ~100 KB values stays short). */
const MAX_BATCH = 128;

/** Reads of one tick for one hash tag (hence one Cluster slot): sent as one GET or MGET. */
interface ReadGroup {
  readonly keys: string[];
  readonly resolves: Array<(entry: CacheEntry | undefined) => void>;
  readonly rejects: Array<(error: unknown) => void>;
  /** Settled (answered, failed or timed out). */
  done: boolean;
}

/** The reads queued in one tick: one deadline for all of them, one group per MGET. */
interface ReadBatch {
  readonly client: Client;
  readonly groups: ReadGroup[];
  /** Cluster: the group being filled per hash tag. */
  readonly byTag: Map<string, ReadGroup> | undefined;
  /** Standalone: the group being filled. */
  open: ReadGroup | undefined;
  /** Groups sent and not yet settled. */
  pending: number;
  deadline: { done: boolean };
}

/** A set() in flight; `cancelled` once a delete / invalidation of this process covers it. */
interface PendingWrite {
  readonly rk: string;
  readonly key: CacheKey;
  readonly tags: readonly string[];
  cancelled: boolean;
}

const newGroup = (): ReadGroup => ({ keys: [], resolves: [], rejects: [], done: false });

/** Fail-open timeout error raised by the layer itself (counted by the circuit breaker). */
class RedisTimeoutError extends LayerError {}
class CircuitOpenError extends LayerError {}

/**
 * L2: a Redis (or Redis Cluster) layer shared by every process, via ioredis.
 *
 * Never the reason a request fails: every operation has a time limit, nothing is queued while
 * disconnected, and a circuit breaker stops calling a dead or hung server (then probes it and
 * resumes by itself). Failures surface as rejections that MultiLayerCache turns into misses
 * plus `error` events.
 */
export class RedisLayer implements LayerV1 {
  readonly specificationVersion = LAYER_SPECIFICATION_VERSION;
  readonly name: string;
  readonly capabilities = CAPABILITIES;
  /** Key layout helper (exposed for tools and tests). */
  readonly keys: KeySpace;
  /** Cross-process coalescing for `new MultiLayerCache({ coordinator: layer.coordinator })`. */
  readonly coordinator: LoadCoordinator;

  private readonly options: RedisLayerOptions;
  private readonly timeoutMs: number;
  private readonly writeTimeoutMs: number;
  private readonly adminTimeoutMs: number;
  private readonly compression: Compression;
  private readonly compressThreshold: number;
  private readonly maxTtlMs: number | undefined;
  private readonly probeTimeoutMs: number;
  private readonly lockTtlMs: number;
  private readonly lockMaxWaitMs: number;
  private readonly pollMinMs: number;
  private readonly pollMaxMs: number;
  private readonly closeClient: boolean;
  private readonly breaker: CircuitBreaker;
  private readonly readDeadlines: DeadlineQueue;
  /** A read was sent in the current tick (see get / endTick). */
  private tickOpen = false;
  /** Reads queued in the current tick (see enqueueRead). */
  private batch: ReadBatch | undefined;
  private client: Client | undefined;
  private clientPromise: Promise<Client> | undefined;
  private connecting: Promise<void> | undefined;
  private closed = false;
  private readonly pendingSets = new Map<string, Promise<void>>();
  /** Writes in flight (see cancelWrites). */
  private readonly writes = new Set<PendingWrite>();
  private releases: { sub: Promise<Redis | Cluster>; client?: Redis | Cluster; waiters: Map<string, Set<() => void>> } | undefined;
  private everReady = false;
  private readonly connectTimeoutMs: number;
  private counters = { fastFails: 0, timeouts: 0, decodeErrors: 0 };

  constructor(options: RedisLayerOptions = {}) {
    if (typeof options !== 'object' || options === null) throw new InvalidOptionError(`${PKG}: options must be an object`);
    for (const k of Object.keys(options)) {
      if (!KNOWN.has(k)) throw new InvalidOptionError(`${PKG}: unknown option "${k}"`, { field: k });
    }
    checkSub(options.breaker, KNOWN_BREAKER, 'breaker');
    checkSub(options.lock, KNOWN_LOCK, 'lock');
    const sources = ['client', 'url', 'redisOptions', 'cluster'].filter((k) => (options as Record<string, unknown>)[k] !== undefined);
    if (sources.length > 1 && !(sources.length === 2 && sources.includes('url') && sources.includes('redisOptions'))) {
      throw new InvalidOptionError(`${PKG}: pass only one of "client", "url" (optionally with "redisOptions") or "cluster"; got ${sources.join(', ')}`, { field: sources[1] });
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
    const prefix = options.prefix ?? 'strata';
    if (typeof prefix !== 'string' || prefix === '' || /[{}\s]/.test(prefix)) {
      throw new InvalidOptionError(`${PKG}: option "prefix" must be a non-empty string without braces or whitespace`, { field: 'prefix' });
    }
    this.timeoutMs = positive(options.timeoutMs ?? 50, 'timeoutMs');
    this.readDeadlines = new DeadlineQueue(this.timeoutMs);
    this.writeTimeoutMs = positive(options.writeTimeoutMs ?? 1_000, 'writeTimeoutMs');
    this.adminTimeoutMs = positive(options.adminTimeoutMs ?? 5_000, 'adminTimeoutMs');
    this.connectTimeoutMs = positive(options.connectTimeoutMs ?? 2_000, 'connectTimeoutMs');
    const compression = options.compression ?? 'deflate';
    if (!['deflate', 'brotli', 'none'].includes(compression)) {
      throw new InvalidOptionError(`${PKG}: option "compression" must be 'deflate', 'brotli' or 'none'`, { field: 'compression' });
    }
    this.compression = compression;
    this.compressThreshold = options.compressThreshold ?? 1024;
    if (!(this.compressThreshold >= 0)) throw new InvalidOptionError(`${PKG}: option "compressThreshold" must be >= 0 (bytes)`, { field: 'compressThreshold' });
    this.maxTtlMs = options.maxTtlMs === undefined ? undefined : positive(options.maxTtlMs, 'maxTtlMs');
    const slots = options.slotsPerScope ?? 1;
    if (!Number.isSafeInteger(slots) || slots < 1 || slots > 1024) {
      throw new InvalidOptionError(`${PKG}: option "slotsPerScope" must be an integer in 1..1024`, { field: 'slotsPerScope' });
    }
    const failureThreshold = options.breaker?.failureThreshold ?? 3;
    if (!Number.isSafeInteger(failureThreshold) || failureThreshold < 1) {
      throw new InvalidOptionError(`${PKG}: option "breaker.failureThreshold" must be a positive integer`, { field: 'breaker.failureThreshold' });
    }
    const cooldownMs = positive(options.breaker?.cooldownMs ?? 500, 'breaker.cooldownMs');
    this.probeTimeoutMs = positive(options.breaker?.probeTimeoutMs ?? 250, 'breaker.probeTimeoutMs');
    this.lockTtlMs = positive(options.lock?.ttlMs ?? 5_000, 'lock.ttlMs');
    this.lockMaxWaitMs = positive(options.lock?.maxWaitMs ?? 60_000, 'lock.maxWaitMs');
    this.pollMinMs = positive(options.lock?.pollMinMs ?? 20, 'lock.pollMinMs');
    this.pollMaxMs = positive(options.lock?.pollMaxMs ?? 200, 'lock.pollMaxMs');
    this.name = options.name ?? 'redis';
    this.options = options;
    this.keys = new KeySpace(prefix, slots);
    this.closeClient = options.closeClient ?? options.client === undefined;
    if (options.client) this.attach(options.client);
    this.breaker = new CircuitBreaker({
      failureThreshold,
      cooldownMs,
      probe: () => this.probe(),
      ...(options.onStateChange ? { onStateChange: options.onStateChange } : {}),
    });
    this.coordinator = { begin: (key) => this.beginLoad(key) };
  }

  /** Circuit breaker state: `closed` (using Redis), `open` (failing fast), `half-open` (probing). */
  get state(): BreakerState {
    return this.breaker.state;
  }

  stats(): RedisLayerStats {
    return { state: this.breaker.state, opens: this.breaker.opens, ...this.counters };
  }

  /**
   * Connects now (optional warm-up, e.g. at process start) so the first request does not wait
   * for the connection. Resolves when ready; rejects after connectTimeoutMs.
   */
  async connect(): Promise<void> {
    await this.exec('connect', this.connectTimeoutMs, (c) => c.ping());
  }

  /** The ioredis client (created on first use when the layer owns it). */
  async getClient(): Promise<Redis | Cluster> {
    return this.client ?? (await this.createClient());
  }

  /**
   * A new connection with the layer's connection settings (e.g. a pub/sub subscriber).
   * The caller owns and closes it.
   */
  async duplicateClient(overrides: Partial<RedisOptions> = {}): Promise<Redis | Cluster> {
    const client = await this.getClient();
    if (client.isCluster) {
      const c = client as Cluster;
      return c.duplicate(undefined, { ...c.options, redisOptions: { ...c.options.redisOptions, ...overrides }, ...pickClusterLevel(overrides) });
    }
    return (client as Redis).duplicate(overrides);
  }

  /**
   * Runs a command through the layer's fail-open path (circuit breaker, time limit, no offline
   * queue). Used by RedisInvalidationBus; handy for tools.
   */
  runCommand<T>(operation: string, timeoutMs: number, fn: (client: Redis | Cluster) => Promise<T>): Promise<T> {
    return this.exec(operation, timeoutMs, fn);
  }

  // ------------------------------------------------------------------------------ Layer v1

  get(key: CacheKey): Promise<CacheEntry | undefined> {
    const rk = this.keys.entry(key);
    const client = this.client;
    // Hot path (connected, circuit closed).
    if (client !== undefined && client.status === 'ready' && !this.closed && this.breaker.allow()) {
      if (this.tickOpen) {
        // Not the first read of this tick: queued and sent with the others as one MGET per hash tag.
        return new Promise<CacheEntry | undefined>((resolve, reject) => this.enqueueRead(client, rk, resolve, reject));
      }
      // The first read of a tick goes out at once as a plain GET: a lone read pays nothing for
      // coalescing, and under load a tick costs one GET plus the MGET(s) of the rest.
      this.tickOpen = true;
      process.nextTick(this.endTick);
      return this.timed(client.getBuffer(rk), this.readDeadlines, 'get', (buf) => (buf === null ? undefined : this.decode(buf, rk)));
    }
    return this.exec('get', this.timeoutMs, (c) => c.getBuffer(rk)).then((buf) => (buf === null ? undefined : this.decode(buf, rk)));
  }

  set(key: CacheKey, entry: CacheEntry): Promise<void> {
    const rk = this.keys.entry(key);
    const w: PendingWrite = { rk, key, tags: entry.tags, cancelled: false };
    this.writes.add(w);
    const p = this.write(key, rk, entry, w);
    // Remembered so a coordinator lock is released only after the value has landed, even when
    // MultiLayerCache stopped waiting for the write (its budget) earlier.
    this.pendingSets.set(rk, p);
    const forget = () => {
      this.writes.delete(w);
      if (this.pendingSets.get(rk) === p) this.pendingSets.delete(rk);
    };
    p.then(forget, forget);
    return p;
  }

  private async write(key: CacheKey, rk: string, entry: CacheEntry, w: PendingWrite): Promise<void> {
    const now = Date.now();
    let ttl = entry.ttlMs === undefined ? undefined : Math.ceil(entry.createdAt + entry.ttlMs - now);
    if (this.maxTtlMs !== undefined) ttl = Math.min(ttl ?? Number.POSITIVE_INFINITY, this.maxTtlMs);
    if (ttl !== undefined && ttl <= 0) {
      // Already expired: make sure no older value stays behind.
      await this.exec('set', this.writeTimeoutMs, (c) => c.del(rk));
      return;
    }
    const value = await encodeEntry(entry, this.compression, this.compressThreshold);
    if (w.cancelled) return;
    const shard = this.keys.shardOf(key);
    const score = ttl === undefined ? '+inf' : String(now + ttl);
    const tags = [...new Set(entry.tags.map(encodeTag))];
    await this.exec('set', this.writeTimeoutMs, async (c) => {
      // Register the shard under each tag first: a tagged entry is never reachable without it.
      if (tags.length > 0) await Promise.all(tags.map((t) => REGISTER_TAG.run(c, [this.keys.tagScopes(t)], [shard, score, String(now)])));
      // Checked right before the command is handed to the client: a delete issued after this
      // point is sent after it on the same connection, so it wins.
      if (w.cancelled) return;
      await SET_ENTRY.run(
        c,
        [rk, this.keys.scopeIndex(shard), this.keys.scopeTags(shard), ...tags.map((t) => this.keys.tagIndex(shard, t))],
        [value, ttl === undefined ? '0' : String(ttl), score, String(now), ...tags],
        () => !w.cancelled,
      );
    });
  }

  async delete(key: CacheKey): Promise<boolean> {
    const rk = this.keys.entry(key);
    this.cancelWrites((w) => w.rk === rk);
    return (await this.exec('delete', this.writeTimeoutMs, (c) => c.del(rk))) > 0;
  }

  async getMany(keys: readonly CacheKey[]): Promise<Array<CacheEntry | undefined>> {
    // Reads issued together are coalesced by get(): one MGET per hash tag (Cluster slot).
    return Promise.all(keys.map((k) => this.get(k)));
  }

  async setMany(items: ReadonlyArray<{ key: CacheKey; entry: CacheEntry }>): Promise<void> {
    await Promise.all(items.map((i) => this.set(i.key, i.entry)));
  }

  async deleteMany(keys: readonly CacheKey[]): Promise<number> {
    const rs = await Promise.all(keys.map((k) => this.delete(k)));
    return rs.filter(Boolean).length;
  }

  async clear(scope?: Pick<Scope, 'tenant' | 'namespace'>): Promise<number> {
    const base = scope && scopeBaseId(scope);
    this.cancelWrites((w) => base === undefined || scopeBaseId(w.key.scope) === base);
    let n = 0;
    if (!scope) {
      await this.forEachNodeKey(this.keys.allPattern(), async (batch) => {
        const removed = await Promise.all(batch.map((k) => this.admin('clear', (c) => c.unlink(k))));
        batch.forEach((k, i) => {
          if (this.keys.parseEntry(k) && Number(removed[i]) > 0) n++;
        });
      });
      return n;
    }
    for (const shard of this.keys.shardsOf(scope)) {
      n += await this.purgeIndex(this.keys.scopeIndex(shard), []);
      const tagsKey = this.keys.scopeTags(shard);
      const tags = (await this.admin('clear', (c) => c.zrange(tagsKey, 0, -1))) as string[];
      for (let i = 0; i < tags.length; i += CHUNK) {
        const batch = tags.slice(i, i + CHUNK).map((t) => this.keys.tagIndex(shard, t));
        // Same hash tag: one multi-key UNLINK is valid on Cluster too.
        await this.admin('clear', (c) => c.unlink(...batch));
      }
      await this.admin('clear', (c) => c.unlink(tagsKey, this.keys.scopeIndex(shard)));
    }
    return n;
  }

  async deleteByTag(tag: string, scope?: Pick<Scope, 'tenant' | 'namespace'>): Promise<number> {
    const base = scope && scopeBaseId(scope);
    this.cancelWrites((w) => w.tags.includes(tag) && (base === undefined || scopeBaseId(w.key.scope) === base));
    const t = encodeTag(tag);
    let shards: string[];
    if (scope) shards = this.keys.shardsOf(scope);
    else {
      shards = [];
      const reg = this.keys.tagScopes(t);
      let cursor = '0';
      do {
        const [next, flat] = (await this.admin('deleteByTag', (c) => c.zscan(reg, cursor, 'COUNT', CHUNK))) as [string, string[]];
        for (let i = 0; i < flat.length; i += 2) shards.push(flat[i]!);
        cursor = next;
      } while (cursor !== '0');
      shards = [...new Set(shards)];
    }
    let n = 0;
    for (const shard of shards) n += await this.purgeIndex(this.keys.tagIndex(shard, t), [this.keys.scopeIndex(shard)]);
    return n;
  }

  async deleteOlderVersions(scope: Scope): Promise<number> {
    const base = scopeBaseId(scope);
    this.cancelWrites((w) => w.key.scope.version < scope.version && scopeBaseId(w.key.scope) === base);
    let n = 0;
    for (const shard of this.keys.shardsOf(scope)) {
      const idx = this.keys.scopeIndex(shard);
      let cursor = '0';
      do {
        const [next, flat] = (await this.admin('deleteOlderVersions', (c) => c.zscan(idx, cursor, 'COUNT', CHUNK))) as [string, string[]];
        const old: string[] = [];
        for (let i = 0; i < flat.length; i += 2) {
          const m = flat[i]!;
          const v = this.keys.versionOf(m);
          if (v >= 0 && v < scope.version) old.push(m);
        }
        if (old.length > 0) {
          // Same slot as the index: multi-key DEL/ZREM are valid on Cluster.
          n += (await this.admin('deleteOlderVersions', (c) => c.del(...old))) as number;
          await this.admin('deleteOlderVersions', (c) => c.zrem(idx, ...old));
        }
        cursor = next;
      } while (cursor !== '0');
    }
    return n;
  }

  async scan(options: { scope?: Pick<Scope, 'tenant' | 'namespace'>; cursor?: string; count?: number } = {}): Promise<ScanPage> {
    const count = Math.max(1, Math.min(options.count ?? 100, 10_000));
    const [partText, redisCursor] = (options.cursor ?? '0:0').split(':');
    let part = Number(partText);
    let cursor = redisCursor ?? '0';
    if (!Number.isSafeInteger(part) || part < 0) throw new InvalidOptionError(`${PKG}: scan cursor ${JSON.stringify(options.cursor)} is not one this layer returned`, { field: 'cursor' });
    let members: string[];
    let next: string;
    let parts: number;
    if (options.scope) {
      const shards = this.keys.shardsOf(options.scope);
      parts = shards.length;
      if (part >= parts) return { items: [] };
      const idx = this.keys.scopeIndex(shards[part]!);
      const [nc, flat] = (await this.admin('scan', (c) => c.zscan(idx, cursor, 'COUNT', count))) as [string, string[]];
      members = flat.filter((_, i) => i % 2 === 0);
      next = nc;
      const found = await this.readEntries(members);
      const missing = members.filter((_, i) => found[i] === undefined);
      // Clean the index on read: members whose entry expired or was evicted.
      if (missing.length > 0) await this.admin('scan', (c) => c.zrem(idx, ...missing)).catch(() => 0);
      return this.page(members, found, next, part, parts);
    }
    const nodes = await this.masterNodes();
    parts = nodes.length;
    if (part >= parts) return { items: [] };
    const pattern = `${this.keys.allPattern().slice(0, -1)}[0-9]*`;
    const [nc, keys] = (await this.admin('scan', () => nodes[part]!.scan(cursor, 'MATCH', pattern, 'COUNT', count))) as [string, string[]];
    members = keys;
    next = nc;
    return this.page(members, await this.readEntries(members), next, part, parts);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.breaker.dispose();
    const releases = this.releases;
    this.releases = undefined;
    if (releases) {
      for (const wake of releases.waiters.values()) for (const w of wake) w();
      // The SUBSCRIBE may never complete (Redis down): disconnect the connection itself.
      releases.client?.disconnect();
    }
    const client = this.client ?? (this.clientPromise ? await this.clientPromise.catch(() => undefined) : undefined);
    if (client && this.closeClient) {
      if (client.status === 'ready') {
        await withTimeout(client.quit(), 1_000, () => new Error('quit timed out')).catch(() => client.disconnect());
      } else client.disconnect();
    }
  }

  // ------------------------------------------------------------------------------ internals

  /**
   * A delete or invalidation must not be undone by a write of this process that started before
   * it but is still encoding (or waiting for a NOSCRIPT round trip): such writes are dropped.
   * Writes already handed to the client were sent first, and Redis applies them in order.
   */
  private cancelWrites(covers: (w: PendingWrite) => boolean): void {
    for (const w of this.writes) if (!w.cancelled && covers(w)) w.cancelled = true;
  }

  /**
   * Runs (process.nextTick, scheduled by the first read of a tick) after the current callback
   * and every promise reaction it set off, i.e. after every request that continues in the same
   * tick has asked for its read; then sends the reads queued meanwhile.
   */
  private readonly endTick = (): void => {
    this.tickOpen = false;
    if (this.batch !== undefined) this.flushReads();
  };

  /**
   * Adds a read to this tick's batch. The first one opens the batch and starts its one deadline
   * (so every read in it keeps its full `timeoutMs` from the moment it was asked).
   */
  private enqueueRead(client: Client, rk: string, resolve: (e: CacheEntry | undefined) => void, reject: (error: unknown) => void): void {
    let b = this.batch;
    if (b === undefined) {
      const batch: ReadBatch = { client, groups: [], byTag: client.isCluster ? new Map() : undefined, open: undefined, pending: 0, deadline: undefined! };
      batch.deadline = this.readDeadlines.add(() => this.expireBatch(batch));
      this.batch = b = batch;
    }
    let g: ReadGroup | undefined;
    if (b.byTag === undefined) {
      g = b.open;
      if (g === undefined || g.keys.length >= MAX_BATCH) b.groups.push((g = b.open = newGroup()));
    } else {
      // Cluster: an MGET must stay within one slot. Every entry key carries a hash tag, and keys
      // with the same tag are in the same slot (by definition), so grouping by tag suffices.
      const open = rk.indexOf('{');
      const tag = rk.slice(open + 1, rk.indexOf('}', open));
      g = b.byTag.get(tag);
      if (g === undefined || g.keys.length >= MAX_BATCH) {
        b.byTag.set(tag, (g = newGroup()));
        b.groups.push(g);
      }
    }
    g.keys.push(rk);
    g.resolves.push(resolve);
    g.rejects.push(reject);
  }

  /** Sends this tick's reads: one GET (a lone read) or MGET per group, auto-pipelined together. */
  private flushReads(): void {
    const b = this.batch!;
    this.batch = undefined;
    const client = b.client;
    if (this.closed || client.status !== 'ready' || !this.breaker.allow()) {
      // The state changed within the tick the reads were queued in (e.g. the connection
      // dropped): each read takes the ordinary path, which fails fast or waits as it should.
      b.deadline.done = true;
      for (const g of b.groups) {
        g.done = true;
        for (let i = 0; i < g.keys.length; i++) {
          const rk = g.keys[i]!;
          this.exec('get', this.timeoutMs, (c) => c.getBuffer(rk)).then((buf) => (buf === null ? undefined : this.decode(buf, rk))).then(g.resolves[i], g.rejects[i]);
        }
      }
      return;
    }
    b.pending = b.groups.length;
    for (const g of b.groups) {
      const settle = (bufs: ReadonlyArray<Buffer | null>) => this.settleGroup(b, g, bufs);
      const fail = (error: unknown) => this.failGroup(b, g, error);
      if (g.keys.length === 1) client.getBuffer(g.keys[0]!).then((buf) => settle([buf]), fail);
      else client.mgetBuffer(g.keys).then(settle, fail);
    }
  }

  /** One group's reply: each read gets its own value; a value that fails to decode only fails its own read. */
  private settleGroup(b: ReadBatch, g: ReadGroup, bufs: ReadonlyArray<Buffer | null>): void {
    if (g.done) return; // timed out already
    g.done = true;
    if (--b.pending === 0) b.deadline.done = true;
    this.breaker.success();
    for (let i = 0; i < g.keys.length; i++) {
      const buf = bufs[i];
      if (buf === null || buf === undefined) {
        g.resolves[i]!(undefined);
        continue;
      }
      let entry: CacheEntry;
      try {
        entry = this.decode(buf, g.keys[i]!);
      } catch (error) {
        g.rejects[i]!(error);
        continue;
      }
      g.resolves[i]!(entry);
    }
  }

  /** A failed command fails each of its reads, and counts against the breaker once per read (as separate GETs would). */
  private failGroup(b: ReadBatch, g: ReadGroup, error: unknown): void {
    if (g.done) return;
    g.done = true;
    if (--b.pending === 0) b.deadline.done = true;
    const availability = isAvailabilityError(error);
    for (let i = 0; i < g.keys.length; i++) {
      if (availability) this.breaker.failure(error);
      g.rejects[i]!(wrap(this.name, 'get', error));
    }
  }

  /** The batch's deadline passed: every read still waiting times out (each one a breaker failure). */
  private expireBatch(b: ReadBatch): void {
    for (const g of b.groups) {
      if (g.done) continue;
      g.done = true;
      for (let i = 0; i < g.keys.length; i++) {
        this.counters.timeouts++;
        const error = new RedisTimeoutError(this.name, 'get', `${PKG}: get did not finish within ${this.timeoutMs} ms (option: timeoutMs)`);
        this.breaker.failure(error);
        g.rejects[i]!(error);
      }
    }
  }

  private decode(buf: Buffer, where: string): CacheEntry {
    try {
      return decodeEntry(buf, where);
    } catch (error) {
      this.counters.decodeErrors++;
      // Corrupt values are removed so they stop costing errors; a newer format is left alone
      // (a newer deployment wrote it and still reads it).
      if (!(error instanceof NewerFormatError)) void this.exec('delete', this.writeTimeoutMs, (c) => c.del(where)).catch(() => undefined);
      throw error;
    }
  }

  private page(members: string[], found: Array<CacheEntry | undefined>, next: string, part: number, parts: number): ScanPage {
    const items: Array<{ key: CacheKey; entry: CacheEntry }> = [];
    members.forEach((m, i) => {
      const entry = found[i];
      const key = this.keys.parseEntry(m);
      if (entry && key) items.push({ key, entry });
    });
    const cursor = next !== '0' ? `${part}:${next}` : part + 1 < parts ? `${part + 1}:0` : undefined;
    return cursor === undefined ? { items } : { items, cursor };
  }

  private async readEntries(members: string[]): Promise<Array<CacheEntry | undefined>> {
    const bufs = await Promise.all(members.map((m) => this.admin('scan', (c) => c.getBuffer(m)) as Promise<Buffer | null>));
    return bufs.map((b, i) => {
      if (!b) return undefined;
      try {
        return decodeEntry(b, members[i]!);
      } catch {
        this.counters.decodeErrors++;
        return undefined;
      }
    });
  }

  /** Deletes every entry listed in `index` in chunks (one atomic script per chunk). */
  private async purgeIndex(index: string, alsoFrom: string[]): Promise<number> {
    let n = 0;
    // Bounded: concurrent writers could otherwise keep the loop alive forever.
    for (let round = 0; round < 100_000; round++) {
      const [deleted, left] = (await this.admin('purge', (c) => PURGE_CHUNK.run(c, [index, ...alsoFrom], [CHUNK]))) as [number, number];
      n += deleted;
      if (left === 0) break;
    }
    return n;
  }

  private async masterNodes(): Promise<Redis[]> {
    const client = await this.getClient();
    if (!client.isCluster) return [client as Redis];
    await this.exec('scan', this.adminTimeoutMs, async () => undefined);
    const nodes = (client as Cluster).nodes('master');
    return [...nodes].sort((a, b) => nodeId(a).localeCompare(nodeId(b)));
  }

  private async forEachNodeKey(pattern: string, fn: (keys: string[]) => Promise<void>): Promise<void> {
    for (const node of await this.masterNodes()) {
      let cursor = '0';
      do {
        const [next, keys] = (await this.admin('scan', () => node.scan(cursor, 'MATCH', pattern, 'COUNT', 1_000))) as [string, string[]];
        if (keys.length > 0) await fn(keys);
        cursor = next;
      } while (cursor !== '0');
    }
  }

  private admin<T>(operation: string, fn: (c: Client) => Promise<T>): Promise<T> {
    return this.exec(operation, this.adminTimeoutMs, fn);
  }

  /**
   * Runs one Redis operation fail-open: refused at once while the circuit is open or closed,
   * limited to `timeoutMs` (including waiting for the first connection), and feeding the breaker.
   */
  private async exec<T>(operation: string, timeoutMs: number, fn: (c: Client) => Promise<T>): Promise<T> {
    if (this.closed) throw new StrataError('STRATA_CLOSED', `${PKG}: layer "${this.name}" is closed`);
    if (!this.breaker.allow()) {
      this.counters.fastFails++;
      throw new CircuitOpenError(this.name, operation, `${PKG}: circuit ${this.breaker.state} (Redis unavailable); ${operation} skipped`);
    }
    let started = Date.now();
    const client = this.client ?? (await this.createClient());
    if (client.status !== 'ready') {
      if (!this.everReady) {
        // The very first connection (plus loading ioredis) gets connectTimeoutMs, not the
        // per-operation limit; MultiLayerCache's budget still bounds the request. Call
        // connect() at start-up to take this off the first request entirely.
        await this.waitReady(client, operation, this.connectTimeoutMs);
        started = Date.now();
      } else await this.waitReady(client, operation, timeoutMs);
    }
    this.everReady = true;
    if (timeoutMs === this.timeoutMs && Date.now() === started) return this.timed(fn(client), this.readDeadlines, operation);
    const left = Math.max(1, timeoutMs - (Date.now() - started));
    try {
      const r = await withTimeout(fn(client), left, () => {
        this.counters.timeouts++;
        return new RedisTimeoutError(this.name, operation, `${PKG}: ${operation} did not finish within ${timeoutMs} ms (option: ${optionFor(operation)})`);
      });
      this.breaker.success();
      return r;
    } catch (error) {
      if (isAvailabilityError(error)) this.breaker.failure(error);
      throw wrap(this.name, operation, error);
    }
  }

  /** Settles with `p`, or rejects when the queue's time limit passes first; feeds the breaker. */
  private timed<T, R = T>(p: Promise<T>, queue: DeadlineQueue, operation: string, map?: (v: T) => R): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const handle = queue.add(() => {
        this.counters.timeouts++;
        const error = new RedisTimeoutError(this.name, operation, `${PKG}: ${operation} did not finish within ${queue.ms} ms (option: ${optionFor(operation)})`);
        this.breaker.failure(error);
        reject(error);
      });
      p.then(
        (v) => {
          if (handle.done) return;
          handle.done = true;
          this.breaker.success();
          if (!map) return resolve(v as unknown as R);
          // Mapping (decoding) inside the same callback saves a promise hop per hit.
          try {
            resolve(map(v));
          } catch (error) {
            reject(error);
          }
        },
        (error) => {
          if (handle.done) return;
          handle.done = true;
          if (isAvailabilityError(error)) this.breaker.failure(error);
          reject(wrap(this.name, operation, error));
        },
      );
    });
  }

  /** Not ready: wait for the first connection within the time limit; fail fast when it was lost. */
  private async waitReady(client: Client, operation: string, timeoutMs: number): Promise<void> {
    const status = client.status;
    if (status === 'wait') this.startConnect(client);
    else if (status !== 'connecting' && status !== 'connect') {
      // reconnecting / close / end: the server is known to be gone; the breaker's probe will notice its return.
      this.counters.fastFails++;
      const error = new LayerError(this.name, operation, `${PKG}: Redis connection is ${status}; ${operation} skipped`);
      this.breaker.trip(error);
      throw error;
    }
    try {
      await withTimeout(this.readyPromise(client), timeoutMs, () => {
        this.counters.timeouts++;
        return new RedisTimeoutError(this.name, operation, `${PKG}: Redis not ready within ${timeoutMs} ms`);
      });
    } catch (error) {
      this.breaker.failure(error);
      throw wrap(this.name, operation, error);
    }
  }

  /** Resolves on 'ready', rejects when the connection attempt ends ('close' / 'end'). */
  private readyPromise(client: Client): Promise<void> {
    if (client.status === 'ready') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const cleanup = () => {
        client.off('ready', onReady);
        client.off('close', onClose);
        client.off('end', onClose);
        clearTimeout(timer);
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
      // Do not leak listeners if nothing ever happens.
      const timer = setTimeout(cleanup, 30_000);
      timer.unref();
    });
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
    await withTimeout(client.ping(), this.probeTimeoutMs, () => new Error('probe PING timed out'));
  }

  private attach(client: Client): void {
    this.client = client;
  }

  private createClient(): Promise<Client> {
    if (this.clientPromise) return this.clientPromise;
    this.clientPromise = (async () => {
      const mod = await loadIoredis();
      const o = this.options;
      const base: RedisOptions = {
        lazyConnect: true,
        enableOfflineQueue: false,
        // 0: commands in flight when the connection drops are rejected at once. (With
        // autoResendUnfulfilledCommands false and retries > 0, ioredis drops them without
        // settling them on reconnect, which wedges its auto-pipeline queue for good.)
        maxRetriesPerRequest: 0,
        enableAutoPipelining: true,
        autoResendUnfulfilledCommands: false,
        connectTimeout: this.connectTimeoutMs,
        retryStrategy: (times: number) => Math.min(50 * times, 500),
      };
      let client: Client;
      if (o.cluster) {
        const { redisOptions: userRedis, ...userCluster } = o.cluster.options ?? {};
        client = new mod.Cluster(o.cluster.nodes, {
          lazyConnect: true,
          enableOfflineQueue: false,
          enableAutoPipelining: true,
          clusterRetryStrategy: (times: number) => Math.min(100 * times, 1_000),
          ...userCluster,
          redisOptions: { connectTimeout: this.connectTimeoutMs, maxRetriesPerRequest: 0, autoResendUnfulfilledCommands: false, ...userRedis },
        });
      } else {
        client = new mod.Redis(o.url ?? 'redis://127.0.0.1:6379', { ...base, ...(o.redisOptions ?? {}) });
      }
      // The layer reports failures through its operations; without a listener ioredis would log
      // every reconnect attempt as an unhandled error.
      client.on('error', () => undefined);
      this.client = client;
      return client;
    })();
    return this.clientPromise;
  }

  // ------------------------------------------------------------------------ coordination

  private async beginLoad(key: CacheKey): Promise<LoadTicket> {
    const noLock: LoadTicket = { kind: 'load', done: () => undefined };
    if (this.closed || !this.breaker.allow()) return noLock;
    const lockKey = this.keys.lock(key);
    const entryKey = this.keys.entry(key);
    const token = randomUUID();
    const deadline = Date.now() + this.lockMaxWaitMs;
    // A miss is about to cost an upstream call (seconds): coordination may take longer than a
    // read, so its commands use writeTimeoutMs. A transient error only skips a round; an open
    // circuit (Redis really unavailable) or the deadline ends coordination: load right away.
    const t = this.writeTimeoutMs;
    let delay = this.pollMinMs;
    for (;;) {
      if (this.closed || !this.breaker.allow() || Date.now() >= deadline) return noLock;
      try {
        const acquired = (await this.exec('lock', t, (c) => c.set(lockKey, token, 'PX', this.lockTtlMs, 'NX'))) === 'OK';
        if (acquired) {
          // The previous holder may have stored the value just before releasing.
          const entry = await this.readLive(entryKey, t).catch(() => undefined);
          if (entry) {
            await this.exec('unlock', t, (c) => RELEASE_LOCK.run(c, [lockKey], [token])).catch(() => undefined);
            return { kind: 'hit', entry, layer: this.name };
          }
          return this.leaderTicket(lockKey, entryKey, token);
        }
      } catch {
        // retry below
      }
      for (;;) {
        const now = Date.now();
        if (this.closed || !this.breaker.allow() || now >= deadline) return noLock;
        // Woken at once by the holder's "released" message; polling is the fallback.
        await this.waitRelease(lockKey, Math.min(delay, deadline - now));
        delay = Math.min(delay * 2, this.pollMaxMs);
        let entry: CacheEntry | undefined;
        let locked: number;
        try {
          [entry, locked] = await Promise.all([this.readLive(entryKey, t), this.exec('lock', t, (c) => c.exists(lockKey))]);
        } catch {
          continue;
        }
        if (entry) return { kind: 'hit', entry, layer: this.name };
        // Holder finished without storing, failed, or died (its lock expired): try to take over.
        if (locked === 0) break;
      }
    }
  }

  private async readLive(entryKey: string, timeoutMs: number): Promise<CacheEntry | undefined> {
    const buf = await this.exec('get', timeoutMs, (c) => c.getBuffer(entryKey));
    if (!buf) return undefined;
    try {
      const entry = decodeEntry(buf, entryKey);
      return isExpired(entry, Date.now()) ? undefined : entry;
    } catch {
      return undefined;
    }
  }

  private get releaseChannel(): string {
    return `${this.keys.prefix}:lock-released`;
  }

  /** Resolves when `lockKey` is announced released, or after `ms`. */
  private waitRelease(lockKey: string, ms: number): Promise<void> {
    if (!this.releases) {
      const waiters = new Map<string, Set<() => void>>();
      // One subscriber connection per layer, created the first time this process waits.
      const state: { sub: Promise<Redis | Cluster>; client?: Redis | Cluster; waiters: typeof waiters } = { sub: undefined!, waiters };
      const sub = this.duplicateClient({ lazyConnect: false, enableOfflineQueue: true, maxRetriesPerRequest: null, autoResubscribe: true, enableAutoPipelining: false }).then(async (c) => {
        state.client = c;
        if (this.closed) c.disconnect();
        c.on('error', () => undefined);
        c.on('message', (_channel: string, key: string) => {
          const wake = waiters.get(key);
          if (wake) for (const w of [...wake]) w();
        });
        await c.subscribe(this.releaseChannel);
        return c;
      });
      sub.catch(() => undefined);
      state.sub = sub;
      this.releases = state;
    }
    const { waiters } = this.releases;
    return new Promise<void>((resolve) => {
      let set = waiters.get(lockKey);
      if (!set) waiters.set(lockKey, (set = new Set()));
      const wake = () => {
        clearTimeout(timer);
        set!.delete(wake);
        if (set!.size === 0) waiters.delete(lockKey);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      set.add(wake);
    });
  }

  private leaderTicket(lockKey: string, entryKey: string, token: string): LoadTicket {
    const renew = setInterval(() => {
      void this.exec('lock', this.writeTimeoutMs, (c) => EXTEND_LOCK.run(c, [lockKey], [token, this.lockTtlMs])).catch(() => undefined);
    }, Math.max(10, Math.floor(this.lockTtlMs / 3)));
    renew.unref();
    let released = false;
    return {
      kind: 'load',
      done: async () => {
        if (released) return;
        released = true;
        // Our own write of the value may still be in flight (bounded by writeTimeoutMs).
        await this.pendingSets.get(entryKey)?.catch(() => undefined);
        clearInterval(renew);
        // Best effort: if this fails the lock simply expires.
        await this.exec('unlock', this.writeTimeoutMs, (c) => RELEASE_LOCK.run(c, [lockKey], [token])).catch(() => undefined);
        await this.exec('unlock', this.writeTimeoutMs, (c) => c.publish(this.releaseChannel, lockKey)).catch(() => undefined);
      },
    };
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
  ioredis ??= import('ioredis').then((m): IoredisModule => ({ Redis: m.Redis, Cluster: m.Cluster })).catch((cause: unknown) => {
    ioredis = undefined;
    throw new MissingDependencyError(
      'ioredis',
      `${PKG} needs its peer dependency "ioredis" (>=5) to create a client (${(cause as Error)?.message ?? cause}). Install it: pnpm add ioredis — or pass your own instance as option "client"`,
      { cause },
    );
  });
  return ioredis!;
}

function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(onTimeout()), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

/** Timeouts and connection-level failures count against the breaker; Redis reply errors do not (except "unavailable" ones). */
function isAvailabilityError(error: unknown): boolean {
  if (error instanceof RedisTimeoutError) return true;
  const e = error as { name?: string; message?: string } | undefined;
  const message = String(e?.message ?? '');
  if (e?.name === 'ReplyError') return /^(LOADING|BUSY|CLUSTERDOWN|MASTERDOWN|TRYAGAIN)\b/.test(message);
  return true;
}

function wrap(layer: string, operation: string, error: unknown): StrataError {
  if (StrataError.isInstance(error)) return error;
  return new LayerError(layer, operation, `${PKG}: ${operation} failed: ${(error as Error)?.message ?? String(error)}`, { cause: error });
}

function optionFor(operation: string): string {
  if (operation === 'get' || operation === 'lock') return 'timeoutMs';
  if (operation === 'set' || operation === 'delete' || operation === 'unlock') return 'writeTimeoutMs';
  return 'adminTimeoutMs';
}

function positive(v: number, field: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
    throw new InvalidOptionError(`${PKG}: option "${field}" must be a positive number of milliseconds`, { field });
  }
  return v;
}

function checkSub(value: unknown, known: Set<string>, field: string): void {
  if (value === undefined) return;
  if (typeof value !== 'object' || value === null) throw new InvalidOptionError(`${PKG}: option "${field}" must be an object`, { field });
  for (const k of Object.keys(value)) {
    if (!known.has(k)) throw new InvalidOptionError(`${PKG}: unknown option "${field}.${k}"`, { field: `${field}.${k}` });
  }
}

function isClient(x: unknown): x is Client {
  const c = x as Client;
  return typeof c === 'object' && c !== null && typeof c.getBuffer === 'function' && typeof c.evalsha === 'function' && typeof c.isCluster === 'boolean';
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

