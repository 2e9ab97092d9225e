import { MultiLayerCache, StrataError, computeKey, resolveScope } from '@strata-cache/core';
import { uniqueKeyPrefix } from '@strata-cache/test-utils';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { RedisInvalidationBus, RedisLayer } from '../src/index.js';
import { entry, ownRedis, sleep } from './own-redis.js';

// Own redis-server: these checks count commands (INFO commandstats) and connections (CLIENT LIST).
const own = ownRedis('contract');
const { makeLayer, calls } = own;

type Step = readonly [command: string, when: 'before' | 'after', tag: string];

/**
 * A layer on its own client whose commands let another process write a tagged entry of `scope`
 * before or after each call of the given commands (`steps`); `late` lists those entries, `restore`
 * puts the client's commands back.
 */
function racedLayer(prefix: string, scope: ReturnType<typeof resolveScope>, steps: readonly Step[]) {
  const other = makeLayer({ prefix });
  const client = new Redis(own.server.url);
  const clearing = new RedisLayer({ client, prefix, timeoutMs: 1_000 });
  own.layers.push(clearing);
  const late: Array<{ key: ReturnType<typeof computeKey>; tag: string }> = [];
  const land = async (step: string, tag: string) => {
    const key = computeKey({ late: late.length, step }, scope);
    late.push({ key, tag });
    await other.set(key, entry('late', { tags: [tag] }));
  };
  const c = client as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  for (const [command, when, tag] of steps) {
    const original = c[command]!.bind(client);
    c[command] = async (...args: unknown[]) => {
      if (when === 'before') await land(command, tag);
      const result = await original(...args);
      if (when === 'after') await land(command, tag);
      return result;
    };
  }
  const restore = () => {
    for (const [command] of steps) delete c[command];
  };
  return { other, clearing, late, restore, disconnect: () => client.disconnect() };
}

