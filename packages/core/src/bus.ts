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
}

/** Cross-process fan-out (the Redis layer ships one on pub/sub). */
export interface InvalidationBus {
  publish(envelope: InvalidationEnvelope): Promise<void>;
  subscribe(handler: (envelope: InvalidationEnvelope) => void): Promise<() => Promise<void>>;
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
