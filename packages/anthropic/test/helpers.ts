import { type CacheEntry, type CacheKey, type MultiLayerCacheOptions, MultiLayerCache } from '@strata-cache/core';
import { MemoryLayer } from '@strata-cache/layer-memory';

export const SECRET_KEY = 'sk-test-SECRET-0123456789abcdef';
export const SECRET_ORG = 'org-SECRET-organisation';
export const SECRET_PROJECT = 'proj_SECRET-project';

export function memoryCache(options: Partial<MultiLayerCacheOptions> = {}) {
  const layer = new MemoryLayer({ name: 'l1' });
  const cache = new MultiLayerCache({ layers: [layer], policy: 'always', ...options });
  return { cache, layer };
}

/** Everything a layer holds: keys and entries. */
export function stored(layer: MemoryLayer): Array<{ key: CacheKey; entry: CacheEntry }> {
  const out: Array<{ key: CacheKey; entry: CacheEntry }> = [];
  let cursor: string | undefined;
  do {
    const page = layer.scan({ count: 1000, ...(cursor ? { cursor } : {}) });
    out.push(...page.items);
    cursor = page.cursor;
  } while (cursor);
  return out;
}

export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of iterable) out.push(x);
  return out;
}

/** Plain JSON copy (drops non-enumerable SDK extras such as `_request_id`). */
export const plain = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;

export { watchOutput } from '@strata-cache/provider-test-servers';
