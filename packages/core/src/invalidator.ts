import type { EventEmitter } from 'node:events';
import type { InvalidationBus, InvalidationEnvelope, InvalidationMessage, InvalidationWatermark } from './bus.js';
import type { CacheContext } from './context.js';
import { settledWithin } from './deadline-queue.js';
import type { CacheKey } from './fingerprint.js';
import { applyInvalidation } from './invalidation-apply.js';
import type { InvalidationLog } from './invalidation-log.js';
import type { InvalidationSync } from './invalidation-sync.js';
import type { Scope } from './scope.js';
import type { CacheEvents, InvalidationResult } from './types.js';

/** Watermarks learned from the store at once beyond which layers are not purged one by one. */
const LEARNED_PURGE_MAX = 1_000;
/** How long an invalidation's message waits for its watermark's save before it is sent anyway, ms. */
const PUBLISH_WAIT_MS = 50;

export interface InvalidatorHost {
  readonly instanceId: string;
  readonly events: EventEmitter<CacheEvents>;
  readonly bus: InvalidationBus | undefined;
  isClosed(): boolean;
  /** Raises the known version of a tenant+namespace (a scope-version message). */
  setScopeVersion(scope: Scope, version: number): void;
}

/** This process's side of every invalidation: local ones (purge, publish, persist) and remote ones. */
export class Invalidator {
  constructor(
    private readonly ctx: CacheContext,
    private readonly sync: InvalidationSync,
    private readonly log: InvalidationLog,
    private readonly host: InvalidatorHost,
  ) {}

  /**
   * One invalidation: its watermark goes into this process's table at once (every read from here
   * on refuses what it covers, wherever it sits); once the layers are purged, the watermark is
   * stored and the message published. What fails is retried until done and
   * reported (`unreached`, `pending`), never counted as 0.
   */
  async invalidate(message: InvalidationMessage, key?: CacheKey): Promise<InvalidationResult> {
    const at = this.sync.set(message);
    this.log.record(message, at);
    const w: InvalidationWatermark = { message, at };
    const applied = await applyInvalidation(this.ctx, message, false, key);
    // Published once this process's layers are done (the shared ones included), so a receiver
    // never finds in a shared layer what the sender is still removing from it, and once the
    // watermark is stored, with the store's counter: a process re-subscribing meanwhile loads the
    // store after it is back and finds the watermark there, and one that hears nothing notices the
    // counter it did not hear of. A store that does not answer within PUBLISH_WAIT_MS does not hold
    // the message back: it goes without the counter, and again with it once the save landed.
    const persisting = this.sync.persist(w);
    let published = true;
    let saved: { readonly saved: boolean; readonly seq: number | undefined };
    if (!this.host.bus) saved = await persisting;
    else {
      const early = await settledWithin(persisting, PUBLISH_WAIT_MS);
      published = await this.sync.publish(w, this.host.instanceId, early?.seq);
      saved = early ?? (await persisting);
      if (!early && saved.seq !== undefined) this.sync.announce(w, saved.seq);
    }
    const durable = saved.saved;
    this.sync.retryLayers(message, applied.unreached, key);
    const result: InvalidationResult = {
      layers: applied.counts,
      unreached: applied.unreached.map((l) => l.name),
      message,
      at,
      durable,
      pending: applied.unreached.length > 0 || !published || (!durable && this.sync.status().durableStore),
    };
    this.host.events.emit('invalidate', { ...result, origin: 'local' });
    return result;
  }

  /** A message another process published on the bus. */
  onRemote(envelope: InvalidationEnvelope): void {
    if (envelope.origin === this.host.instanceId || this.host.isClosed()) return;
    // A sender of an earlier version sends no watermark: the time it arrived is later, so safe.
    const at = typeof envelope.at === 'number' && Number.isFinite(envelope.at) ? this.sync.plausible(envelope.at) : this.sync.markTime();
    this.applyRemote(envelope.message, at);
  }

  /** Watermarks another process set, learned from the store (at start-up, or after being cut off). */
  onLearned(marks: readonly InvalidationWatermark[], first: boolean): void {
    if (this.host.isClosed()) return;
    // At start-up, or after a long cut-off, the layers are not purged one watermark at a time:
    // the read path refuses what they cover (and removes it when it finds it).
    const purge = !first && marks.length <= LEARNED_PURGE_MAX;
    for (const w of marks) {
      if (purge) this.applyRemote(w.message, w.at);
      else {
        if (w.message.type === 'scope-version') this.host.setScopeVersion(w.message.scope, w.message.scope.version);
        this.log.record(w.message, w.at);
      }
    }
  }

  private applyRemote(message: InvalidationMessage, at: number): void {
    if (message.type === 'scope-version') this.host.setScopeVersion(message.scope, message.scope.version);
    this.sync.table.add(message, at);
    this.log.record(message, at);
    this.ctx.runner.track(
      applyInvalidation(this.ctx, message, true).then(({ counts, unreached }) => {
        this.sync.retryLayers(message, unreached, undefined);
        const pending = unreached.length > 0;
        this.host.events.emit('invalidate', {
          layers: counts,
          unreached: unreached.map((l) => l.name),
          message,
          at,
          durable: false,
          pending,
          origin: 'remote',
        });
      }),
    );
  }
}
