import { type InvalidationWatermark, MultiLayerCache, computeKey, loaded, resolveScope } from '@strata-cache/core';
import { watermarkId } from '@strata-cache/core/layer-kit';
import { MemoryLayer } from '@strata-cache/layer-memory';
import { describe, expect, it } from 'vitest';
import { RedisInvalidationBus, RedisWatermarks } from '../src/index.js';
import { entry, ownRedis, sleep } from './own-redis.js';

// Own redis-server: these checks flush it, read its keys and its clock.
const own = ownRedis('watermarks');

const until = async (check: () => boolean | Promise<boolean>, ms = 10_000) => {
  const t0 = Date.now();
  while (!(await check())) {
    if (Date.now() - t0 > ms) throw new Error('condition not met in time');
    await sleep(20);
  }
};

const tag = (t: string, at: number): InvalidationWatermark => ({ message: { type: 'tag', tag: t }, at });

describe('RedisWatermarks: watermarks in Redis', () => {
  it('saves max-merged (a lower watermark or version never replaces a higher one) and loads them back', async () => {
    const layer = own.makeLayer();
    const store = new RedisWatermarks(layer, { checkEveryMs: 1_000, clockMarginMs: 1, unsyncedErrorMs: 1_000, timeoutMs: 1_000 });
    const scope = resolveScope({ tenant: 'acme', namespace: 'bot' });
    const key = computeKey({ q: 1 }, scope);
    await store.save([tag('a', 100), tag('b|c', 200), { message: { type: 'key', keyId: key.id, scope: key.scope }, at: 300 }]);
    await store.save([tag('a', 50), { message: { type: 'scope-version', scope: { ...scope, version: 3 } }, at: 1 }]);
    await store.save([
      { message: { type: 'scope-version', scope: { ...scope, version: 2 } }, at: 2 },
      { message: { type: 'clear', scope }, at: 400 },
    ]);
    const loaded = await store.load();
    const byId = new Map(loaded.map((w) => [watermarkId(w.message), w]));
    expect(byId.get('tag|*|a')?.at).toBe(100);
    expect(byId.get(watermarkId({ type: 'tag', tag: 'b|c' }))?.message).toEqual({ type: 'tag', tag: 'b|c' });
    expect(byId.get(watermarkId({ type: 'key', keyId: key.id, scope: key.scope }))).toEqual({
      message: { type: 'key', keyId: key.id, scope: key.scope },
      at: 300,
    });
    expect(byId.get('version|acme/bot|')?.message).toEqual({ type: 'scope-version', scope: { tenant: 'acme', namespace: 'bot', version: 3 } });
    expect(byId.get('clear|acme/bot|')?.at).toBe(400);
    // Every key shares one hash tag, under the layer's prefix.
    expect(Object.values(store.keys).every((k) => k.startsWith(`${layer.keys.prefix}:wm:{${layer.keys.prefix}}:`))).toBe(true);
  });

  it('reads the Redis clock: its estimate is within the reported error of TIME', async () => {
    const layer = own.makeLayer();
    const store = new RedisWatermarks(layer, { checkEveryMs: 50, clockMarginMs: 0, unsyncedErrorMs: 1_000, timeoutMs: 1_000 });
    expect(store.errorMs()).toBe(1_000); // not sampled yet
    const stop = store.onResync(() => undefined);
    try {
      await until(() => store.errorMs() < 1_000);
      for (let i = 0; i < 5; i++) {
        const [s, us] = await own.raw.time();
        const server = Number(s) * 1_000 + Number(us) / 1_000;
        const mine = store.now();
        // The raw client's own round trip adds to the difference: allow it.
        expect(Math.abs(mine - server)).toBeLessThan(store.errorMs() + 20);
        await sleep(60);
      }
      expect(store.errorMs()).toBeLessThan(20);
    } finally {
      stop();
    }
  });

  it('tells its listeners when Redis lost what it held (flushed, restored, evicted), and the cache writes it back', async () => {
    const layer = own.makeLayer();
    const bus = new RedisInvalidationBus({ layer, watermarkCheckMs: 100 });
    const cache = new MultiLayerCache({ layers: [new MemoryLayer(), layer], bus });
    await cache.ready();
    await cache.invalidateTag('gone-with-the-flush');
    await cache.bumpScopeVersion('acme');
    const keys = (bus.watermarks as RedisWatermarks).keys;
    expect(await own.raw.zscore(keys.marks, 'tag|*|gone-with-the-flush')).not.toBeNull();
    await own.raw.del(keys.marks, keys.versions, keys.seq); // what a restart with an empty data set looks like
    await until(async () => (await own.raw.zscore(keys.marks, 'tag|*|gone-with-the-flush')) !== null);
    expect(await own.raw.zscore(keys.versions, 'version|acme/default|')).toBe('1');
    // An older snapshot: the counter went back.
    await own.raw.zrem(keys.marks, 'tag|*|gone-with-the-flush');
    await own.raw.decrby(keys.seq, 5);
    await until(async () => (await own.raw.zscore(keys.marks, 'tag|*|gone-with-the-flush')) !== null);
    await cache.close();
  });

  it('notices an older snapshot even when other processes saved past its counter before it checked, and writes its watermark back', async () => {
    const layer = own.makeLayer();
    const bus = new RedisInvalidationBus({ layer, watermarkCheckMs: 100 });
    const cache = new MultiLayerCache({ layers: [new MemoryLayer(), layer], bus });
    await cache.ready();
    await cache.invalidateTag('purged-before-the-restore');
    const keys = (bus.watermarks as RedisWatermarks).keys;
    const id = 'tag|*|purged-before-the-restore';
    expect(await own.raw.zscore(keys.marks, id)).not.toBeNull();
    // In one step (no check of this process in between): Redis restored from a snapshot taken just
    // before the purge (counter - 1, the watermark gone), then 3 saves by processes started from
    // that snapshot (which never knew of the purge): the counter ends above what this process saw.
    await own.raw.multi().zrem(keys.marks, id).zadd(keys.marks, Date.now(), 'tag|*|saved-by-another-process').incrby(keys.seq, 2).exec();
    await until(async () => (await own.raw.zscore(keys.marks, id)) !== null);
    await cache.close();
  });

  it('a process that missed the message learns the purge from the store within a few checks (a subscription that heard nothing)', async () => {
    // B listens on another channel than A publishes on: it hears none of A's messages, as a
    // process whose subscription sat on a paused or failing-over node does not. Nothing tells it
    // to reload: the connection never dropped. The store's counter moved past what B heard.
    const a = own.makeLayer();
    const b = own.makeLayer({ prefix: a.keys.prefix });
    const busA = new RedisInvalidationBus({ layer: a, watermarkCheckMs: 100 });
    const busB = new RedisInvalidationBus({ layer: b, watermarkCheckMs: 100, channel: `${a.keys.prefix}:elsewhere` });
    const cacheA = new MultiLayerCache({ layers: [new MemoryLayer(), a], bus: busA, policy: 'always' });
    const cacheB = new MultiLayerCache({ layers: [new MemoryLayer(), b], bus: busB, policy: 'always' });
    await Promise.all([cacheA.ready(), cacheB.ready()]);
    const heard: string[] = [];
    cacheB.on('invalidate', (e) => heard.push(`${e.origin} ${e.message.type} ${e.message.type === 'tag' ? e.message.tag : ''}`));
    let version = 1;
    const load = async () => loaded({ v: version }, { tags: ['prices'] });
    expect((await cacheB.getOrLoad({ q: 'price' }, load)).value).toEqual({ v: 1 });
    await cacheB.flush();
    // B's L1 holds it now.
    const again = await cacheB.getOrLoad({ q: 'price' }, load);
    expect([again.status, again.layer]).toEqual(['hit', 'memory']);
    version = 2;
    const r = await cacheA.invalidateTag('prices');
    expect(r.durable).toBe(true);
    await until(() => heard.includes('remote tag prices'), 5_000);
    expect((await cacheB.getOrLoad({ q: 'price' }, load)).value).toEqual({ v: 2 });
    await Promise.all([cacheA.close(), cacheB.close()]);
  });

  it('processes that hear every message never reload for the saves of the others', async () => {
    const a = own.makeLayer();
    const b = own.makeLayer({ prefix: a.keys.prefix });
    const buses = [new RedisInvalidationBus({ layer: a, watermarkCheckMs: 50 }), new RedisInvalidationBus({ layer: b, watermarkCheckMs: 50 })];
    const loads = [0, 0];
    buses.forEach((bus, i) => {
      const store = bus.watermarks as RedisWatermarks;
      const load = store.load.bind(store);
      store.load = () => {
        loads[i]!++;
        return load();
      };
    });
    const [cacheA, cacheB] = buses.map((bus, i) => new MultiLayerCache({ layers: [new MemoryLayer(), i === 0 ? a : b], bus, policy: 'always' }));
    await Promise.all([cacheA!.ready(), cacheB!.ready()]);
    expect(loads).toEqual([1, 1]);
    for (let i = 0; i < 10; i++) await (i % 2 === 0 ? cacheA! : cacheB!).invalidateTag(`t${i}`);
    await Promise.all([cacheA!.invalidateTag('x'), cacheB!.invalidateTag('y'), cacheA!.invalidateKey({ q: 1 })]);
    // Purges without a pause for several times the wait for a save not heard of (checked every
    // 50 ms, most checks find a save whose message is still on its way), then quiet.
    const until = Date.now() + 2_500;
    for (let i = 0; Date.now() < until; i++) {
      await Promise.all([cacheA!.invalidateTag(`a${i}`), cacheB!.invalidateTag(`b${i}`)]);
      await sleep(2);
    }
    await sleep(1_500);
    expect(loads).toEqual([1, 1]);
    await Promise.all([cacheA!.close(), cacheB!.close()]);
  });

  it('reloads for a save not heard of after it was missing for a second — not while every save is heard of soon after it lands', async () => {
    const layer = own.makeLayer();
    const store = new RedisWatermarks(layer, { checkEveryMs: 50, clockMarginMs: 1, unsyncedErrorMs: 1_000, timeoutMs: 1_000 });
    let reloads = 0;
    const stop = store.onResync(() => reloads++);
    try {
      await store.save([tag('kept', Date.now())]);
      await store.load();
      reloads = 0;
      // Other processes save every 20 ms; each save's message arrives 30 ms after it: at every
      // check some save is still unheard of, but never the same one for long.
      const t0 = Date.now();
      const heard: Array<Promise<void>> = [];
      while (Date.now() - t0 < 1_600) {
        const n = await own.raw.incr(store.keys.seq);
        heard.push(sleep(30).then(() => store.heard(n)));
        await sleep(20);
      }
      await Promise.all(heard);
      await sleep(200);
      expect(reloads).toBe(0);
      // A save whose message never comes: a reload once it has been missing for the grace time.
      await own.raw.incr(store.keys.seq);
      const missing = Date.now();
      await until(() => reloads === 1, 5_000);
      expect(Date.now() - missing).toBeGreaterThanOrEqual(900);
    } finally {
      stop();
    }
  });

  it('prune folds old key and tag watermarks into their scope (clear watermarks stay), and bounds the count', async () => {
    const layer = own.makeLayer();
    const store = new RedisWatermarks(layer, { checkEveryMs: 1_000, clockMarginMs: 1, unsyncedErrorMs: 1_000, timeoutMs: 1_000 });
    const a = resolveScope({ tenant: 'a' });
    const b = resolveScope({ tenant: 'b' });
    const key = (i: number, s = a) => {
      const k = computeKey({ i }, s);
      return { message: { type: 'key' as const, keyId: k.id, scope: k.scope }, at: 1_000 + i };
    };
    await store.save([key(1), key(2), key(3, b), tag('old', 10), tag('new', 5_000), { message: { type: 'tag', tag: 'x', scope: a }, at: 20 }]);
    await store.prune(1_500, 100);
    const ids = (await store.load()).map((w) => [watermarkId(w.message), w.at]);
    expect(new Map(ids as Array<[string, number]>)).toEqual(
      new Map([
        ['clear|a/default|', 1_002],
        ['clear|b/default|', 1_003],
        ['clear|*|', 10],
        ['tag|*|new', 5_000],
      ]),
    );
    // By count: 30 keys in one scope with a bound of 10 → folded into that scope's watermark.
    await store.save(Array.from({ length: 30 }, (_, i) => key(100 + i, b)));
    await store.prune(0, 10);
    const left = await store.load();
    expect(left.length).toBeLessThanOrEqual(10);
    expect(left.find((w) => watermarkId(w.message) === 'clear|b/default|')!.at).toBeGreaterThanOrEqual(1_100);
    expect(left.find((w) => watermarkId(w.message) === 'clear|a/default|')?.at).toBe(1_002); // untouched
  });

  it("an unscoped clear() leaves the watermarks: the clear's own watermark must still be found", async () => {
    const layer = own.makeLayer();
    const bus = new RedisInvalidationBus({ layer });
    const cache = new MultiLayerCache({ layers: [layer], bus });
    await cache.ready();
    await layer.set(computeKey({ q: 1 }, resolveScope('t')), entry('v'));
    await cache.invalidateTag('t1');
    const r = await cache.clear();
    expect(r.durable).toBe(true);
    const keys = (bus.watermarks as RedisWatermarks).keys;
    expect(await own.raw.zscore(keys.marks, 'clear|*|')).not.toBeNull();
    await cache.close();
  });

  it("drops a message's watermark or counter that is not a valid number, and keeps the rest of the message", async () => {
    const layer = own.makeLayer();
    const bus = new RedisInvalidationBus({ layer, durable: false });
    const got: unknown[] = [];
    const unsubscribe = await bus.subscribe((e) => got.push(e));
    try {
      const message = { type: 'tag', tag: 'pricing' };
      const sent = [
        { origin: 'p', sentAt: 1, message, at: 5, seq: 7 },
        { origin: 'p', sentAt: 1, message, at: 'soon', seq: 7 },
        { origin: 'p', sentAt: 1, message, at: 5, seq: 0 },
        { origin: 'p', sentAt: 1, message, at: null, seq: 1.5 },
      ];
      for (const e of sent) await own.raw.publish(bus.channel, JSON.stringify(e));
      await until(() => got.length === sent.length);
      expect(got).toEqual([
        { origin: 'p', sentAt: 1, message, at: 5, seq: 7 },
        { origin: 'p', sentAt: 1, message, seq: 7 },
        { origin: 'p', sentAt: 1, message, at: 5 },
        { origin: 'p', sentAt: 1, message },
      ]);
    } finally {
      await unsubscribe();
    }
  });

  it('the bus validates its options', () => {
    const layer = own.makeLayer();
    expect(() => new RedisInvalidationBus({ layer, durable: 'yes' as unknown as boolean })).toThrow(/durable/);
    expect(() => new RedisInvalidationBus({ layer, watermarkCheckMs: 0 })).toThrow(/watermarkCheckMs/);
    expect(() => new RedisInvalidationBus({ layer, clockMarginMs: -1 })).toThrow(/clockMarginMs/);
    expect(new RedisInvalidationBus({ layer, durable: false }).watermarks).toBeUndefined();
  });
});
