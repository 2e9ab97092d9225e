import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CacheKey } from '@strata-cache/core';
import { type RedisServerHandle, spawnTaggedChild, startRedisServer, uniqueKeyPrefix } from '@strata-cache/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisLayer } from '../src/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const pkg = join(here, '..');
const child = join(here, 'fixtures', 'child.mjs');

async function runChild(args: string[]) {
  const c = spawnTaggedChild(child, args, { cwd: pkg });
  const code = await c.exited;
  return { code, lines: c.lines, stderr: c.stderr() };
}

let server: RedisServerHandle;
beforeAll(async () => {
  // The children import the built package, so build it from the current sources.
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: pkg, stdio: 'inherit' });
  server = await startRedisServer();
}, 60_000);
afterAll(async () => server?.stop());

describe('a burst of identical misses with default options (issue: event-loop delay counted as Redis failure)', () => {
  it('4 processes × 250 concurrent identical getOrLoad misses → 1 loader call, one answer, and the answer in L2', async () => {
    const prefix = uniqueKeyPrefix('burst');
    const startAt = String(Date.now() + 2_000);
    const runs = await Promise.all(Array.from({ length: 4 }, () => runChild(['burst', server.url, prefix, startAt, '300', '250'])));
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    const results = runs.map((r) => r.lines.find((l) => l.tag === 'RESULT')!.data);
    const loaderCalls = runs.flatMap((r) => r.lines.filter((l) => l.tag === 'LOADER'));
    console.log('burst', JSON.stringify(results.map((r) => ({ statuses: r.statuses, breaker: r.breaker, errorCount: r.errorCount, errors: r.errors }))));
    expect(loaderCalls).toHaveLength(1);
    const values = new Set(results.flatMap((r) => r.values as string[]));
    expect(values.size).toBe(1);
    // No process saw its breaker open: a burst is not an outage. Nor did core count the time the
    // burst kept the event loop busy against the layer's budget (no LayerTimeoutError events).
    for (const r of results) {
      expect((r.breaker as { opens: number }).opens).toBe(0);
      expect(r.layerTimeouts).toBe(0);
      expect(r.coreTimeouts).toBe(0);
    }
    const reader = new RedisLayer({ url: server.url, prefix });
    const stored = await reader.get(results[0]!.key as CacheKey);
    expect(stored?.value).toBe([...values][0]);
    await reader.clear();
    await reader.close();
  }, 90_000);
});
