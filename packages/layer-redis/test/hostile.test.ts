import { type CacheEntry, DecodeError, LayerError, MultiLayerCache, type StrataError, computeKey, resolveScope } from '@strata-cache/core';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { deflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { entry as shortLived, ownRedis, sleep } from './own-redis.js';

// Own redis-server: these tests store hostile values (hundreds of KB to 64 MB).
const own = ownRedis('hostile', { timeoutMs: 5_000 }, ['--proto-max-bulk-len', '1gb']);
const { makeLayer } = own;
const entry = (value: unknown, extra: Partial<CacheEntry> = {}): CacheEntry => shortLived(value, { ttlMs: 600_000, ...extra });

/** A format-3 envelope around `payload`, bound to `keyId` (what a hostile writer with the key would store). */
function envelope(keyId: string, codec: number, payload: Buffer): Buffer {
  const header = Buffer.from(keyId + '\n', 'latin1');
  const head = Buffer.from([0x9e, 3, codec, 0, 0, 0, 0]);
  head.writeUInt32BE(header.length, 3);
  return Buffer.concat([head, header, payload]);
}

describe('a stored value is bound to its key', () => {
  it("COPY of one tenant's entry onto another tenant's key: a miss plus DecodeError, never the other tenant's answer, and the copy is deleted", async () => {
    const layer = makeLayer();
    const cache = new MultiLayerCache({ layers: [{ layer, budgetMs: 5_000 }], policy: 'always' });
    const errors: StrataError[] = [];
    cache.on('error', (e) => errors.push(e.error));
    const request = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'what is our refund policy?' }] };
    await cache.getOrLoad(request, async () => 'acme: 30 days, no questions asked', { scope: 'acme' });
    await cache.flush();
    const acmeKey = layer.keys.entry(cache.keyFor(request, { scope: 'acme' }));
    const globexKey = layer.keys.entry(cache.keyFor(request, { scope: 'globex' }));
    expect(await own.raw.copy(acmeKey, globexKey)).toBe(1);
    expect(await own.raw.exists(globexKey)).toBe(1);

    const r = await cache.getOrLoad(request, async () => 'globex: store credit only', { scope: 'globex', noStore: true });
    expect(r).toMatchObject({ status: 'miss', value: 'globex: store credit only' });
    expect(errors.filter((e) => e.code === 'STRATA_DECODE').map((e) => e.message)).toEqual([expect.stringMatching(/written for key .*acme.*not for this key/)]);
    await sleep(50);
    expect(await own.raw.exists(globexKey)).toBe(0);
    // The same within a tenant: an entry copied onto another request's key.
    const other = { ...request, messages: [{ role: 'user', content: 'something else' }] };
    const otherKey = layer.keys.entry(cache.keyFor(other, { scope: 'acme' }));
    await own.raw.copy(acmeKey, otherKey);
    expect((await cache.getOrLoad(other, async () => 'right answer', { scope: 'acme', noStore: true })).value).toBe('right answer');
    // The original still serves its own key.
    expect((await cache.lookup(request, { scope: 'acme' }))?.entry.value).toBe('acme: 30 days, no questions asked');
    await cache.close();
  });

  it('a valid value of the earlier format (no binding) is a miss and is left for the next write to replace', async () => {
    const layer = makeLayer();
    const key = computeKey({ q: 'legacy' }, resolveScope('t'));
    const rk = layer.keys.entry(key);
    await own.raw.set(rk, Buffer.concat([Buffer.from([0x9e, 1, 0]), Buffer.from(JSON.stringify(entry('old')))]), 'PX', 60_000);
    await expect(layer.get(key)).rejects.toThrow(/earlier version/);
    await sleep(50);
    expect(await own.raw.exists(rk)).toBe(1);
    await layer.set(key, entry('new'));
    expect((await layer.get(key))?.value).toBe('new');
  });
});

describe('malformed entries bound to their key', () => {
  it('non-string tags, an infinite createdAt or a negative TTL are a miss plus DecodeError, and deleted', async () => {
    const layer = makeLayer();
    const cases = [
      '{"value":1,"createdAt":1,"tags":[1]}',
      '{"value":1,"createdAt":1e400,"tags":[]}',
      '{"value":1,"createdAt":1,"ttlMs":-5,"tags":[]}',
      '{"value":1,"createdAt":1,"tags":"abc"}',
    ];
    for (const [i, json] of cases.entries()) {
      const key = computeKey({ q: 'malformed', i }, resolveScope('t'));
      const rk = layer.keys.entry(key);
      await own.raw.set(rk, envelope(key.id, 0, Buffer.from(json)), 'PX', 60_000);
      await expect(layer.get(key), json).rejects.toBeInstanceOf(DecodeError);
      await sleep(30);
      expect(await own.raw.exists(rk)).toBe(0);
    }
  });
});

