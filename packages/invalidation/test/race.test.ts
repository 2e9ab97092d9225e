import { MultiLayerCache, loaded } from '@strata-cache/core';
import { MemoryLayer } from '@strata-cache/layer-memory';
import { describe, expect, it } from 'vitest';
import { createInvalidationEngine, onEvent, tagWhen } from '../src/index.js';
import { chat, deferred, makeCache } from './helpers.js';
import { DelayedBus, SlowSharedLayer, sleep } from './slow-layer.js';

describe('a write racing an invalidation cannot bring the purged answer back', () => {
  it('in-process: a slow loader that finishes after an event purge is not stored', async () => {
    const { cache, memory } = makeCache();
    const engine = createInvalidationEngine({
      cache,
      rules: [tagWhen({ prompt: /product/i }, ['topic:product']), onEvent('product_updated', ['product:{id}', 'topic:product'])],
    });
    const skipped: string[] = [];
    cache.on('skipWrite', (e) => skipped.push(e.reason));
    const release = deferred();
    const started = deferred();
    const slow = cache.getOrLoad(chat('price of product 1?'), async () => {
      started.resolve();
      await release.promise; // reads the old price... while the product is updated
      return loaded('old price', { tags: ['product:1'] });
    });
    await started.promise;
    const audit = await engine.emit('product_updated', { id: 1 });
    expect(audit.total).toBe(0); // nothing stored yet
    release.resolve();
    const r = await slow;
    expect(r.value).toBe('old price'); // the caller that asked before the update gets its answer
    expect(r.stored).toBe(false);
    expect(skipped).toEqual(['invalidated while loading']);
    expect(memory.size).toBe(0);
    expect((await cache.getOrLoad(chat('price of product 1?'), () => 'new price')).value).toBe('new price');
  });

  it('in-process: an L2 read in flight during an invalidation is not served or backfilled afterwards', async () => {
    const shared = new SlowSharedLayer();
    const memory = new MemoryLayer({ freeze: false });
    const cache = new MultiLayerCache({ layers: [memory, { layer: shared, budgetMs: 2_000 }], defaultTtlMs: null });
    const engine = createInvalidationEngine({ cache });
    await cache.getOrLoad(chat('q'), () => loaded('stale', { tags: ['t'] }));
    memory.clear(); // only L2 holds it now
    shared.getDelayMs = 150;
    const inflight = cache.lookup(chat('q')); // L2 has read the entry; the answer is on its way
    await sleep(20);
    const audit = await engine.purgeTag('t');
    expect(audit.layers).toEqual({ memory: 0, shared: 1 });
    shared.getDelayMs = 0;
    await inflight;
    await cache.flush();
    // after invalidate() resolved, no layer of this process serves the purged entry
    expect(memory.size).toBe(0);
    expect(await cache.lookup(chat('q'))).toBeUndefined();
  });

  it('in-process: an L2 read that returns while the purge is still running is refused too', async () => {
    const shared = new SlowSharedLayer();
    const memory = new MemoryLayer({ freeze: false });
    const cache = new MultiLayerCache({ layers: [memory, { layer: shared, budgetMs: 2_000 }], defaultTtlMs: null });
    const engine = createInvalidationEngine({ cache });
    await cache.getOrLoad(chat('q'), () => loaded('stale', { tags: ['t'] }));
    memory.clear();
    shared.getDelayMs = 80;
    shared.deleteDelayMs = 250; // L1 is purged at once, L2 takes a while
    const inflight = cache.lookup(chat('q'));
    await sleep(10);
    const purge = engine.purgeTag('t');
    const concurrent = await inflight; // returns mid-purge
    expect(concurrent).toBeUndefined();
    await purge;
    shared.getDelayMs = shared.deleteDelayMs = 0;
    await cache.flush();
    expect(memory.size).toBe(0);
    expect(await cache.lookup(chat('q'))).toBeUndefined();
  });

  it('without the engine core itself refuses the same in-flight read (race protection lives in core)', async () => {
    const shared = new SlowSharedLayer();
    const memory = new MemoryLayer({ freeze: false });
    const cache = new MultiLayerCache({ layers: [memory, { layer: shared, budgetMs: 2_000 }], defaultTtlMs: null });
    await cache.getOrLoad(chat('q'), () => loaded('stale', { tags: ['t'] }));
    memory.clear();
    shared.getDelayMs = 150;
    const inflight = cache.lookup(chat('q'));
    await sleep(20);
    await cache.invalidateTag('t');
    shared.getDelayMs = 0;
    expect(await inflight).toBeUndefined();
    await cache.flush();
    expect(memory.size).toBe(0);
    expect(await cache.lookup(chat('q'))).toBeUndefined();
  });

  it('cross-process: a write that lands in shared L2 before the bus message arrives is purged again everywhere', async () => {
    const shared = new SlowSharedLayer();
    const bus = new DelayedBus(120);
    const mk = () => {
      const l1 = new MemoryLayer({ freeze: false });
      const cache = new MultiLayerCache({ layers: [l1, { layer: shared, budgetMs: 2_000 }], defaultTtlMs: null, bus });
      const engine = createInvalidationEngine({ cache, rules: [onEvent('product_updated', ['product:{id}'])] });
      return { l1, cache, engine };
    };
    const a = mk();
    const b = mk();
    await Promise.all([a.cache.ready(), b.cache.ready()]);
    const repairs: string[] = [];
    a.engine.onInvalidate((e) => repairs.push(e.source));

    const release = deferred();
    const started = deferred();
    const slow = a.cache.getOrLoad(chat('product 9 stock?'), async () => {
      started.resolve();
      await release.promise;
      return loaded('12 in stock (old)', { tags: ['product:9'] });
    });
    await started.promise;
    await b.engine.emit('product_updated', { id: 9 }); // B purges shared L2; A hears of it 120 ms later
    release.resolve();
    expect((await slow).stored).toBe(true); // A had not heard yet: its stale answer reached L2
    await a.cache.flush();
    expect(shared.inner.size).toBe(1);

    await sleep(300); // the message reaches A; A purges its recent covered write from every layer
    await a.engine.settled();
    await sleep(200); // A's key purge reaches B
    expect(repairs).toEqual(['remote', 'race-repair']);
    expect(shared.inner.size).toBe(0);
    expect(a.l1.size).toBe(0);
    expect(await b.cache.lookup(chat('product 9 stock?'))).toBeUndefined();
    expect(await a.cache.lookup(chat('product 9 stock?'))).toBeUndefined();
    await Promise.all([a.engine.close(), b.engine.close(), a.cache.close(), b.cache.close()]);
  });

  it('cross-process: the emitter refuses a racing write it reads from L2 before the writer has heard (answers carry when their request began)', async () => {
    const shared = new SlowSharedLayer();
    const bus = new DelayedBus(150);
    const mk = () => {
      const cache = new MultiLayerCache({ layers: [new MemoryLayer({ freeze: false }), { layer: shared, budgetMs: 2_000 }], defaultTtlMs: null, bus });
      return { cache, engine: createInvalidationEngine({ cache, rules: [onEvent('product_updated', ['product:{id}'])] }) };
    };
    const a = mk();
    const b = mk();
    await Promise.all([a.cache.ready(), b.cache.ready()]);
    const release = deferred();
    const started = deferred();
    const slow = a.cache.getOrLoad(chat('product 9 stock?'), async () => {
      started.resolve();
      await release.promise;
      return loaded('12 in stock (old)', { tags: ['product:9'] });
    });
    await started.promise;
    await sleep(5);
    await b.engine.emit('product_updated', { id: 9 });
    await sleep(5); // A's answer is written in a later millisecond than the purge
    release.resolve();
    expect((await slow).stored).toBe(true); // A has not heard yet
    await a.cache.flush();
    expect(shared.inner.size).toBe(1); // the racing write is in L2 ...
    expect(await b.cache.lookup(chat('product 9 stock?'))).toBeUndefined(); // ... but the emitter does not serve it
    await sleep(250);
    await a.engine.settled();
    expect(shared.inner.size).toBe(0); // and once A hears, it is gone
    await Promise.all([a.cache.close(), b.cache.close()]);
  });

  it('cross-process with the repair disabled (raceWindowMs 0): the racing write stays in L2, but no process that knows the purge serves it (core watermarks)', async () => {
    // Before core stamped entries, this was the documented limit: the stale answer survived in L2
    // and was served. Now it only takes room until it expires or is read.
    const shared = new SlowSharedLayer();
    const bus = new DelayedBus(120);
    const mk = () => {
      const cache = new MultiLayerCache({ layers: [new MemoryLayer({ freeze: false }), { layer: shared, budgetMs: 2_000 }], defaultTtlMs: null, bus });
      return { cache, engine: createInvalidationEngine({ cache, raceWindowMs: 0, rules: [onEvent('product_updated', ['product:{id}'])] }) };
    };
    const a = mk();
    const b = mk();
    await Promise.all([a.cache.ready(), b.cache.ready()]);
    const release = deferred();
    const started = deferred();
    const slow = a.cache.getOrLoad(chat('product 9 stock?'), async () => {
      started.resolve();
      await release.promise;
      return loaded('12 in stock (old)', { tags: ['product:9'] });
    });
    await started.promise;
    await b.engine.emit('product_updated', { id: 9 });
    release.resolve();
    expect((await slow).stored).toBe(true); // A had not heard yet: its write reached L2
    await a.cache.flush();
    expect(shared.inner.size).toBe(1);
    expect(await b.cache.lookup(chat('product 9 stock?'))).toBeUndefined(); // the emitter refuses it at once
    await sleep(300);
    expect(await a.cache.lookup(chat('product 9 stock?'))).toBeUndefined(); // and A, once it has heard
    expect(await b.cache.lookup(chat('product 9 stock?'))).toBeUndefined();
    await a.cache.flush();
    expect(shared.inner.size).toBe(0); // a read that refuses it removes it
    await Promise.all([a.cache.close(), b.cache.close()]);
  });

  it('a load that starts after the remote message is not touched by the repair', async () => {
    const shared = new SlowSharedLayer();
    const bus = new DelayedBus(10);
    const mk = () => {
      const cache = new MultiLayerCache({ layers: [new MemoryLayer({ freeze: false }), { layer: shared, budgetMs: 2_000 }], defaultTtlMs: null, bus });
      return { cache, engine: createInvalidationEngine({ cache, rules: [onEvent('product_updated', ['product:{id}'])] }) };
    };
    const a = mk();
    const b = mk();
    await Promise.all([a.cache.ready(), b.cache.ready()]);
    await b.engine.emit('product_updated', { id: 9 });
    await sleep(100);
    await a.cache.getOrLoad(chat('product 9 stock?'), () => loaded('3 in stock (new)', { tags: ['product:9'] }));
    await a.cache.flush();
    await a.engine.settled();
    expect((await b.cache.lookup(chat('product 9 stock?')))?.entry.value).toBe('3 in stock (new)');
    await Promise.all([a.cache.close(), b.cache.close()]);
  });
});
