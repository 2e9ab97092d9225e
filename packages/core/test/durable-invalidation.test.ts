import { describe, expect, it } from 'vitest';
import { watermarkFromId, watermarkId, watermarkScore } from '../src/layer-kit.js';
import {
  type CacheEntry,
  type FleetClock,
  type InvalidationBus,
  type InvalidationEnvelope,
  type InvalidationWatermark,
  LocalInvalidationBus,
  MultiLayerCache,
  type WatermarkStore,
  loaded,
} from '../src/index.js';
import { TestLayer } from './helpers.js';

const req = (content: string) => ({ model: 'gpt-4o-mini', temperature: 0, messages: [{ role: 'user', content }] });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Shared storage of watermarks, in memory, that can fail, and lose what it holds (a restore). */
class MemoryStore implements WatermarkStore {
  readonly marks = new Map<string, number>();
  failing = false;
  saves = 0;
  private readonly listeners = new Set<() => void>();
  /** Resolves no counter (a store that keeps none). */
  async save(marks: readonly InvalidationWatermark[]): Promise<number | undefined> {
    if (this.failing) throw new Error('store unreachable');
    this.saves++;
    for (const w of marks) {
      const id = watermarkId(w.message);
      const s = watermarkScore(w);
      if (!((this.marks.get(id) ?? -Infinity) >= s)) this.marks.set(id, s);
    }
    return undefined;
  }
  async load(): Promise<InvalidationWatermark[]> {
    if (this.failing) throw new Error('store unreachable');
    return [...this.marks].map(([id, s]) => watermarkFromId(id, s)!).filter(Boolean);
  }
  onResync(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  async prune(): Promise<void> {}
  /** The store came back (empty, or from an older snapshot): tells every process. */
  back(): void {
    for (const l of [...this.listeners]) l();
  }
}

/** A store that counts its saves (as the Redis one does) and can be slow to answer; `log` records saves and messages in order. */
class CountingStore extends MemoryStore {
  seq = 0;
  delayMs = 0;
  readonly log: string[] = [];
  override async save(marks: readonly InvalidationWatermark[]): Promise<number> {
    if (this.delayMs > 0) await sleep(this.delayMs);
    await super.save(marks);
    this.seq++;
    this.log.push(`save ${this.seq}`);
    return this.seq;
  }
}

/** A cache on a bus with a CountingStore; every message on the bus is kept (`sent`) and logged in the store's order. */
async function countedCache() {
  const store = new CountingStore();
  const shared = new LocalInvalidationBus();
  const a = new MultiLayerCache({ layers: [new TestLayer('l1', { remote: false })], bus: busWith(store, undefined, shared) });
  await a.ready();
  const sent: InvalidationEnvelope[] = [];
  await shared.subscribe((e) => {
    sent.push(e);
    store.log.push(`message ${e.seq ?? '-'}`);
  });
  return { store, a, sent };
}

/** A bus between caches of this test, with a store and a clock of its own. */
function busWith(store: WatermarkStore | undefined, clock?: FleetClock, shared = new LocalInvalidationBus()): InvalidationBus & { down: boolean } {
  const bus = {
    down: false,
    clock,
    watermarks: store,
    publish: async (e: InvalidationEnvelope) => {
      if (bus.down) throw new Error('bus unreachable');
      await shared.publish(e);
    },
    subscribe: (h: (e: InvalidationEnvelope) => void) => shared.subscribe(h),
  };
  return bus;
}

async function until(check: () => boolean, ms = 5_000): Promise<void> {
  const t0 = Date.now();
  while (!check()) {
    if (Date.now() - t0 > ms) throw new Error('condition not met in time');
    await sleep(10);
  }
}

describe('a purge that cannot reach a layer is never silently done', () => {
  it('reports the layer as unreached (not 0), keeps the purged answer from being served, and retries until the layer is purged', async () => {
    const l1 = new TestLayer('l1', { remote: false });
    const l2 = new TestLayer('l2', { shared: true });
    const cache = new MultiLayerCache({ layers: [l1, { layer: l2, budgetMs: 50 }] });
    cache.on('error', () => undefined);
    await cache.getOrLoad(req('price?'), async () => loaded('$10 (old)', { tags: ['pricing'] }));
    await cache.flush();
    l2.mode = 'reject'; // Redis is down
    const r = await cache.invalidateTag('pricing');
    expect(r.unreached).toEqual(['l2']);
    expect(r.layers).toEqual({ l1: 1 });
    expect(r.pending).toBe(true);
    expect(l2.map.size).toBe(1); // still there
    l2.mode = 'ok'; // Redis is back, the delete has not been retried yet
    for (const delay of [0, 30]) {
      await sleep(delay);
      const hit = await cache.lookup(req('price?'));
      expect(hit).toBeUndefined();
    }
    await until(() => cache.invalidationStatus().pending.layerPurges === 0);
    expect(l2.map.size).toBe(0);
    expect((await cache.getOrLoad(req('price?'), async () => '$12')).value).toBe('$12');
    expect((await cache.lookup(req('price?')))?.entry.value).toBe('$12');
  });

  it('an entry a restored snapshot brings back into a shared layer is refused (and removed when read)', async () => {
    const l1 = new TestLayer('l1', { remote: false });
    const l2 = new TestLayer('l2', { shared: true });
    const cache = new MultiLayerCache({ layers: [l1, l2] });
    await cache.getOrLoad(req('price?'), async () => loaded('$10 (old)', { tags: ['pricing'] }));
    await cache.flush();
    const snapshot = new Map(l2.map);
    await cache.invalidateKey(req('price?'));
    for (const [k, v] of snapshot) l2.map.set(k, v); // the restore
    expect(await cache.lookup(req('price?'))).toBeUndefined();
    await cache.flush();
    expect(l2.map.size).toBe(0);
  });

  it('a load that began before a purge from another process is not served by either, even once written to the shared layer', async () => {
    const shared = new LocalInvalidationBus();
    const l2 = new TestLayer('l2', { shared: true });
    // Delivery slower than the load: B writes before it hears of A's purge.
    const slowBus = (): InvalidationBus => ({
      publish: async (e) => void setTimeout(() => void shared.publish(e), 60),
      subscribe: (h) => shared.subscribe(h),
    });
    const a = new MultiLayerCache({ layers: [new TestLayer('l1', { remote: false }), l2], bus: slowBus() });
    const b = new MultiLayerCache({ layers: [new TestLayer('l1', { remote: false }), l2], bus: slowBus() });
    await Promise.all([a.ready(), b.ready()]);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow = b.getOrLoad(req('stock?'), async () => {
      await gate;
      return loaded('12 in stock (old)', { tags: ['stock'] });
    });
    await sleep(5);
    await a.invalidateTag('stock');
    release();
    expect((await slow).stored).toBe(true); // B had not heard yet
    await b.flush();
    expect(l2.map.size).toBe(1);
    expect(await a.lookup(req('stock?'))).toBeUndefined();
    await sleep(120);
    expect(await b.lookup(req('stock?'))).toBeUndefined();
  });
});

describe('durable watermarks (a bus with a store)', () => {
  it('a purge while the store and the bus are down is pending, stored once they are back, and reaches a process started afterwards', async () => {
    const store = new MemoryStore();
    const l2 = new TestLayer('l2', { shared: true });
    const busA = busWith(store);
    const a = new MultiLayerCache({ layers: [new TestLayer('l1', { remote: false }), { layer: l2, budgetMs: 50 }], bus: busA });
    a.on('error', () => undefined);
    await a.ready();
    await a.getOrLoad(req('price?'), async () => loaded('$10 (old)', { tags: ['pricing'] }));
    await a.flush();
    store.failing = true;
    busA.down = true;
    l2.mode = 'reject';
    const r = await a.invalidateTag('pricing');
    expect(r).toMatchObject({ unreached: ['l2'], durable: false, pending: true });
    expect(a.invalidationStatus().pending).toEqual({ watermarks: 1, messages: 1, layerPurges: 1 });
    // Redis restarts from a snapshot that still holds the answer; the delete has not been retried.
    store.failing = false;
    busA.down = false;
    l2.mode = 'ok';
    expect(await a.lookup(req('price?'))).toBeUndefined();
    await until(() => a.invalidationStatus().pending.watermarks === 0 && a.invalidationStatus().pending.messages === 0);
    expect([...store.marks.keys()]).toEqual(['tag|*|pricing']);
    // A process started now loads the watermark before it reads the shared layer.
    l2.map.clear();
    await a.getOrLoad(req('hours?'), async () => loaded('9-5', { tags: ['pricing'] })); // written after the purge
    await a.flush();
    const stale: CacheEntry = { value: '$10 (old)', createdAt: r.at - 1_000, stamp: r.at - 1_000, tags: ['pricing'] };
    l2.map.set(a.keyFor(req('price?')).id, { key: a.keyFor(req('price?')), entry: stale });
    const b = new MultiLayerCache({ layers: [new TestLayer('l1', { remote: false }), l2], bus: busWith(store) });
    await b.ready();
    expect(b.invalidationStatus()).toMatchObject({ loaded: true, watermarks: 1 });
    expect(await b.lookup(req('price?'))).toBeUndefined();
    expect((await b.lookup(req('hours?')))?.entry.value).toBe('9-5');
  });

  it('a process whose store is unreachable at start-up does not read shared layers until it has loaded the watermarks', async () => {
    const store = new MemoryStore();
    const l2 = new TestLayer('l2', { shared: true });
    const a = new MultiLayerCache({ layers: [l2], bus: busWith(store) });
    await a.ready();
    await a.getOrLoad(req('q'), async () => loaded('old', { tags: ['t'] }));
    const snapshot = new Map(l2.map);
    await a.invalidateTag('t');
    for (const [k, v] of snapshot) l2.map.set(k, v);
    store.failing = true;
    const b = new MultiLayerCache({ layers: [l2], bus: busWith(store) });
    b.on('error', () => undefined);
    await b.ready();
    expect(b.invalidationStatus().loaded).toBe(false);
    const gets = l2.gets;
    expect(await b.lookup(req('q'))).toBeUndefined();
    expect(l2.gets).toBe(gets); // not read
    store.failing = false;
    await until(() => b.invalidationStatus().loaded);
    expect(await b.lookup(req('q'))).toBeUndefined(); // read now, and refused
    expect(l2.gets).toBe(gets + 1);
  });

  it('watermarks a store lost (restarted empty, restored, failed over) are written back by the processes that hold them', async () => {
    const store = new MemoryStore();
    const a = new MultiLayerCache({ layers: [new TestLayer('l1', { remote: false })], bus: busWith(store) });
    const b = new MultiLayerCache({ layers: [new TestLayer('l1', { remote: false })], bus: busWith(store) });
    await Promise.all([a.ready(), b.ready()]);
    await a.invalidateTag('t1');
    await b.invalidateKey(req('k'));
    await until(() => store.marks.size === 2);
    store.marks.clear();
    store.back();
    await until(() => store.marks.size === 2);
    expect([...store.marks.keys()].sort()).toEqual([watermarkId({ type: 'key', keyId: a.keyFor(req('k')).id, scope: a.resolveScope() }), 'tag|*|t1'].sort());
  });

  it("the message goes out once its watermark is stored, with the store's counter (a process re-subscribing meanwhile finds it in the store)", async () => {
    const { store, a, sent } = await countedCache();
    await a.invalidateTag('pricing');
    await a.invalidateTag('hours');
    expect(store.log).toEqual(['save 1', 'message 1', 'save 2', 'message 2']);
    expect(sent.map((e) => [e.message, e.seq])).toEqual([
      [{ type: 'tag', tag: 'pricing' }, 1],
      [{ type: 'tag', tag: 'hours' }, 2],
    ]);
  });

  it('a store slower than the wait does not hold the message back: it goes at once, and again with the counter once the save landed', async () => {
    const { store, a, sent } = await countedCache();
    store.delayMs = 300;
    const r = a.invalidateTag('pricing');
    await until(() => sent.length === 1);
    expect(store.log).toEqual(['message -']); // not held back until the save
    expect(sent[0]?.seq).toBeUndefined();
    expect(await r).toMatchObject({ durable: true });
    await until(() => sent.length === 2);
    expect(store.log).toEqual(['message -', 'save 1', 'message 1']);
    expect(sent[1]).toMatchObject({ message: { type: 'tag', tag: 'pricing' }, seq: 1 });
    // A save that failed: sent without the counter now, again with it once the retry stored it.
    store.delayMs = 0;
    store.failing = true;
    a.on('error', () => undefined);
    const failed = await a.invalidateTag('hours');
    expect(failed).toMatchObject({ durable: false, pending: true });
    expect(sent[2]).toMatchObject({ message: { type: 'tag', tag: 'hours' } });
    expect(sent[2]?.seq).toBeUndefined();
    store.failing = false;
    await until(() => sent.length === 4 && a.invalidationStatus().pending.messages === 0);
    expect(sent[3]).toMatchObject({ message: { type: 'tag', tag: 'hours' }, seq: 2 });
  });

  it('scope versions are stored too: a process started later uses the bumped version', async () => {
    const store = new MemoryStore();
    const a = new MultiLayerCache({ layers: [new TestLayer('l1', { remote: false })], bus: busWith(store) });
    await a.ready();
    await a.bumpScopeVersion('acme');
    await a.bumpScopeVersion('acme');
    const b = new MultiLayerCache({ layers: [new TestLayer('l1', { remote: false })], bus: busWith(store) });
    await b.ready();
    expect(b.resolveScope('acme').version).toBe(2);
  });
});

describe('stamps and clocks', () => {
  it('entries carry when their load began; backfills keep it', async () => {
    const l1 = new TestLayer('l1', { remote: false });
    const l2 = new TestLayer('l2', { shared: true });
    const cache = new MultiLayerCache({ layers: [l1, l2] });
    const before = performance.timeOrigin + performance.now();
    await cache.getOrLoad(req('q'), async () => {
      await sleep(30);
      return 'a';
    });
    await cache.flush();
    const stored = l2.map.get(cache.keyFor(req('q')).id)!.entry;
    expect(stored.stamp).toBeGreaterThanOrEqual(before);
    expect(stored.stamp!).toBeLessThan(stored.createdAt - 20); // the load's start, not the write
    l1.map.clear();
    await cache.lookup(req('q'));
    await cache.flush();
    expect(l1.map.get(cache.keyFor(req('q')).id)!.entry.stamp).toBe(stored.stamp);
  });

  it('stamps and watermarks use the bus clock, widened by its error: a process whose own clock runs ahead cannot outlive a purge', async () => {
    const real = () => performance.timeOrigin + performance.now();
    // B's clock runs 40 ms ahead of A's; each says its error is at most 50 ms.
    const clockA: FleetClock = { now: real, errorMs: () => 50 };
    const clockB: FleetClock = { now: () => real() + 40, errorMs: () => 50 };
    const shared = new LocalInvalidationBus();
    const l2 = new TestLayer('l2', { shared: true });
    const a = new MultiLayerCache({ layers: [l2], bus: busWith(undefined, clockA, shared) });
    const b = new MultiLayerCache({ layers: [l2], bus: busWith(undefined, clockB, shared) });
    await Promise.all([a.ready(), b.ready()]);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow = b.getOrLoad(req('q'), async () => {
      await gate;
      return loaded('old', { tags: ['t'] });
    });
    await sleep(10); // B's load began 10 ms before A's purge (B's clock says 30 ms after)
    const r = await a.invalidateTag('t');
    release();
    await slow;
    await b.flush();
    const entry = l2.map.get(a.keyFor(req('q')).id)?.entry;
    if (entry) expect(entry.stamp!).toBeLessThanOrEqual(r.at);
    expect(await a.lookup(req('q'))).toBeUndefined();
    expect(await b.lookup(req('q'))).toBeUndefined();
  });

  it('store(…, { sinceEpoch }) stamps the answer when its epoch began', async () => {
    const l1 = new TestLayer('l1', { remote: false });
    const cache = new MultiLayerCache({ layers: [l1] });
    const r = await cache.invalidateTag('other');
    const epoch = cache.currentEpoch;
    await sleep(20);
    expect(await cache.store(req('q'), 'a', { sinceEpoch: epoch })).toBe(true);
    const e = l1.map.get(cache.keyFor(req('q')).id)!.entry;
    expect(e.stamp!).toBeGreaterThan(r.at);
    expect(e.stamp!).toBeLessThan(r.at + 10);
  });
});

describe('bounded memory', () => {
  it('beyond maxWatermarks the oldest fold into a watermark of their tenant+namespace: still refused, other scopes untouched', async () => {
    const l1 = new TestLayer('l1', { remote: false });
    const cache = new MultiLayerCache({ layers: [l1], maxWatermarks: 50 });
    await cache.getOrLoad(req('kept elsewhere'), async () => 'other tenant', { scope: 'globex' });
    await cache.getOrLoad(req('old answer'), async () => 'old', { scope: 'acme' });
    await cache.flush();
    const snapshot = new Map(l1.map);
    for (let i = 0; i < 60; i++) await cache.invalidateKey(req(`purged ${i}`), { scope: 'acme' });
    await cache.invalidateKey(req('old answer'), { scope: 'acme' });
    expect(cache.invalidationStatus().watermarks).toBeLessThanOrEqual(50);
    for (const [k, v] of snapshot) l1.map.set(k, v);
    expect(await cache.lookup(req('old answer'), { scope: 'acme' })).toBeUndefined();
    expect((await cache.lookup(req('kept elsewhere'), { scope: 'globex' }))?.entry.value).toBe('other tenant');
    expect((await cache.getOrLoad(req('new'), async () => 'fresh', { scope: 'acme' })).value).toBe('fresh');
    expect((await cache.lookup(req('new'), { scope: 'acme' }))?.entry.value).toBe('fresh');
  });

  it('watermark ids round-trip, and unreadable ones are ignored', () => {
    const key = { type: 'key' as const, keyId: 'v2:acme%7C/default/v3:abcDEF_-', scope: { tenant: 'acme|', namespace: 'default', version: 3 } };
    for (const m of [
      key,
      { type: 'tag' as const, tag: 'a|b c' },
      { type: 'tag' as const, tag: 't', scope: { tenant: 'x', namespace: 'y' } },
      { type: 'clear' as const },
      { type: 'clear' as const, scope: { tenant: 'x', namespace: 'y' } },
    ]) {
      expect(watermarkFromId(watermarkId(m), 5)).toEqual({ message: m, at: 5 });
    }
    expect(watermarkFromId(watermarkId({ type: 'scope-version', scope: { tenant: 'x', namespace: 'y', version: 4 } }), 4)?.message).toEqual({
      type: 'scope-version',
      scope: { tenant: 'x', namespace: 'y', version: 4 },
    });
    for (const bad of ['', 'nope', 'key|x/y|not-a-key', 'tag|*|', 'what|*|x', 'clear|%E0%A4%A/y|']) expect(watermarkFromId(bad, 1)).toBeUndefined();
  });
});
