// Identical requests from several processes at once, sharing a Redis layer and its coordinator:
// the parent starts the children and collects what they printed; each child runs its requests
// concurrently through a cache of its own (memory L1 + Redis L2, coordinator on).
import { MultiLayerCache } from '@strata-cache/core';
import { MemoryLayer } from '@strata-cache/layer-memory';
import { RedisLayer } from '@strata-cache/layer-redis';
import { spawnTaggedChild } from '@strata-cache/test-utils';

/** What one child was asked to do. */
export interface ChildTask {
  readonly baseURL: string;
  /** Which request the child script makes (the script decides what the names mean). */
  readonly task: string;
}

/** What one child printed. */
export interface ChildResult {
  readonly pid: number;
  /** The results of its concurrent requests, in order. */
  readonly results: unknown[];
  /** Requests answered from the cache's statistics: hits, misses, coalesced. */
  readonly stats: { hits: number; misses: number; coalesced: number };
}

/**
 * Parent side: runs `script` in `processes` child processes that start their requests at the
 * same moment, `perProcess` identical ones each, through Redis at `redisUrl` under `prefix`.
 */
export async function acrossProcesses(
  script: string,
  o: { redisUrl: string; prefix: string; baseURL: string; task: string; processes?: number; perProcess?: number; cwd?: string },
): Promise<ChildResult[]> {
  const startAt = Date.now() + 1_500;
  const args = [o.redisUrl, o.prefix, o.baseURL, o.task, String(o.perProcess ?? 5), String(startAt)];
  const children = Array.from({ length: o.processes ?? 2 }, () => spawnTaggedChild(script, args, o.cwd ? { cwd: o.cwd } : {}));
  const results = await Promise.all(children.map((c) => c.waitFor('RESULT', 1, 30_000).then((lines) => lines[0]!.data as unknown as ChildResult)));
  await Promise.all(children.map((c) => c.exited));
  return results;
}

/**
 * Child side (call it from the script `acrossProcesses` runs): builds the cache, waits for the
 * common start, runs `request` concurrently as many times as asked and prints the results.
 */
export async function runChild(request: (cache: MultiLayerCache, task: ChildTask) => Promise<unknown>): Promise<void> {
  const [redisUrl, prefix, baseURL, task, perProcess, startAt] = process.argv.slice(2) as [string, string, string, string, string, string];
  const redis = new RedisLayer({ url: redisUrl, prefix });
  await redis.connect();
  const cache = new MultiLayerCache({ layers: [new MemoryLayer(), redis], coordinator: redis.coordinator });
  await new Promise((r) => setTimeout(r, Math.max(0, Number(startAt) - Date.now())));
  const results = await Promise.all(Array.from({ length: Number(perProcess) }, () => request(cache, { baseURL, task })));
  const s = cache.stats();
  const out: ChildResult = { pid: process.pid, results, stats: { hits: s.hits, misses: s.misses, coalesced: s.coalesced } };
  process.stdout.write(`RESULT ${JSON.stringify(out)}\n`);
  await cache.close();
  process.exit(0);
}

export { startRedisServer } from '@strata-cache/test-utils';
export type { RedisServerHandle } from '@strata-cache/test-utils';
