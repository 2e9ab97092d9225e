import { type CacheEntry, type CacheKey, type MultiLayerCacheOptions, MultiLayerCache } from '@strata-cache/core';
import { vi } from 'vitest';
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

const EVENTS = ['hit', 'miss', 'set', 'error', 'reject', 'invalidate', 'skipWrite'] as const;

/**
 * Records everything the cache tells the outside world while a test runs: every cache event
 * and every console line. `dump()` is that record as one lower-cased string (errors with their
 * message, stack and cause), for "no secret in any log" checks.
 */
export function watchOutput(cache: MultiLayerCache) {
  const events: Array<{ name: string; payload: unknown }> = [];
  for (const name of EVENTS) (cache.on as (n: string, f: (p: unknown) => void) => unknown)(name, (payload) => events.push({ name, payload }));
  const logged: unknown[][] = [];
  const spies = (['log', 'info', 'warn', 'error', 'debug', 'trace'] as const).map((m) =>
    vi.spyOn(console, m).mockImplementation((...args: unknown[]) => {
      logged.push(args);
    }),
  );
  const replacer = (_k: string, v: unknown) => (v instanceof Error ? { name: v.name, message: v.message, stack: v.stack, cause: String(v.cause) } : v);
  return {
    events,
    logged,
    dump: () => JSON.stringify({ events, logged, stats: cache.stats() }, replacer).toLowerCase(),
    restore: () => spies.forEach((s) => s.mockRestore()),
  };
}
