// What the adapter test suites share: a one-layer cache, a look at everything a layer holds,
// and the secrets the no-secrets tests search for.
import { type CacheEntry, type CacheKey, type MultiLayerCacheOptions, MultiLayerCache } from '@strata-cache/core';
import { MemoryLayer } from '@strata-cache/layer-memory';

export const SECRET_KEY = 'sk-test-SECRET-0123456789abcdef';
export const SECRET_ORG = 'org-SECRET-organisation';
export const SECRET_PROJECT = 'proj_SECRET-project';

/** A cache over one memory layer named `l1`, policy `always` unless `options` say otherwise. */
export function memoryCache(options: Partial<MultiLayerCacheOptions> = {}): { cache: MultiLayerCache; layer: MemoryLayer } {
  const layer = new MemoryLayer({ name: 'l1' });
  const cache = new MultiLayerCache({ layers: [layer], policy: 'always', ...options });
  return { cache, layer };
}

/** Everything a memory layer holds: keys and entries. */
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

/**
 * Which major of an SDK the adapter tests and benchmarks run against. openai 7 requires
 * Node >= 22: there the current major is used, on older Node the previous one. An environment
 * variable (`STRATA_OPENAI_SDK=6|7`) picks one explicitly.
 */
export function sdkChoice(
  env: NodeJS.ProcessEnv = process.env,
  nodeVersion: string = process.versions.node,
): { openai: { major: 6 | 7; specifier: 'openai' | 'openai-v6' } } {
  const node = Number(nodeVersion.split('.')[0]);
  const asked = env['STRATA_OPENAI_SDK'];
  if (asked !== undefined && asked !== '6' && asked !== '7') throw new Error(`STRATA_OPENAI_SDK must be 6 or 7, not "${asked}"`);
  const major = asked === '7' ? 7 : asked === '6' ? 6 : node >= 22 ? 7 : 6;
  return { openai: { major, specifier: major === 7 ? 'openai' : 'openai-v6' } };
}

/** The process warnings with this `code` emitted while `fn` ran (they are delivered on a later tick). */
export async function warningsDuring(code: string, fn: () => Promise<unknown>): Promise<Error[]> {
  const seen: Error[] = [];
  const listener = (w: Error) => seen.push(w);
  process.on('warning', listener);
  try {
    await fn();
    await new Promise((r) => setTimeout(r, 20));
  } finally {
    process.off('warning', listener);
  }
  return seen.filter((w) => (w as { code?: string }).code === code);
}
