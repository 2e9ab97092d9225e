import type { Scope } from './scope.js';

/**
 * An invalidation announced to every process sharing a cache. `scope` fields are
 * tenant+namespace (all versions) unless `version` says otherwise.
 */
export type InvalidationMessage =
  | { readonly type: 'key'; readonly keyId: string; readonly scope: Scope }
  | { readonly type: 'tag'; readonly tag: string; readonly scope?: Pick<Scope, 'tenant' | 'namespace'> }
  | { readonly type: 'scope-version'; readonly scope: Scope }
  | { readonly type: 'clear'; readonly scope?: Pick<Scope, 'tenant' | 'namespace'> };

export interface InvalidationEnvelope {
  /** Id of the process/cache that sent it; receivers skip their own. */
  readonly origin: string;
  readonly sentAt: number;
  readonly message: InvalidationMessage;
  /**
   * The invalidation's watermark (see {@link InvalidationWatermark}). Absent from senders of
   * earlier versions: a receiver then uses the time it received the message (later, so safe).
   */
  readonly at?: number;
  /**
   * The store's counter after the save that holds this message's watermark (see
   * {@link WatermarkStore.save}), when the store keeps one. A receiver notes it: a counter that
   * moved past every save it heard of tells it it missed a message (a subscription that went deaf
   * without a disconnect), and it loads the store's watermarks. Absent when the sender has no
   * store, its save had not landed when it sent the message, or it is of an earlier version.
   */
  readonly seq?: number;
}

/**
 * What makes an invalidation outlive a failed delete, a missed bus message, a restart or a
 * snapshot restore: every entry the message covers whose stamp (`entry.stamp`, when its load
 * began) is at or below `at` is refused by every process that knows the watermark, in every
 * layer. `at` is on the bus's clock (ms). For `scope-version` messages the version is what counts
 * (entries of older versions are refused) and `at` is informative.
 */
export interface InvalidationWatermark {
  readonly message: InvalidationMessage;
  readonly at: number;
}

/**
 * A clock every process sharing a bus reads alike (e.g. the Redis server's, estimated through
 * `TIME`), so stamps written by one process compare with watermarks set by another whatever
 * their own clocks say.
 */
export interface FleetClock {
  /** Current time on the shared clock, ms (may be fractional). */
  now(): number;
  /** The most `now()` may be off the shared clock right now, ms (core widens every comparison by it). */
  errorMs(): number;
}

/**
 * Shared, durable storage of watermarks (the Redis bus keeps them in Redis). Core writes every
 * watermark it sets, retries until the store acknowledges it, loads the store's at start-up and
 * whenever the store says something may have been lost or missed, and writes back what the store
 * lacks (a restart, a restore from an older snapshot, a failover to a lagging replica).
 */
export interface WatermarkStore {
  /**
   * Max-merges watermarks into the store (a lower `at`, or a lower version, never replaces a
   * higher one). Resolves once acknowledged; rejects when the store cannot be reached. A store
   * that counts its saves resolves the counter after this one: core sends it with the messages of
   * these watermarks (`InvalidationEnvelope.seq`), which it publishes only once the save landed.
   */
  // biome-ignore lint/suspicious/noConfusingVoidType: stores written before the counter resolve Promise<void>, which stays valid
  save(marks: readonly InvalidationWatermark[]): Promise<number | undefined | void>;
  /** Every watermark stored. */
  load(): Promise<InvalidationWatermark[]>;
  /**
   * Registers `listener`, called whenever stored watermarks may have been lost (the store came
   * back empty or older) or this process may have missed some (it was cut off): core then loads
   * the store's and saves what the store lacks. Returns a function that unregisters it.
   */
  onResync(listener: () => void): () => void;
  /**
   * Keeps the store bounded: watermarks older than `before` (except `clear` ones) and the oldest
   * beyond `max` are folded into a `clear` watermark of their tenant+namespace (or the store-wide
   * one), which covers at least what they covered.
   */
  prune(before: number, max: number): Promise<void>;
}

/** Cross-process fan-out (the Redis layer ships one on pub/sub). */
export interface InvalidationBus {
  publish(envelope: InvalidationEnvelope): Promise<void>;
  subscribe(handler: (envelope: InvalidationEnvelope) => void): Promise<() => Promise<void>>;
  /** The clock stamps and watermarks are read from. @default the process's own clock, taken to be exact */
  readonly clock?: FleetClock | undefined;
  /** Durable watermarks (see {@link WatermarkStore}). @default none: watermarks live in the processes that heard of them */
  readonly watermarks?: WatermarkStore | undefined;
}

/** In-process bus: several caches in one process (tests, workers sharing a module). */
export class LocalInvalidationBus implements InvalidationBus {
  private readonly handlers = new Set<(e: InvalidationEnvelope) => void>();
  async publish(envelope: InvalidationEnvelope): Promise<void> {
    for (const h of [...this.handlers]) h(envelope);
  }
  async subscribe(handler: (e: InvalidationEnvelope) => void): Promise<() => Promise<void>> {
    this.handlers.add(handler);
    return async () => void this.handlers.delete(handler);
  }
}