describe('RedisLayer: shared contract rules', () => {
  it('clear() resolves the number of entries removed, with and without a scope (rule 3)', async () => {
    const layer = makeLayer();
    const a = resolveScope({ tenant: 'count-a' });
    const b = resolveScope({ tenant: 'count-b' });
    await Promise.all([0, 1, 2].map((i) => layer.set(computeKey({ i }, a), entry(i, { tags: ['t'] }))));
    await Promise.all([0, 1].map((i) => layer.set(computeKey({ i }, b), entry(i))));
    expect(await layer.clear(a)).toBe(3);
    expect(await layer.clear(a)).toBe(0);
    // Unscoped: entries only (index keys are removed too, but are not entries).
    expect(await layer.clear()).toBe(2);
  });

  it("clear(scope) leaves no entry out of reach: another process's writes landing at every step of the clear are removed or stay fully indexed", async () => {
    const scope = resolveScope({ tenant: 'clear-race' });
    // Another process writes a tagged entry right after the clear reads the scope's tag list (a
    // tag the list does not hold yet), before each UNLINK, after each purge script (EVALSHA, or
    // EVAL when the script is not loaded yet) and after the tag list is trimmed: at every step.
    const { other, clearing, late, disconnect } = racedLayer(uniqueKeyPrefix('clear-race'), scope, [
      ['zrange', 'after', 'new-tag'],
      ['unlink', 'before', 't'],
      ['evalsha', 'after', 't'],
      ['eval', 'after', 't'],
      ['zrem', 'after', 't'],
    ]);
    try {
      await Promise.all([0, 1, 2].map((i) => other.set(computeKey({ i }, scope), entry(i, { tags: ['t'] }))));
      await clearing.clear(scope);
      expect(late.map((l) => l.tag).sort()).toEqual(['new-tag', 't', 't', 't']);
      // Whatever of the late entries is still there, a purge by its tag reaches it, and so does a clear.
      const kept = late.filter((_, i) => i % 2 === 0);
      await other.deleteByTag('t', scope);
      await other.deleteByTag('new-tag', scope);
      expect(await other.getMany(late.map((l) => l.key))).toEqual(late.map(() => undefined));
      for (const l of kept) await other.set(l.key, entry('again', { tags: [l.tag] }));
      expect(await other.clear(scope)).toBe(kept.length);
    } finally {
      disconnect();
    }
  });

  it("clear() leaves no entry out of reach: another process's writes landing at every step of the clear are removed or stay fully indexed", async () => {
    const scope = resolveScope({ tenant: 'clear-all-race' });
    // Another process writes a tagged entry after each SCAN page and before each UNLINK: at every
    // step of both passes of the clear.
    const { other, clearing, late, restore, disconnect } = racedLayer(uniqueKeyPrefix('clear-all-race'), scope, [
      ['scan', 'after', 't'],
      ['unlink', 'before', 't'],
    ]);
    try {
      await Promise.all([0, 1, 2].map((i) => other.set(computeKey({ i }, scope), entry(i, { tags: ['t'] }))));
      await clearing.clear();
      expect(late.length).toBeGreaterThan(4);
      restore(); // the checks below land no more writes
      const keys = late.map((l) => l.key);
      // Whatever of the late entries is still there, a purge by its tag reaches it (scoped and
      // unscoped), and so does a clear of its scope.
      const left = (await other.getMany(keys)).filter((e) => e !== undefined).length;
      expect(await other.deleteByTag('t')).toBe(left);
      expect(await other.getMany(keys)).toEqual(keys.map(() => undefined));
      for (const k of keys) await other.set(k, entry('again', { tags: ['t'] }));
      expect(await other.deleteByTag('t', scope)).toBe(keys.length);
      for (const k of keys) await other.set(k, entry('again', { tags: ['t'] }));
      expect(await other.clear(scope)).toBe(keys.length);
    } finally {
      disconnect();
    }
  });

  it('re-tag: after an entry is re-written with other tags, only its current tags remove it (rule 4)', async () => {
    const layer = makeLayer();
    const scope = resolveScope({ tenant: 'retag' });
    const k = computeKey({ q: 'retagged' }, scope);
    await layer.set(k, entry('first', { tags: ['a'] }));
    await layer.set(k, entry('second', { tags: ['b'] }));
    expect(await layer.deleteByTag('a')).toBe(0);
    expect(await layer.deleteByTag('a', scope)).toBe(0);
    expect((await layer.get(k))?.value).toBe('second');
    // The stale membership is gone from the old tag's index.
    expect(await own.raw.zcard(layer.keys.tagIndex(layer.keys.shardOf(k), 'a'))).toBe(0);
    expect(await layer.deleteByTag('b')).toBe(1);
    expect(await layer.get(k)).toBeUndefined();
  });

  it('closed: every operation rejects STRATA_CLOSED after close(); a second close() is a no-op (rule 5)', async () => {
    const layer = makeLayer();
    const k = computeKey({ q: 'closed' }, resolveScope('t'));
    await layer.set(k, entry('v'));
    await layer.close();
    await layer.close();
    const ops: Array<() => unknown> = [
      () => layer.get(k),
      () => layer.set(k, entry('w')),
      () => layer.delete(k),
      () => layer.getMany([k]),
      () => layer.setMany([{ key: k, entry: entry('w') }]),
      () => layer.deleteMany([k]),
      () => layer.clear(),
      () => layer.deleteByTag('x'),
      () => layer.deleteOlderVersions(resolveScope('t')),
      () => layer.scan(),
      () => layer.connect(),
      () => layer.coordinator.begin(k),
      () => layer.subscribe('c', () => undefined),
    ];
    for (const op of ops) {
      const error = await Promise.resolve()
        .then(op)
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(StrataError.isInstance(error) && error.code).toBe('STRATA_CLOSED');
    }
    // Nothing was written after close.
    expect((await makeLayer({ prefix: layer.keys.prefix }).get(k))?.value).toBe('v');
  });

  it('no entry is handed out by reference (rule 6)', async () => {
    const layer = makeLayer();
    const k = computeKey({ q: 'by reference' }, resolveScope('t'));
    const stored = entry({ n: 1, list: [1] }, { tags: ['x'] });
    const write = layer.set(k, stored);
    (stored.value as { n: number }).n = 2; // mutated while the write is in flight
    stored.tags.push('y');
    await write;
    const got = await layer.get(k);
    expect(got).toMatchObject({ value: { n: 1, list: [1] }, tags: ['x'] });
    (got!.value as { list: number[] }).list.push(2);
    expect((await layer.get(k))?.value).toEqual({ n: 1, list: [1] });
    // Two callers of one tick share one read but not one object.
    const [x, y] = await Promise.all([layer.get(k), layer.get(k)]);
    expect(x).not.toBe(y);
    expect(x).toEqual(y);
  });

  it('getMany: results in key order, undefined for missing keys and for values that cannot be decoded (rule 8)', async () => {
    const layer = makeLayer();
    const keys = Array.from({ length: 6 }, (_, i) => computeKey({ order: i }, resolveScope('t')));
    await Promise.all(keys.map((k, i) => (i === 1 || i === 4 ? undefined : layer.set(k, entry(i)))));
    await own.raw.set(layer.keys.entry(keys[3]!), Buffer.from('not an envelope'), 'PX', 60_000);
    expect((await layer.getMany([...keys].reverse())).map((e) => e?.value)).toEqual([5, undefined, undefined, 2, undefined, 0]);
    expect((await layer.getMany([keys[0]!, keys[0]!, keys[2]!])).map((e) => e?.value)).toEqual([0, 0, 2]);
  });
});

