import { DecodeError, computeKey, resolveScope } from '@strata-cache/core';
import { describe, expect, it } from 'vitest';
import { entry, ownRedis, sleep } from './own-redis.js';

// Own redis-server: the checks read INFO commandstats and run SCRIPT FLUSH, which must not
// touch (or be disturbed by) a shared server.
const own = ownRedis('batch');
const { makeLayer, calls } = own;

describe('RedisLayer: reads of one tick are coalesced into MGETs', () => {
  it('gives each caller its own value (misses included): first read a GET, the rest MGETs of at most 128 keys', async () => {
    const layer = makeLayer();
    await layer.connect();
    const scopes = [resolveScope('a'), resolveScope({ tenant: 'b', namespace: 'n' })];
    const keys = Array.from({ length: 300 }, (_, i) => computeKey({ i }, scopes[i % 2]!));
    // Every third key is never written: a miss in the middle of a batch.
    await Promise.all(keys.map((k, i) => (i % 3 === 0 ? undefined : layer.set(k, entry({ i })))));
    const before = await calls('get', 'mget');
    const got = await Promise.all(keys.map((k) => layer.get(k)));
    const after = await calls('get', 'mget');
    got.forEach((e, i) => expect(e?.value).toEqual(i % 3 === 0 ? undefined : { i }));
    // 300 reads in one tick: the first goes out at once as a GET, the other 299 as
    // ceil(299 / 128) = 3 MGETs (standalone: hash tags do not split them).
    expect(after.get! - before.get!).toBe(1);
    expect(after.mget! - before.mget!).toBe(3);
    // getMany is the same path.
    expect((await layer.getMany(keys.slice(0, 6))).map((e) => e?.value)).toEqual([undefined, { i: 1 }, { i: 2 }, undefined, { i: 4 }, { i: 5 }]);
  });

  it('sends a lone read as a plain GET', async () => {
    const layer = makeLayer();
    await layer.connect();
    const key = computeKey({ q: 'alone' }, resolveScope('t'));
    await layer.set(key, entry('single'));
    const before = await calls('get', 'mget');
    expect((await layer.get(key))?.value).toBe('single');
    const after = await calls('get', 'mget');
    expect([after.get! - before.get!, after.mget! - before.mget!]).toEqual([1, 0]);
  });

  it('a corrupt value in a batch fails only its own read (DecodeError) and is removed', async () => {
    const layer = makeLayer();
    await layer.connect();
    const keys = Array.from({ length: 20 }, (_, i) => computeKey({ corrupt: i }, resolveScope('t')));
    await Promise.all(keys.map((k, i) => layer.set(k, entry(i))));
    await own.raw.set(layer.keys.entry(keys[7]!), Buffer.from([0x9e, 1, 0, 0x7b, 0x7b]), 'PX', 60_000);
    await own.raw.set(layer.keys.entry(keys[13]!), Buffer.from('{"plain":"json"}'), 'PX', 60_000);
    const results = await Promise.allSettled(keys.map((k) => layer.get(k)));
    results.forEach((r, i) => {
      if (i === 7 || i === 13) {
        expect(r.status).toBe('rejected');
        expect((r as PromiseRejectedResult).reason).toBeInstanceOf(DecodeError);
      } else expect(r).toEqual({ status: 'fulfilled', value: expect.objectContaining({ value: i }) });
    });
    expect(layer.stats().decodeErrors).toBe(2);
    await sleep(50);
    expect(await own.raw.exists(layer.keys.entry(keys[7]!), layer.keys.entry(keys[13]!))).toBe(0);
    expect(await own.raw.exists(layer.keys.entry(keys[8]!))).toBe(1);
  });
});

