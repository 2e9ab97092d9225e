import { MultiLayerCache, computeKey, resolveScope } from '@strata-cache/core';
import { MemoryLayer } from '@strata-cache/layer-memory';
import { runLayerComplianceSuite } from '@strata-cache/layer-test-suite';
import { type RedisClusterHandle, startRedisCluster, uniqueKeyPrefix } from '@strata-cache/test-utils';
import { Cluster } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { RedisInvalidationBus, RedisLayer } from '../src/index.js';

// One 3-master cluster for the file, started by the test itself.
let cluster: Promise<RedisClusterHandle> | undefined;
const getCluster = () => (cluster ??= startRedisCluster(3));
afterAll(async () => (await cluster)?.stop(), 30_000);

const clusterLayer = async (slotsPerScope: number) => {
  const c = await getCluster();
  return new RedisLayer({
    cluster: { nodes: [...c.nodes] },
    prefix: uniqueKeyPrefix(`cluster${slotsPerScope}`),
    slotsPerScope,
    connectTimeoutMs: 5_000,
    timeoutMs: 1_000,
    breaker: { cooldownMs: 100 },
  });
};

runLayerComplianceSuite({
  name: 'redis cluster (slotsPerScope 1)',
  create: () => clusterLayer(1),
  unavailable: {
    make: async () => (await getCluster()).servers.forEach((s) => s.pause()),
    restore: async () => (await getCluster()).servers.forEach((s) => s.resume()),
  },
  ttlMs: 300,
  testTimeoutMs: 30_000,
});

runLayerComplianceSuite({
  name: 'redis cluster (slotsPerScope 4)',
  create: () => clusterLayer(4),
  ttlMs: 300,
  testTimeoutMs: 30_000,
});

describe('redis cluster key placement', () => {
  it('keeps a scope in one slot with slotsPerScope 1, spreads it with 4; clear() reaches every master', async () => {
    const c = await getCluster();
    const probe = new Cluster([...c.nodes], { lazyConnect: true });
    try {
      await probe.connect();
      for (const slots of [1, 4]) {
        const layer = await clusterLayer(slots);
        const scope = resolveScope({ tenant: `placement-${slots}`, namespace: 'n' });
        const keys = Array.from({ length: 40 }, (_, i) => computeKey({ i }, scope));
        await Promise.all(keys.map((k) => layer.set(k, { value: 1, createdAt: Date.now(), ttlMs: 60_000, tags: ['t'] })));
        const slotsUsed = new Set(await Promise.all(keys.map((k) => probe.cluster('KEYSLOT', layer.keys.entry(k)) as Promise<number>)));
        expect(slotsUsed.size).toBe(slots);
        expect(await layer.deleteByTag('t', scope)).toBe(40);
        // Scatter a second scope per slot count and wipe everything under the prefix.
        await Promise.all(keys.map((k) => layer.set(k, { value: 2, createdAt: Date.now(), ttlMs: 60_000, tags: [] })));
        await layer.clear();
        const left = await Promise.all(keys.map((k) => layer.get(k)));
        expect(left.every((e) => e === undefined)).toBe(true);
        await layer.close();
      }
    } finally {
      probe.disconnect();
    }
  }, 60_000);
});

describe('redis cluster: coalesced reads', () => {
  it('groups the reads of one tick by slot: one MGET per hash tag, each caller its own value', async () => {
    const c = await getCluster();
    const probe = new Cluster([...c.nodes], { lazyConnect: true });
    const mgets = async () => {
      let n = 0;
      for (const node of probe.nodes('master')) n += Number(/cmdstat_mget:calls=(\d+)/.exec(await node.info('commandstats'))?.[1] ?? 0);
      return n;
    };
    try {
      await probe.connect();
      for (const slots of [1, 4]) {
        const layer = await clusterLayer(slots);
        await layer.connect();
        // 12 scopes hash to slots on every master; 240 keys read in one tick.
        const scopes = Array.from({ length: 12 }, (_, s) => resolveScope({ tenant: `mget-${slots}-${s}`, namespace: 'n' }));
        const keys = Array.from({ length: 240 }, (_, i) => computeKey({ i }, scopes[i % scopes.length]!));
        await Promise.all(keys.map((k, i) => (i % 5 === 0 ? undefined : layer.set(k, { value: i, createdAt: Date.now(), ttlMs: 60_000, tags: [] }))));
        const tags = new Set(keys.map((k) => layer.keys.shardOf(k)));
        expect(tags.size).toBe(12 * slots);
        const before = await mgets();
        const got = await Promise.all(keys.map((k) => layer.get(k)));
        const sent = (await mgets()) - before;
        got.forEach((e, i) => expect(e?.value).toBe(i % 5 === 0 ? undefined : i));
        // No CROSSSLOT (every read succeeded), and not one command per key: one per hash tag
        // (a tag with a single read goes as a plain GET).
        expect(sent).toBeGreaterThan(0);
        expect(sent).toBeLessThanOrEqual(tags.size);
        expect(layer.stats()).toMatchObject({ state: 'closed', timeouts: 0, decodeErrors: 0 });
        await layer.clear();
        await layer.close();
      }
    } finally {
      probe.disconnect();
    }
  }, 60_000);
});

describe('redis cluster: invalidation bus and coordinator', () => {
  it("fans an invalidation out to another cache's L1 and coalesces through the cluster lock", async () => {
    const prefix = uniqueKeyPrefix('cluster-bus');
    const c = await getCluster();
    const make = () => {
      const layer = new RedisLayer({ cluster: { nodes: [...c.nodes] }, prefix, connectTimeoutMs: 5_000 });
      const memory = new MemoryLayer();
      const cache = new MultiLayerCache({
        layers: [memory, layer],
        bus: new RedisInvalidationBus({ layer }),
        coordinator: layer.coordinator,
        policy: 'always',
      });
      return { layer, memory, cache };
    };
    const a = make();
    const b = make();
    await Promise.all([a.cache.ready(), b.cache.ready(), a.layer.connect(), b.layer.connect()]);

    // Two caches (separate connections, like two processes) miss the same key at once.
    let calls = 0;
    const load = async () => {
      calls++;
      await new Promise((r) => setTimeout(r, 300));
      return 'once';
    };
    const req = { q: 'cluster shared' };
    const [ra, rb] = await Promise.all([a.cache.getOrLoad(req, load), b.cache.getOrLoad(req, load)]);
    expect(calls).toBe(1);
    expect([ra.value, rb.value]).toEqual(['once', 'once']);
    await Promise.all([a.cache.flush(), b.cache.flush()]);
    expect(b.memory.get(b.cache.keyFor(req))).toBeDefined();

    let received = false;
    b.cache.on('invalidate', (e) => (received ||= e.origin === 'remote'));
    await a.cache.invalidateKey(req);
    const until = Date.now() + 5_000;
    while (!received && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect(received).toBe(true);
    expect(b.memory.get(b.cache.keyFor(req))).toBeUndefined();
    await a.layer.clear();
    await a.cache.close();
    await b.cache.close();
  }, 60_000);
});
