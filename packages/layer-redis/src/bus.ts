import {
  type InvalidationBus,
  type InvalidationEnvelope,
  type InvalidationMessage,
  InvalidOptionError,
  LayerError,
} from '@strata-cache/core';
import { RedisLayer } from './layer.js';

const PKG = '@strata-cache/layer-redis';

export interface RedisInvalidationBusOptions {
  /** The RedisLayer whose connection (publishing, fail-fast) and settings (subscriber) the bus reuses. */
  layer: RedisLayer;
  /** Pub/sub channel; every process of one cache must use the same. @default "<prefix>:invalidate" */
  channel?: string;
  /** Time limit of one PUBLISH, ms. @default 1000 */
  publishTimeoutMs?: number;
  /** Called for messages on the channel that are not Strata invalidations, and subscriber errors. */
  onError?: (error: Error) => void;
}

const TYPES = new Set(['key', 'tag', 'scope-version', 'clear']);

/**
 * Core's InvalidationBus over Redis pub/sub: `new MultiLayerCache({ layers, bus })` in every
 * process, and an invalidation in one empties the in-process layers (L1, L3) of all others.
 *
 * Publishing goes through the layer's own client (fail-fast, within `publishTimeoutMs`);
 * receiving uses the layer's one subscriber connection (shared with the coordinator), which
 * ioredis re-subscribes after every reconnect.
 * Delivery is at-most-once: a process that is disconnected while a message is published misses
 * it, so keep L1 TTLs short (e.g. MemoryLayer `maxTtlMs`) where that matters.
 */
export class RedisInvalidationBus implements InvalidationBus {
  readonly channel: string;
  private readonly layer: RedisLayer;
  private readonly publishTimeoutMs: number;
  private readonly onError: ((error: Error) => void) | undefined;
  private readonly handlers = new Set<(e: InvalidationEnvelope) => void>();
  private unsubscribe: Promise<() => Promise<void>> | undefined;

  constructor(options: RedisInvalidationBusOptions) {
    const known = new Set(['layer', 'channel', 'publishTimeoutMs', 'onError']);
    for (const k of Object.keys(options ?? {})) {
      if (!known.has(k)) throw new InvalidOptionError(`${PKG}: unknown RedisInvalidationBus option "${k}"`, { field: k });
    }
    if (!(options?.layer instanceof RedisLayer)) {
      throw new InvalidOptionError(`${PKG}: RedisInvalidationBus needs option "layer" (a RedisLayer)`, { field: 'layer' });
    }
    this.layer = options.layer;
    this.channel = options.channel ?? `${options.layer.keys.prefix}:invalidate`;
    if (typeof this.channel !== 'string' || this.channel === '') throw new InvalidOptionError(`${PKG}: option "channel" must be a non-empty string`, { field: 'channel' });
    this.publishTimeoutMs = options.publishTimeoutMs ?? 1_000;
    if (!(this.publishTimeoutMs > 0)) throw new InvalidOptionError(`${PKG}: option "publishTimeoutMs" must be positive`, { field: 'publishTimeoutMs' });
    this.onError = options.onError;
  }

  async publish(envelope: InvalidationEnvelope): Promise<void> {
    const payload = JSON.stringify(envelope);
    await this.layer.runCommand('publish', this.publishTimeoutMs, (c) => c.publish(this.channel, payload));
  }

  async subscribe(handler: (envelope: InvalidationEnvelope) => void): Promise<() => Promise<void>> {
    this.handlers.add(handler);
    if (!this.unsubscribe) {
      const pending = this.layer.subscribe(this.channel, (text) => this.deliver(text), (error) => this.onError?.(error));
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
  return e as InvalidationEnvelope;
}
