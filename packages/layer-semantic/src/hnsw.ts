import { lazyImport } from '@strata-cache/core';
import type { HierarchicalNSW } from 'hnswlib-node';

export type HnswModule = { HierarchicalNSW: typeof HierarchicalNSW };

const HINT =
  'Its addon is compiled on install (node-gyp, a C++ compiler and Python): with pnpm 10, allow the build with ' +
  '`onlyBuiltDependencies: [hnswlib-node]` in pnpm-workspace.yaml (or `pnpm approve-builds`), then `pnpm rebuild hnswlib-node`';

/**
 * Loads hnswlib-node on first use (never at import) through core's `lazyImport`, importing
 * from this package so pnpm's strict layout resolves our peer. The addon is touched once, so an
 * unbuilt binary fails here as a MissingDependencyError, not in the middle of a write.
 */
export function loadHnsw(): Promise<HnswModule> {
  return lazyImport<HnswModule>('hnswlib-node', '@strata-cache/layer-semantic', HINT, async () => {
    const m = (await import('hnswlib-node')) as unknown as Partial<HnswModule> & { default?: Partial<HnswModule> };
    const ctor = m.HierarchicalNSW ?? m.default?.HierarchicalNSW;
    if (typeof ctor !== 'function') throw new Error('hnswlib-node has no HierarchicalNSW export');
    new ctor('ip', 2);
    return { HierarchicalNSW: ctor };
  });
}
