import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MultiLayerCache } from '@strata-cache/core';
import { MemoryLayer } from '@strata-cache/layer-memory';
import { rawRedisCommand, redisForTests, spawnTaggedChild, startRedisServer, uniqueKeyPrefix } from '@strata-cache/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisInvalidationBus, RedisLayer } from '../src/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const pkg = join(here, '..');
const child = join(here, 'fixtures', 'child.mjs');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Spawns the child script and collects its tagged JSON lines. */
const run = (args: string[]) => spawnTaggedChild(child, args, { cwd: pkg });

beforeAll(() => {
  // The children import the built package, so build it from the current sources.
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: pkg, stdio: 'inherit' });
}, 60_000);

describe('cross-process coalescing (child processes on built dist)', () => {
  let url: string;
  beforeAll(async () => {
    url = (await redisForTests()).url;
  });

  it('N processes missing the same key concurrently make exactly one loader call', async () => {
    const prefix = uniqueKeyPrefix('coalesce');
    const startAt = String(Date.now() + 1_500); // all children start their request together
    const children = Array.from({ length: 4 }, () => run(['coalesce', url, prefix, startAt, '600']));
    const results = await Promise.all(children.map((c) => c.waitFor('RESULT').then((r) => r[0]!.data)));
    await Promise.all(children.map((c) => c.exited));
    const loaderCalls = children.flatMap((c) => c.lines.filter((l) => l.tag === 'LOADER'));
    expect(loaderCalls).toHaveLength(1);
    const values = new Set(results.map((r) => r.value));
    expect(values.size).toBe(1);
    expect(results.filter((r) => r.status === 'miss')).toHaveLength(1);
    expect(results.filter((r) => r.status === 'hit' && r.coalesced)).toHaveLength(3);
    await cleanup(url, prefix);
  }, 60_000);

  it('a holder that dies mid-load does not block the others: they load themselves once its lock expires', async () => {
    const prefix = uniqueKeyPrefix('coalesce-die');
    const startAt = String(Date.now() + 1_500);
    const holder = run(['die', url, prefix, startAt, '600']);
    await holder.waitFor('LOADER');
    const t0 = Date.now();
    const waiter = run(['coalesce', url, prefix, '0', '50']);
    const [result] = await waiter.waitFor('RESULT');
    expect(await holder.exited).toBeNull(); // killed by SIGKILL
    expect(result!.data.status).toBe('miss');
    expect(waiter.lines.filter((l) => l.tag === 'LOADER')).toHaveLength(1);
    // Bounded by the lock TTL (1 s in the child) plus start-up, not by lock.maxWaitMs.
    expect(Date.now() - t0).toBeLessThan(15_000);
    await waiter.exited;
    await cleanup(url, prefix);
  }, 60_000);
});

describe('invalidation fan-out over Redis pub/sub', () => {
  it("an invalidation published by one process empties the other process's L1 (key and tag)", async () => {
    const url = (await redisForTests()).url;
    const prefix = uniqueKeyPrefix('fanout');
    const other = run(['listen', url, prefix]);
    const [ready] = await other.waitFor('READY');
    expect(ready!.data).toEqual({ a: true, b: true });

    const layer = new RedisLayer({ url, prefix });
    const cache = new MultiLayerCache({ layers: [new MemoryLayer(), layer], bus: new RedisInvalidationBus({ layer }), policy: 'always' });
    await cache.ready();
    await cache.invalidateKey({ q: 'invalidate me by key' });
    const [first] = await other.waitFor('INVALIDATED');
    expect(first!.data).toEqual({ type: 'key', a: false, b: true });
    await cache.invalidateTag('topic:b');
    const both = await other.waitFor('INVALIDATED', 2);
    expect(both[1]!.data).toEqual({ type: 'tag', a: false, b: false });
    // L2 is shared: the invalidating process already removed the entries there.
    expect((await cache.lookup({ q: 'invalidate me by key' }))?.layer).toBeUndefined();

    other.proc.stdin!.end();
    expect(await other.exited).toBe(0);
    await cache.close();
    await cleanup(url, prefix);
  }, 60_000);

  it('the subscriber re-subscribes after Redis restarts (own redis-server)', async () => {
    const server = await startRedisServer();
    try {
      const prefix = uniqueKeyPrefix('resub');
      const make = () => {
        const layer = new RedisLayer({ url: server.url, prefix, breaker: { cooldownMs: 100 } });
        const memory = new MemoryLayer();
        const cache = new MultiLayerCache({ layers: [memory, layer], bus: new RedisInvalidationBus({ layer }), policy: 'always' });
        return { layer, memory, cache };
      };
      const a = make();
      const b = make();
      await Promise.all([a.cache.ready(), b.cache.ready()]);
      const req = { q: 'survives restart' };
      await b.cache.getOrLoad(req, async () => 'v');
      await b.cache.flush();
      expect(b.memory.get(b.cache.keyFor(req))).toBeDefined();

      await server.restart();
      const numsub = async () => {
        const reply = await rawRedisCommand(server, ['PUBSUB', 'NUMSUB', `${prefix}:invalidate`]).catch(() => '');
        return Number(/:(\d+)\r\n$/.exec(reply)?.[1] ?? 0);
      };
      const deadline = Date.now() + 15_000;
      while ((await numsub()) < 2 || a.layer.state !== 'closed') {
        if (Date.now() > deadline) throw new Error('subscribers did not come back');
        // A request lets the publishing connection notice the restart and recover.
        await a.cache.lookup({ q: 'poke' });
        await sleep(100);
      }
      let received = false;
      b.cache.on('invalidate', (e) => (received ||= e.origin === 'remote'));
      await a.cache.invalidateKey(req);
      const until = Date.now() + 5_000;
      while (!received && Date.now() < until) await sleep(20);
      expect(received).toBe(true);
      expect(b.memory.get(b.cache.keyFor(req))).toBeUndefined();
      await a.cache.close();
      await b.cache.close();
    } finally {
      await server.stop();
    }
  }, 60_000);
});

async function cleanup(url: string, prefix: string): Promise<void> {
  const layer = new RedisLayer({ url, prefix });
  await layer.clear();
  await layer.close();
}

afterAll(() => undefined);