describe('RedisLayer: LayerContext.signal', () => {
  it('a read whose signal is already aborted, or aborts before its batch is sent, sends nothing', async () => {
    const layer = makeLayer();
    await layer.connect();
    const keys = Array.from({ length: 4 }, (_, i) => computeKey({ q: 'signal', i }, resolveScope('t')));
    const before = await calls('get', 'mget');
    const aborted = AbortSignal.abort();
    await expect(layer.get(keys[0]!, { signal: aborted })).rejects.toThrow(/abandoned/);
    // keys[1] goes out at once (first read of the tick); keys[2..3] wait for the tick's end.
    const late = new AbortController();
    const reads = [layer.get(keys[1]!), layer.get(keys[2]!, { signal: late.signal }), layer.get(keys[3]!, { signal: late.signal })];
    late.abort();
    const settled = await Promise.allSettled(reads);
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'rejected']);
    const after = await calls('get', 'mget');
    expect([after.get! - before.get!, after.mget! - before.mget!]).toEqual([1, 0]);
  });

  it('a write whose signal aborts while it is still encoding is not sent', async () => {
    const layer = makeLayer({ compressThreshold: 10 });
    await layer.connect();
    const k = computeKey({ q: 'aborted write' }, resolveScope('t'));
    const c = new AbortController();
    const write = layer.set(k, entry({ text: 'z'.repeat(200_000) }), { signal: c.signal });
    c.abort(); // compression runs on the thread pool: the MULTI has not been sent yet
    await expect(write).rejects.toThrow(/abandoned/);
    expect(await own.raw.exists(layer.keys.entry(k))).toBe(0);
  });
});

describe('RedisLayer: bursts and connections', () => {
  it('identical keys read in one tick share one read', async () => {
    const layer = makeLayer();
    await layer.connect();
    const k = computeKey({ q: 'hot key' }, resolveScope('t'));
    const other = computeKey({ q: 'other key' }, resolveScope('t'));
    await layer.set(k, entry('hot'));
    const before = await calls('get', 'mget');
    const got = await Promise.all([...Array.from({ length: 250 }, () => layer.get(k)), layer.get(other), layer.get(k)]);
    const after = await calls('get', 'mget');
    expect(got.filter((e) => e?.value === 'hot')).toHaveLength(251);
    // The first read went out as a GET; the other key, alone in its batch, as a second GET.
    expect([after.get! - before.get!, after.mget! - before.mget!]).toEqual([2, 0]);
  });

  it('time the event loop spends busy is not counted against Redis (no timeout, breaker closed)', async () => {
    const layer = makeLayer({ timeoutMs: 50 });
    await layer.connect();
    const keys = Array.from({ length: 50 }, (_, i) => computeKey({ busy: i }, resolveScope('t')));
    await Promise.all(keys.map((k, i) => layer.set(k, entry(i))));
    for (let round = 0; round < 3; round++) {
      const reads = keys.map((k) => layer.get(k));
      // The loop is blocked for twice the limit right after the reads were asked for, and
      // again before their replies are read.
      const until = Date.now() + 100;
      while (Date.now() < until);
      setImmediate(() => {
        const again = Date.now() + 100;
        while (Date.now() < again);
      });
      expect((await Promise.all(reads)).map((e) => e?.value)).toEqual(keys.map((_, i) => i));
    }
    expect(layer.stats()).toMatchObject({ state: 'closed', opens: 0, timeouts: 0 });
  });

  it('no listener-leak warning when many requests wait for the first connection', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
    process.on('warning', onWarning);
    try {
      const layer = makeLayer();
      const keys = Array.from({ length: 40 }, (_, i) => computeKey({ first: i }, resolveScope('t')));
      expect((await Promise.all(keys.map((k) => layer.get(k)))).every((e) => e === undefined)).toBe(true);
      await sleep(50);
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.filter((w) => /MaxListeners/.test(w))).toEqual([]);
  });

  it('one subscriber connection per layer, shared by the invalidation bus and the lock wait-ups', async () => {
    const prefix = uniqueKeyPrefix('one-sub');
    const a = makeLayer({ prefix });
    const b = makeLayer({ prefix, lock: { pollMinMs: 5_000, pollMaxMs: 5_000 } });
    const cache = (layer: RedisLayer) =>
      new MultiLayerCache({ layers: [layer], bus: new RedisInvalidationBus({ layer }), coordinator: layer.coordinator, policy: 'always' });
    const ca = cache(a);
    const cb = cache(b);
    await Promise.all([ca.ready(), cb.ready(), a.connect(), b.connect()]);
    const load = async () => {
      await sleep(200);
      return 'once';
    };
    const first = ca.getOrLoad({ q: 'shared sub' }, load);
    await sleep(50);
    const t0 = performance.now();
    // b waits on a's lock: woken by the release message on its (only) subscriber connection.
    expect(await cb.getOrLoad({ q: 'shared sub' }, load)).toMatchObject({ status: 'hit', coalesced: true });
    expect(performance.now() - t0).toBeLessThan(3_000);
    await first;
    const list = String(await own.raw.client('LIST'));
    const subscribers = list.split('\n').filter((l) => /cmd=(subscribe|ssubscribe|psubscribe|unsubscribe)/.test(l) || / sub=[1-9]/.test(l));
    // One per layer (two layers), not one for the bus and another for the lock.
    expect(subscribers).toHaveLength(2);
    await ca.close();
    await cb.close();
  });
});