describe('RedisLayer: a delete is not undone by a write that started before it', () => {
  it('a set still compressing when its key is deleted is dropped', async () => {
    const layer = makeLayer({ compressThreshold: 10 });
    const key = computeKey({ q: 'set then delete' }, resolveScope('t'));
    for (let round = 0; round < 5; round++) {
      // Not awaited: compression runs on the thread pool, the DEL is sent meanwhile.
      const write = layer.set(key, entry({ text: 'x'.repeat(5_000), round }));
      expect(await layer.delete(key)).toBe(false);
      await write;
      expect(await layer.get(key)).toBeUndefined();
    }
  });

  it('...and one whose script was flushed is not re-sent after the delete (NOSCRIPT fallback)', async () => {
    const layer = makeLayer();
    await layer.connect();
    const key = computeKey({ q: 'noscript' }, resolveScope('t'));
    await own.raw.script('FLUSH');
    const write = layer.set(key, entry('old'));
    // Let the EVALSHA go out; the NOSCRIPT answer arrives after the delete below.
    await new Promise((r) => setImmediate(r));
    const deleted = layer.delete(key);
    await write;
    await deleted;
    expect(await own.raw.exists(layer.keys.entry(key))).toBe(0);
    // The script is loaded again by the next write that needs it.
    await layer.set(key, entry('new'));
    expect((await layer.get(key))?.value).toBe('new');
  });

  it('deleteByTag and clear(scope) drop writes they cover that are still in flight', async () => {
    const layer = makeLayer({ compressThreshold: 10 });
    const scope = resolveScope({ tenant: 'inflight', namespace: 'n' });
    const other = resolveScope({ tenant: 'other', namespace: 'n' });
    const big = { text: 'y'.repeat(5_000) };
    const tagged = computeKey({ q: 'tagged' }, scope);
    const kept = computeKey({ q: 'untagged' }, scope);
    let writes = [layer.set(tagged, entry(big, { tags: ['gone'] })), layer.set(kept, entry(big))];
    await layer.deleteByTag('gone');
    await Promise.all(writes);
    expect(await layer.get(tagged)).toBeUndefined();
    expect((await layer.get(kept))?.value).toEqual(big);

    const elsewhere = computeKey({ q: 'elsewhere' }, other);
    writes = [layer.set(kept, entry(big)), layer.set(elsewhere, entry(big))];
    await layer.clear(scope);
    await Promise.all(writes);
    expect(await layer.get(kept)).toBeUndefined();
    expect((await layer.get(elsewhere))?.value).toEqual(big);
  });
});

describe('RedisLayer: a batch while Redis is hung (SIGSTOP)', () => {
  it('every read of the batch fails within the time limit, each counts for the breaker, then it recovers', async () => {
    const TIMEOUT = 50;
    const layer = makeLayer({ timeoutMs: TIMEOUT, breaker: { cooldownMs: 100 } });
    await layer.connect();
    const keys = Array.from({ length: 64 }, (_, i) => computeKey({ hung: i }, resolveScope('t')));
    await Promise.all(keys.map((k, i) => layer.set(k, entry(i))));
    own.server.pause();
    const elapsed: number[] = [];
    let results: PromiseSettledResult<unknown>[] = [];
    try {
      const t0 = performance.now();
      results = await Promise.allSettled(keys.map((k) => layer.get(k).finally(() => elapsed.push(performance.now() - t0))));
      // After the batch, the circuit is open: the next read is refused at once, not timed out
      // (the timeout count below stays at the batch's 64).
      await expect(layer.get(keys[0]!)).rejects.toThrow(/circuit/);
    } finally {
      own.server.resume();
    }
    expect(results.every((r) => r.status === 'rejected')).toBe(true);
    expect((results[0] as PromiseRejectedResult).reason.message).toMatch(/within 50 ms/);
    // Bounded by the time limit (generous slack for a loaded machine), not by the hang.
    expect(Math.max(...elapsed)).toBeLessThan(TIMEOUT + 250);
    expect(layer.stats()).toMatchObject({ state: 'open', opens: 1, timeouts: 64 });
    const until = Date.now() + 5_000;
    while (layer.state !== 'closed' && Date.now() < until) await sleep(20);
    expect(layer.state).toBe('closed');
    expect((await Promise.all(keys.map((k) => layer.get(k)))).map((e) => e?.value)).toEqual(keys.map((_, i) => i));
  });
});

describe('RedisLayer: an onStateChange listener that throws', () => {
  it('breaks neither the request (a miss plus error, no uncaught exception) nor the recovery', async () => {
    const seen: string[] = [];
    const layer = makeLayer({
      timeoutMs: 50,
      breaker: { failureThreshold: 1, cooldownMs: 100 },
      onStateChange: (state) => {
        seen.push(state);
        throw new Error('a bug in the application listener');
      },
    });
    await layer.connect();
    const key = computeKey({ listener: 1 }, resolveScope('t'));
    await layer.set(key, entry('v'));
    own.server.pause();
    try {
      await expect(layer.get(key)).rejects.toThrow(/within 50 ms/);
      expect(layer.state).toBe('open');
    } finally {
      own.server.resume();
    }
    const until = Date.now() + 5_000;
    while (layer.state !== 'closed' && Date.now() < until) await sleep(20);
    expect(layer.state).toBe('closed');
    expect(seen).toEqual(expect.arrayContaining(['open', 'half-open', 'closed']));
    expect((await layer.get(key))?.value).toBe('v');
  });
});
