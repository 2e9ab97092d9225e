import {
  type FleetClock,
  type InvalidationBus,
  type InvalidationEnvelope,
  type InvalidationMessage,
  InvalidOptionError,
  LayerError,
  type WatermarkStore,
} from '@strata-cache/core';
import { RedisLayer } from './layer.js';
import { RedisWatermarks } from './watermarks.js';

const PKG = '@strata-cache/layer-redis';

export interface RedisInvalidationBusOptions {
  /** The RedisLayer whose connection (publishing, fail-fast) and settings (subscriber) the bus reuses. */
  layer: RedisLayer;
  /** Pub/sub channel; every process of one cache must use the same. @default "<prefix>:invalidate" */
  channel?: string | undefined;
  /** Time limit of one PUBLISH, ms. @default 1000 */
  publishTimeoutMs?: number | undefined;
  /** Called for messages on the channel that are not Strata invalidations, and subscriber errors. */
  onError?: ((error: Error) => void) | undefined;
  /**
   * Keep invalidation watermarks in Redis (see the README, "Purges that survive outages"): a
   * purge then holds across Redis restarts and snapshot restores, and reaches processes that
   * missed its message or start later. `false` keeps them in the processes only. @default true
   */
  durable?: boolean | undefined;
  /**
   * How often each process checks that Redis still holds the watermarks (a restart, a restore,
   * a failover, an eviction lose them: they are then written back) and re-samples the Redis
   * clock, ms. @default 1000
   */
  watermarkCheckMs?: number | undefined;
  /**
   * Added to the measured error of the Redis clock, ms: the clock difference between the servers
   * a Cluster fails over between (their NTP accuracy). @default 1
   */
  clockMarginMs?: number | undefined;
  /**
   * How far this process's own clock is assumed to be from Redis's until it could read the Redis
   * clock once (it started while Redis was unreachable), ms. @default 1000
   */
  unsyncedClockErrorMs?: number | undefined;
}

export const BUS_DEFAULTS = Object.freeze({
  channelSuffix: ':invalidate',
  publishTimeoutMs: 1_000,
  durable: true,
  watermarkCheckMs: 1_000,
  clockMarginMs: 1,
  unsyncedClockErrorMs: 1_000,
});

const TYPES = new Set(['key', 'tag', 'scope-version', 'clear']);

/**
 * Core's InvalidationBus over Redis pub/sub: `new MultiLayerCache({ layers, bus })` in every
 * process, and an invalidation in one empties the in-process layers (L1, L3) of all others.
 *
 * Publishing goes through the layer's own client (fail-fast, within `publishTimeoutMs`);
 * receiving uses the layer's one subscriber connection (shared with the coordinator), which
 * ioredis re-subscribes after every reconnect. Pub/sub delivery is at-most-once; what makes a
 * purge hold anyway is its watermark, which the bus keeps in Redis (`watermarks`, see
 * RedisWatermarks) and core re-asserts, and the Redis clock the bus gives core (`clock`), which
 * stamps and watermarks of every process are read on.
 */
export class RedisInvalidationBus implements InvalidationBus {
  readonly channel: string;
  /** The Redis server's clock, as this process estimates it. */
  readonly clock: FleetClock;
  /** Watermarks kept in Redis (undefined with `durable: false`). */
  readonly watermarks: WatermarkStore | undefined;
  private readonly store: RedisWatermarks;
  private readonly layer: RedisLayer;
  private readonly publishTimeoutMs: number;
  private readonly onError: ((error: Error) => void) | undefined;
  private readonly handlers = new Set<(e: InvalidationEnvelope) => void>();
  private unsubscribe: Promise<() => Promise<void>> | undefined;

  constructor(options: RedisInvalidationBusOptions) {
    const known = new Set(['layer', 'channel', 'publishTimeoutMs', 'onError', 'durable', 'watermarkCheckMs', 'clockMarginMs', 'unsyncedClockErrorMs']);
    for (const k of Object.keys(options ?? {})) {
      if (!known.has(k)) throw new InvalidOptionError(`${PKG}: unknown RedisInvalidationBus option "${k}"`, { field: k });
    }
    if (!(options?.layer instanceof RedisLayer)) {
      throw new InvalidOptionError(`${PKG}: RedisInvalidationBus needs option "layer" (a RedisLayer)`, { field: 'layer' });
    }
    this.layer = options.layer;
    this.channel = options.channel ?? `${options.layer.keys.prefix}:invalidate`;
    if (typeof this.channel !== 'string' || this.channel === '')
      throw new InvalidOptionError(`${PKG}: option "channel" must be a non-empty string`, { field: 'channel' });
    this.publishTimeoutMs = options.publishTimeoutMs ?? BUS_DEFAULTS.publishTimeoutMs;
    if (!(this.publishTimeoutMs > 0)) throw new InvalidOptionError(`${PKG}: option "publishTimeoutMs" must be positive`, { field: 'publishTimeoutMs' });
    if (options.onError !== undefined && typeof options.onError !== 'function')
      throw new InvalidOptionError(`${PKG}: option "onError" must be a function`, { field: 'onError' });
    this.onError = options.onError;
    const durable = options.durable ?? BUS_DEFAULTS.durable;
    if (typeof durable !== 'boolean') throw new InvalidOptionError(`${PKG}: option "durable" must be a boolean`, { field: 'durable' });
    const checkEveryMs = positive(options.watermarkCheckMs ?? BUS_DEFAULTS.watermarkCheckMs, 'watermarkCheckMs');
    const clockMarginMs = nonNegative(options.clockMarginMs ?? BUS_DEFAULTS.clockMarginMs, 'clockMarginMs');
    const unsyncedErrorMs = nonNegative(options.unsyncedClockErrorMs ?? BUS_DEFAULTS.unsyncedClockErrorMs, 'unsyncedClockErrorMs');
    // Watermark commands are writes off the request path: the layer's write limit, or the
    // publish limit when that is longer.
    this.store = new RedisWatermarks(options.layer, { checkEveryMs, clockMarginMs, unsyncedErrorMs, timeoutMs: Math.max(this.publishTimeoutMs, 1_000) });
    this.clock = this.store;
    this.watermarks = durable ? this.store : undefined;
  }