describe('RedisLayer: writes', () => {
  it('writes ready in one tick share one MULTI per slot (no Lua per write), each with its own index memberships', async () => {
    const layer = makeLayer();
    await layer.connect();
    const scope = resolveScope({ tenant: 'batched-writes' });
    const keys = Array.from({ length: 30 }, (_, i) => computeKey({ w: i }, scope));
    const before = await calls('exec', 'evalsha', 'eval', 'set');
    await Promise.all(
      keys.map((k, i) => {
        const e = entry(i, { tags: i % 3 === 0 ? ['third'] : i % 2 === 0 ? ['even'] : [] });
        if (i !== 29) return layer.set(k, e);
        const { ttlMs: _ttlMs, ...withoutTtl } = e;
        return layer.set(k, withoutTtl);
      }),
    );
    const after = await calls('exec', 'evalsha', 'eval', 'set');
    expect([after.exec! - before.exec!, after.evalsha! - before.evalsha!, after.eval! - before.eval!, after.set! - before.set!]).toEqual([1, 0, 0, 30]);
    const shard = layer.keys.shardOf(keys[0]!);
    expect(await own.raw.zcard(layer.keys.scopeIndex(shard))).toBe(30);
    // Entries without TTL keep their index alive (a century out), and scores say +inf.
    expect(await own.raw.zscore(layer.keys.scopeIndex(shard), layer.keys.entry(keys[29]!))).toBe('inf');
    expect(await own.raw.pttl(layer.keys.scopeIndex(shard))).toBeGreaterThan(50 * 365 * 24 * 3_600_000);
    expect(await layer.deleteByTag('third')).toBe(10);
    expect(await layer.deleteByTag('even', scope)).toBe(10);
    const left = await layer.getMany(keys);
    expect(left.map((e, i) => (e === undefined ? null : i)).filter((x) => x !== null)).toEqual(keys.map((_, i) => i).filter((i) => i % 3 !== 0 && i % 2 !== 0));
    expect(await layer.clear(scope)).toBe(10);
  });

  it('writes started by separate callbacks of one event-loop turn (answers arriving together) share one MULTI', async () => {
    const layer = makeLayer();
    await layer.connect();
    const scope = resolveScope({ tenant: 'turn-writes' });
    const keys = Array.from({ length: 12 }, (_, i) => computeKey({ turn: i }, scope));
    const before = await calls('exec', 'set');
    // Immediates queued together run one after another in one turn, each its own callback with
    // its own microtasks — as when several upstream answers arrive in the same turn. (Timers
    // would not do: two of them can fall due one millisecond apart, in two turns.)
    const writes = await new Promise<Promise<void>[]>((resolve) => {
      const started: Promise<void>[] = [];
      for (const [i, k] of keys.entries())
        setImmediate(() => {
          started.push(layer.set(k, entry(i)));
          if (started.length === keys.length) resolve(started);
        });
    });
    await Promise.all(writes);
    const after = await calls('exec', 'set');
    expect([after.exec! - before.exec!, after.set! - before.set!]).toEqual([1, keys.length]);
    expect((await layer.getMany(keys)).every((e) => e !== undefined)).toBe(true);
    expect(await layer.clear(scope)).toBe(keys.length);
  });
});
