import {
  type CacheEntry,
  type CacheKey,
  type InvalidationBus,
  type InvalidationEnvelope,
  LocalInvalidationBus,
  type LayerCapabilities,
  type LayerV1,
  LAYER_SPECIFICATION_VERSION,
  type Scope,
} from '@strata-cache/core';
import { MemoryLayer } from '@strata-cache/layer-memory';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A real MemoryLayer behind an async boundary that answers after `delayMs`, declared shared
 * and remote: what a Redis L2 looks like to core (slow, shared by processes). One instance
 * passed to two caches plays "two processes sharing Redis".
 */
export class SlowSharedLayer implements LayerV1 {
  readonly specificationVersion = LAYER_SPECIFICATION_VERSION;
  readonly capabilities: LayerCapabilities = { nativeTtl: true, batch: false, semantic: false, shared: true, tags: true, remote: true };
  readonly inner = new MemoryLayer({ maxEntries: 10_000, freeze: false });
  getDelayMs = 0;
  deleteDelayMs = 0;
  /** Every operation rejects (Redis down). */
  down = false;
  constructor(readonly name = 'shared') {}
  private check(): void {
    if (this.down) throw new Error(`${this.name} is down`);
  }
  async get(key: CacheKey): Promise<CacheEntry | undefined> {
    this.check();
    const entry = this.inner.get(key); // read now, answer later: an in-flight read
    if (this.getDelayMs > 0) await sleep(this.getDelayMs);
    return entry;
  }
  async set(key: CacheKey, entry: CacheEntry) {
    this.check();
    this.inner.set(key, entry);
  }
  async delete(key: CacheKey) {
    this.check();
    return this.inner.delete(key);
  }
  async clear(scope?: Pick<Scope, 'tenant' | 'namespace'>) {
    this.check();
    return this.inner.clear(scope);
  }
  async deleteByTag(tag: string, scope?: Pick<Scope, 'tenant' | 'namespace'>) {
    this.check();
    if (this.deleteDelayMs > 0) await sleep(this.deleteDelayMs);
    return this.inner.deleteByTag(tag, scope);
  }
  async deleteOlderVersions(scope: Scope) {
    return this.inner.deleteOlderVersions(scope);
  }
  async scan(o: { scope?: Pick<Scope, 'tenant' | 'namespace'>; cursor?: string; count?: number }) {
    return this.inner.scan(o);
  }
}

/** A bus that delivers after `delayMs` (a slow network between processes). */
export class DelayedBus implements InvalidationBus {
  private readonly inner = new LocalInvalidationBus();
  constructor(public delayMs: number) {}
  async publish(envelope: InvalidationEnvelope): Promise<void> {
    setTimeout(() => void this.inner.publish(envelope), this.delayMs);
  }
  subscribe(handler: (e: InvalidationEnvelope) => void) {
    return this.inner.subscribe(handler);
  }
}
