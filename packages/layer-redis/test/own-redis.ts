import type { CacheEntry } from '@strata-cache/core';
import { type RedisServerHandle, startRedisServer, uniqueKeyPrefix } from '@strata-cache/test-utils';
import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { RedisLayer, type RedisLayerOptions } from '../src/index.js';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every key matching `pattern`, sorted. SCAN, not KEYS: REDIS_URL may point at a shared server. */
export async function scanAll(raw: Redis, pattern: string): Promise<string[]> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await raw.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    out.push(...keys);
    cursor = next;
  } while (cursor !== '0');
  return out.sort();
}

export const entry = (value: unknown, extra: Partial<CacheEntry> = {}): CacheEntry => ({ value, createdAt: Date.now(), ttlMs: 60_000, tags: [], ...extra });

/**
 * A redis-server of the test file's own (for checks that read INFO, count connections, pause
 * the server or store hostile values), a raw client on it, and layers closed after the file.
 */
export function ownRedis(label: string, defaults: RedisLayerOptions = {}, serverArgs: readonly string[] = []) {
  const own = {
    server: undefined as unknown as RedisServerHandle,
    raw: undefined as unknown as Redis,
    layers: [] as RedisLayer[],
    makeLayer(options: RedisLayerOptions = {}): RedisLayer {
      // Direct calls on a loaded machine: a generous read limit keeps the breaker out of these checks.
      const layer = new RedisLayer({ url: own.server.url, prefix: uniqueKeyPrefix(label), timeoutMs: 1_000, ...defaults, ...options });
      own.layers.push(layer);
      return layer;
    },
    /** Calls of each command since the server started. */
    async calls(...commands: string[]): Promise<Record<string, number>> {
      const info = await own.raw.info('commandstats');
      return Object.fromEntries(commands.map((c) => [c, Number(new RegExp(`cmdstat_${c}:calls=(\\d+)`).exec(info)?.[1] ?? 0)]));
    },
  };
  beforeAll(async () => {
    own.server = await startRedisServer({ args: serverArgs });
    own.raw = new Redis(own.server.url);
  }, 30_000);
  afterAll(async () => {
    for (const l of own.layers) await l.close();
    own.raw?.disconnect();
    await own.server?.stop();
  });
  return own;
}
