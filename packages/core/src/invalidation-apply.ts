import type { InvalidationMessage } from './bus.js';
import type { CacheContext } from './context.js';
import type { CacheKey } from './fingerprint.js';
import { FAILED, type Failed } from './layer-runner.js';
import type { Scope } from './scope.js';

/** A key rebuilt from its id (what a remote `key` invalidation carries): enough for `delete`. */
export function keyFromId(id: string, scope: Scope): CacheKey {
  const m = /^v(\d+):([^:]*):([A-Za-z0-9_-]+)$/.exec(id);
  return { schema: Number(m?.[1] ?? 0), scope, scopeId: m?.[2] ?? '', profile: '', hash: m?.[3] ?? '', id };
}

/**
 * Applies one invalidation to every layer (a remote one skips `shared` layers: the sender
 * already purged them) and resolves the number of entries each removed. Tag and version purges
 * reach only layers that declare `capabilities.tags`; a failing layer counts 0 (and is an
 * `error` event).
 */
export async function applyInvalidation(ctx: CacheContext, message: InvalidationMessage, remote: boolean, localKey?: CacheKey): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  await Promise.all(
    ctx.layers.map(async (l) => {
      if (remote && l.layer.capabilities.shared) return;
      let r: number | boolean | void | Failed = 0;
      switch (message.type) {
        case 'tag':
          if (l.tags && l.layer.deleteByTag) r = await ctx.runner.write(l, 'deleteByTag', () => l.layer.deleteByTag!(message.tag, message.scope));
          break;
        case 'scope-version':
          if (l.tags && l.layer.deleteOlderVersions) r = await ctx.runner.write(l, 'deleteOlderVersions', () => l.layer.deleteOlderVersions!(message.scope));
          break;
        case 'clear':
          r = await ctx.runner.write(l, 'clear', () => l.layer.clear(message.scope));
          break;
        case 'key': {
          const key = localKey ?? keyFromId(message.keyId, message.scope);
          r = await ctx.runner.write(l, 'delete', (c) => l.layer.delete(key, c));
          break;
        }
      }
      counts[l.name] = r === FAILED ? 0 : typeof r === 'number' ? r : r === true ? 1 : 0;
    }),
  );
  return counts;
}