  async publish(envelope: InvalidationEnvelope): Promise<void> {
    const payload = JSON.stringify(envelope);
    await this.layer.runCommand('publish', this.publishTimeoutMs, (c) => c.publish(this.channel, payload));
  }

  async subscribe(handler: (envelope: InvalidationEnvelope) => void): Promise<() => Promise<void>> {
    this.handlers.add(handler);
    if (!this.unsubscribe) {
      // Back after a disconnect, messages may have been missed: the stored watermarks tell.
      const pending = this.layer.subscribe(
        this.channel,
        (text) => this.deliver(text),
        (error) => this.onError?.(error),
        () => this.store.resync(),
      );
      this.unsubscribe = pending;
      pending.catch(() => {
        if (this.unsubscribe === pending) this.unsubscribe = undefined;
      });
    }
    try {
      await this.unsubscribe;
    } catch (error) {
      this.handlers.delete(handler);
      throw error;
    }
    return async () => {
      this.handlers.delete(handler);
      if (this.handlers.size > 0 || this.unsubscribe === undefined) return;
      const stop = this.unsubscribe;
      this.unsubscribe = undefined;
      await (await stop)();
    };
  }

  private deliver(text: string): void {
    const envelope = parseEnvelope(text);
    if (!envelope) {
      this.onError?.(new LayerError(this.layer.name, 'bus', `${PKG}: ignored a message on ${this.channel} that is not a Strata invalidation`));
      return;
    }
    // The save it announces is known here (see RedisWatermarks: a save never heard of makes it reload).
    if (envelope.seq !== undefined) this.store.heard(envelope.seq);
    for (const h of [...this.handlers]) {
      try {
        h(envelope);
      } catch (error) {
        this.onError?.(error as Error);
      }
    }
  }
}

function parseEnvelope(text: string): InvalidationEnvelope | undefined {
  let x: unknown;
  try {
    x = JSON.parse(text);
  } catch {
    return undefined;
  }
  const e = x as { origin?: unknown; sentAt?: unknown; message?: { type?: unknown } };
  if (typeof e !== 'object' || e === null || typeof e.origin !== 'string' || typeof e.sentAt !== 'number') return undefined;
  if (typeof e.message !== 'object' || e.message === null || !TYPES.has(e.message.type as string)) return undefined;
  const m = e.message as InvalidationMessage;
  if (m.type === 'key' && (typeof m.keyId !== 'string' || typeof m.scope !== 'object')) return undefined;
  if (m.type === 'tag' && typeof m.tag !== 'string') return undefined;
  if (m.type === 'scope-version' && typeof m.scope?.version !== 'number') return undefined;
  // A watermark that is not a finite number is dropped: the receiver then uses the time it received the message.
  // A counter that is not a positive integer is dropped: the save is then not taken as heard of.
  return dropInvalid(
    dropInvalid(e as InvalidationEnvelope, 'at', (v) => Number.isFinite(v)),
    'seq',
    (v) => Number.isSafeInteger(v) && v > 0,
  );
}

/** `e` without its optional numeric field `field` when that holds anything but a number `valid` accepts. */
function dropInvalid(e: InvalidationEnvelope, field: 'at' | 'seq', valid: (v: number) => boolean): InvalidationEnvelope {
  const v: unknown = e[field];
  if (v === undefined || (typeof v === 'number' && valid(v))) return e;
  const { [field]: _dropped, ...rest } = e;
  return rest;
}

function positive(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)
    throw new InvalidOptionError(`${PKG}: option "${field}" must be a positive number of milliseconds`, { field });
  return v;
}

function nonNegative(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
    throw new InvalidOptionError(`${PKG}: option "${field}" must be a number of milliseconds >= 0`, { field });
  return v;
}
