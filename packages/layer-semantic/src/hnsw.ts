import { MissingDependencyError } from '@strata-cache/core';
import type { HierarchicalNSW } from 'hnswlib-node';

export type HnswModule = { HierarchicalNSW: typeof HierarchicalNSW };

let loading: Promise<HnswModule> | undefined;

/**
 * Loads hnswlib-node on first use (never at import), from this package's location so pnpm's
 * strict layout resolves our peer. A missing or unbuilt native addon becomes a
 * MissingDependencyError that says what to do.
 */
export function loadHnsw(): Promise<HnswModule> {
  loading ??= import('hnswlib-node')
    .then((mod: unknown) => {
      const m = mod as Partial<HnswModule> & { default?: Partial<HnswModule> };
      const ctor = m.HierarchicalNSW ?? m.default?.HierarchicalNSW;
      if (typeof ctor !== 'function') throw new Error('hnswlib-node has no HierarchicalNSW export');
      // Touch the addon once so an unbuilt binary fails here, not in the middle of a write.
      new ctor('ip', 2);
      return { HierarchicalNSW: ctor };
    })
    .catch((cause: unknown) => {
      loading = undefined;
      const reason = (cause as Error)?.message ?? String(cause);
      throw new MissingDependencyError(
        'hnswlib-node',
        `@strata-cache/layer-semantic needs "hnswlib-node" and its native addon, which could not be loaded (${reason}). ` +
          'Install it: pnpm add hnswlib-node. Its addon is compiled on install (node-gyp, a C++ compiler and Python): with pnpm 10, ' +
          'allow the build with `onlyBuiltDependencies: [hnswlib-node]` in pnpm-workspace.yaml (or `pnpm approve-builds`), then `pnpm rebuild hnswlib-node`',
        { cause },
      );
    });
  return loading;
}