describe('decompression bombs and oversized values', () => {
  const measure = async (read: () => Promise<unknown>) => {
    const delay = monitorEventLoopDelay({ resolution: 5 });
    delay.enable();
    global.gc?.();
    const rss0 = process.memoryUsage().rss;
    let peak = rss0;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
    const t0 = performance.now();
    const outcome = await read().then(
      (v) => ({ value: v }),
      (error: unknown) => ({ error: error as Error }),
    );
    const ms = performance.now() - t0;
    clearInterval(sampler);
    delay.disable();
    return { outcome, ms, rssGrowthMb: (peak - rss0) / 2 ** 20, maxLoopDelayMs: delay.max / 1e6 };
  };

  it('a value inflating to 512 MB is refused at maxValueBytes: a miss plus DecodeError, bounded memory, the loop stays responsive', async () => {
    const layer = makeLayer();
    const key = computeKey({ q: 'bomb' }, resolveScope('t'));
    const rk = layer.keys.entry(key);
    // 512 MB of spaces inside a JSON string, deflated (~500 KB): a well-formed bomb bound to the key.
    const inner = Buffer.alloc(512 * 2 ** 20, 0x20);
    inner.write('{"value":"', 0);
    inner.write('","createdAt":1,"tags":[]}', inner.length - 26);
    const bomb = envelope(key.id, 1, deflateSync(inner, { level: 9 }));
    await own.raw.set(rk, bomb, 'PX', 60_000);
    const m = await measure(() => layer.get(key));
    console.log(
      'bomb',
      JSON.stringify({ storedBytes: bomb.length, ms: Math.round(m.ms), rssGrowthMb: Math.round(m.rssGrowthMb), maxLoopDelayMs: Math.round(m.maxLoopDelayMs) }),
    );
    expect('error' in m.outcome && m.outcome.error).toBeInstanceOf(DecodeError);
    expect(('error' in m.outcome && m.outcome.error.message) || '').toMatch(/inflates to more than maxValueBytes/);
    // Bounded by maxValueBytes (32 MiB), not by the bomb (512 MB).
    expect(m.rssGrowthMb).toBeLessThan(256);
    await sleep(50);
    expect(await own.raw.exists(rk)).toBe(0);
    expect(layer.stats().decodeErrors).toBe(1);
  }, 60_000);

  it('64 MB of garbage is refused by its size before any decoding: a miss plus DecodeError', async () => {
    const layer = makeLayer();
    for (const codec of [0, 1]) {
      const key = computeKey({ q: 'garbage', codec }, resolveScope('t'));
      const rk = layer.keys.entry(key);
      const garbage = Buffer.alloc(64 * 2 ** 20);
      for (let i = 0; i < garbage.length; i += 4) garbage.writeUInt32LE((i * 2654435761) >>> 0, i);
      await own.raw.set(rk, envelope(key.id, codec, garbage), 'PX', 60_000);
      const m = await measure(() => layer.get(key));
      console.log(
        'garbage',
        JSON.stringify({ codec, ms: Math.round(m.ms), rssGrowthMb: Math.round(m.rssGrowthMb), maxLoopDelayMs: Math.round(m.maxLoopDelayMs) }),
      );
      expect('error' in m.outcome && m.outcome.error).toBeInstanceOf(DecodeError);
      expect(('error' in m.outcome && m.outcome.error.message) || '').toMatch(/more than maxValueBytes/);
    }
  }, 60_000);

  it("an entry larger than maxValueBytes is not written, and the key's older value is removed", async () => {
    const layer = makeLayer({ maxValueBytes: 64 * 1024 });
    const key = computeKey({ q: 'too big' }, resolveScope('t'));
    await layer.set(key, entry('small and old'));
    await expect(layer.set(key, entry('x'.repeat(100_000)))).rejects.toThrow(/maxValueBytes/);
    expect(await layer.get(key)).toBeUndefined();
  });

  it('...also when the older value was still compressing: it does not land after the delete', async () => {
    const layer = makeLayer({ maxValueBytes: 64 * 1024, compressThreshold: 0 });
    const key = computeKey({ q: 'too big, older write in flight' }, resolveScope('t'));
    const older = layer.set(key, entry('older, still compressing'));
    await expect(layer.set(key, entry('x'.repeat(100_000)))).rejects.toThrow(/maxValueBytes/);
    await older;
    expect(await layer.get(key)).toBeUndefined();
  });

  it('an already expired entry removes the older value, also one still compressing', async () => {
    const layer = makeLayer({ compressThreshold: 0 });
    const key = computeKey({ q: 'expired, older write in flight' }, resolveScope('t'));
    const older = layer.set(key, entry('older, still compressing'));
    await layer.set(key, entry('expired', { createdAt: Date.now() - 10_000, ttlMs: 1_000 }));
    await older;
    expect(await layer.get(key)).toBeUndefined();
  });

  it('a value that cannot be encoded (a BigInt, a cycle) is refused with a LayerError, and the older value is removed', async () => {
    const layer = makeLayer();
    const cyclic: Record<string, unknown> = { text: 'new' };
    cyclic['self'] = cyclic;
    for (const [i, bad] of [{ n: 10n }, cyclic].entries()) {
      const key = computeKey({ q: 'unencodable', i }, resolveScope('t'));
      await layer.set(key, entry('the older answer'));
      expect((await layer.get(key))?.value).toBe('the older answer');
      const error = await layer.set(key, entry(bad)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(LayerError);
      expect((error as Error).message).toMatch(/cannot be encoded/);
      expect(await layer.get(key)).toBeUndefined();
      expect(await own.raw.exists(layer.keys.entry(key))).toBe(0);
    }
  });

  it('a value that cannot be encoded also removes an older value still compressing: it does not land after the delete', async () => {
    const layer = makeLayer({ compressThreshold: 0 });
    const key = computeKey({ q: 'unencodable, older write in flight' }, resolveScope('t'));
    const older = layer.set(key, entry('older, still compressing'));
    await expect(layer.set(key, entry({ n: 1n }))).rejects.toThrow(/cannot be encoded/);
    await older;
    expect(await layer.get(key)).toBeUndefined();
  });

  it('a large value (above 1 MiB once inflated) still round-trips, inflated off the event loop', async () => {
    const layer = makeLayer({ compressThreshold: 1024 });
    const key = computeKey({ q: 'large' }, resolveScope('t'));
    const text = Array.from({ length: 60_000 }, (_, i) => `line ${i} of a long answer`).join('\n');
    await layer.set(key, entry({ text }));
    expect((await own.raw.getBuffer(layer.keys.entry(key)))![2]).toBe(1);
    expect(((await layer.get(key))!.value as { text: string }).text).toBe(text);
  });
});
