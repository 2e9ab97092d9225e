import type { InvalidationMessage } from './bus.js';
import type { CacheContext } from './context.js';
import type { CacheKey } from './fingerprint.js';
import { FAILED, type Failed, type ResolvedLayer } from './layer-runner.js';
import type { Scope } from './scope.js';

/** A key rebuilt from its id (what a remote `key` invalidation carries): enough for `delete`. */
export function keyFromId(id: string, scope: Scope): CacheKey {
  const m = /^v(\d+):([^:]*):([A-Za-z0-9_-]+)$/.exec(id);
  return { schema: Number(m?.[1] ?? 0), scope, scopeId: m?.[2] ?? '', profile: '', hash: m?.[3] ?? '', id };
}

/** What one invalidation did to the layers. */
export interface Applied {
  /** Entries removed per layer reached. */
  readonly counts: Record<string, number>;
  /** Layers whose operation failed (threw, rejected or ran out of budget). */
  readonly unreached: ResolvedLayer[];
}

/** Does this message concern layer `l` at all? (Tag and version purges need `capabilities.tags`.) */
export function concerns(l: ResolvedLayer, message: InvalidationMessage): boolean {
  if (message.type === 'tag') return l.tags && typeof l.layer.deleteByTag === 'function';
  if (message.type === 'scope-version') return l.tags && typeof l.layer.deleteOlderVersions === 'function';
  return true;
}

/** Runs one invalidation on one layer: the number removed, or FAILED. */
export function applyToLayer(ctx: CacheContext, l: ResolvedLayer, message: InvalidationMessage, localKey?: CacheKey): Promise<number | Failed> {
  const r = run(ctx, l, message, localKey);
  return Promise.resolve(r).then((v) => (v === FAILED ? FAILED : typeof v === 'number' ? v : v === true ? 1 : 0));
}

function run(
  ctx: CacheContext,
  l: ResolvedLayer,
  message: InvalidationMessage,
  localKey?: CacheKey,
): number | boolean | undefined | Failed | Promise<number | boolean | undefined | Failed> {
  switch (message.type) {
    case 'tag':
      return ctx.runner.write(l, 'deleteByTag', () => l.layer.deleteByTag!(message.tag, message.scope));
    case 'scope-version':
      return ctx.runner.write(l, 'deleteOlderVersions', () => l.layer.deleteOlderVersions!(message.scope));
    case 'clear':
      return ctx.runner.write(l, 'clear', () => l.layer.clear(message.scope));
    case 'key': {
      const key = localKey ?? keyFromId(message.keyId, message.scope);
      return ctx.runner.write(l, 'delete', (c) => l.layer.delete(key, c));
    }
  }
}

/**
 * Applies one invalidation to every layer (a remote one skips `shared` layers: the sender
 * already purged them) and resolves the number of entries each removed, and which layers it
 * could not reach (a failing layer is an `error` event; core retries it, and meanwhile the
 * watermark keeps what it holds from being served). Tag and version purges reach only layers
 * that declare `capabilities.tags`.
 */
export async function applyInvalidation(ctx: CacheContext, message: InvalidationMessage, remote: boolean, localKey?: CacheKey): Promise<Applied> {
  const counts: Record<string, number> = {};
  const unreached: ResolvedLayer[] = [];
  await Promise.all(
    ctx.layers.map(async (l) => {
      if (remote && l.layer.capabilities.shared) return;
      if (!concerns(l, message)) {
        counts[l.name] = 0;
        return;
      }
      const r = await applyToLayer(ctx, l, message, localKey);
      if (r === FAILED) unreached.push(l);
      else counts[l.name] = r;
    }),
  );
  return { counts, unreached };
}
