import { DecodeError, InvalidOptionError, MultiLayerCache, type StrataError, computeKey, resolveScope } from '@strata-cache/core';
import { freePort, redisForTests, uniqueKeyPrefix } from '@strata-cache/test-utils';
import { Redis } from 'ioredis';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisLayer } from '../src/index.js';
import { scanAll } from './own-redis.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let url: string;
let raw: Redis;
const layers: RedisLayer[] = [];
const makeLayer = (options: ConstructorParameters<typeof RedisLayer>[0] = {}) => {
  // Direct calls on a loaded machine: generous read limit so the breaker stays out of these checks.
  const layer = new RedisLayer({ url, prefix: uniqueKeyPrefix('unit'), timeoutMs: 1_000, ...options });
  layers.push(layer);
  return layer;
};

beforeAll(async () => {
  url = (await redisForTests()).url;
  raw = new Redis(url);
});
afterAll(async () => {
  for (const l of layers) {
    await l.clear().catch(() => undefined);
    await l.close();
  }
  raw.disconnect();
});

const entry = (value: unknown, extra: Record<string, unknown> = {}) => ({ value, createdAt: Date.now(), ttlMs: 60_000, tags: [] as string[], ...extra });

describe('RedisLayer: layout, TTL, envelope', () => {
  it('uses <prefix>:<schema>:<scope>:<hash>, readable with SCAN, with the TTL set on the value', async () => {
    const layer = makeLayer();
    const scope = resolveScope({ tenant: 'acme corp', namespace: 'bot:1' });
    const key = computeKey({ q: 'layout' }, scope);
    await layer.set(key, entry('v', { ttlMs: 30_000, tags: ['topic:x'] }));
    const [, keys] = await raw.scan('0', 'MATCH', `${layer.keys.prefix}:${key.schema}:*`, 'COUNT', 1000);
    expect(keys).toEqual([`${layer.keys.prefix}:${key.schema}:{acme%20corp/bot%3A1}/v0:${key.hash}`]);
    const pttl = await raw.pttl(keys[0]!);
    expect(pttl).toBeGreaterThan(25_000);
    expect(pttl).toBeLessThanOrEqual(30_000);
    // Indexes live at least as long as the entry, and not forever.
    for (const idx of [layer.keys.scopeIndex('acme%20corp/bot%3A1'), layer.keys.tagIndex('acme%20corp/bot%3A1', 'topic%3Ax')]) {
      const t = await raw.pttl(idx);
      expect(t).toBeGreaterThanOrEqual(pttl);
      expect(t).toBeLessThan(40_000);
    }
  });

  it('maxTtlMs that is not a whole number of ms still caps every write (Redis takes integer expiries only)', async () => {
    const cap = 86_400_000 / 7; // a week's seventh: 12342857.14… ms
    const layer = makeLayer({ maxTtlMs: cap });
    const scope = resolveScope({ tenant: uniqueKeyPrefix('cap') });
    const forever = computeKey({ q: 'no ttl' }, scope);
    const long = computeKey({ q: 'long ttl' }, scope);
    await layer.set(forever, entry('a', { ttlMs: undefined, tags: ['t'] }));
    await layer.set(long, entry('b', { ttlMs: 30 * 86_400_000 }));
    expect((await layer.get(forever))?.value).toBe('a');
    expect((await layer.get(long))?.value).toBe('b');
    for (const k of [forever, long]) {
      const pttl = await raw.pttl(layer.keys.entry(k));
      expect(pttl).toBeGreaterThan(0);
      expect(pttl).toBeLessThanOrEqual(Math.ceil(cap));
    }
  });

  it('indexes do not outlive their entries', async () => {
    const layer = makeLayer();
    const scope = resolveScope({ tenant: uniqueKeyPrefix('short') });
    await layer.set(computeKey({ q: 1 }, scope), entry(1, { ttlMs: 200, tags: ['gone-soon'] }));
    const before = await scanAll(raw, `${layer.keys.prefix}:*`);
    expect(before.length).toBeGreaterThanOrEqual(4);
    await sleep(1_600); // entry TTL + the indexes' 1 s slack
    expect(await scanAll(raw, `${layer.keys.prefix}:*`)).toEqual([]);
  });

  it('compresses values above the threshold (deflate and brotli) and round-trips them', async () => {
    for (const compression of ['deflate', 'brotli'] as const) {
      const layer = makeLayer({ compression, compressThreshold: 100 });
      const key = computeKey({ q: 'big', compression }, resolveScope('t'));
      const value = { text: 'the same sentence again. '.repeat(400) };
      await layer.set(key, entry(value));
      const stored = await raw.getBuffer(layer.keys.entry(key));
      expect(stored![2]).toBe(compression === 'deflate' ? 1 : 2);
      expect(stored!.length).toBeLessThan(JSON.stringify(value).length / 5);
      expect((await layer.get(key))?.value).toEqual(value);
    }
    const small = makeLayer();
    const k = computeKey({ q: 'small' }, resolveScope('t'));
    await small.set(k, entry('tiny'));
    expect((await raw.getBuffer(small.keys.entry(k)))![2]).toBe(0);
  });

  it('a value that fails to decode is a miss plus an error event, never a crash; corrupt values are removed', async () => {
    const layer = makeLayer();
    const cache = new MultiLayerCache({ layers: [{ layer, budgetMs: 1_000 }], policy: 'always' });
    const errors: StrataError[] = [];
    cache.on('error', (e) => errors.push(e.error));
    const cases: Array<[string, Buffer]> = [
      ['plain JSON', Buffer.from(JSON.stringify(entry('not enveloped')))],
      ['truncated deflate', Buffer.from([0x9e, 1, 1, 0x78, 0x9c, 0x01])],
      ['bad JSON', Buffer.from([0x9e, 1, 0, 0x7b, 0x7b])],
      ['not an entry', Buffer.concat([Buffer.from([0x9e, 1, 0]), Buffer.from('{"hello":1}')])],
    ];
    for (const [label, bytes] of cases) {
      const request = { q: 'corrupt', label };
      const key = cache.keyFor(request);
      await raw.set(layer.keys.entry(key), bytes, 'PX', 60_000);
      await expect(layer.get(key)).rejects.toBeInstanceOf(DecodeError);
      await sleep(50);
      expect(await raw.exists(layer.keys.entry(key))).toBe(0); // removed, stops costing errors
      await raw.set(layer.keys.entry(key), bytes, 'PX', 60_000);
      const r = await cache.getOrLoad(request, async () => `fresh ${label}`);
      expect(r).toMatchObject({ status: 'miss', value: `fresh ${label}` });
    }
    await cache.flush();
    expect(errors.filter((e) => e.code === 'STRATA_DECODE')).toHaveLength(cases.length);
    expect(layer.stats().decodeErrors).toBeGreaterThanOrEqual(cases.length * 2);
  });

  it('an envelope of a newer format is a miss and is left in place for the newer readers', async () => {
    const layer = makeLayer();
    const key = computeKey({ q: 'future' }, resolveScope('t'));
    const rk = layer.keys.entry(key);
    await raw.set(rk, Buffer.from([0x9e, 2, 0, 0x7b, 0x7d]), 'PX', 60_000);
    await expect(layer.get(key)).rejects.toThrow(/format 2/);
    await sleep(50);
    expect(await raw.exists(rk)).toBe(1);
  });

  it('scan() without a scope walks every entry under the prefix', async () => {
    const layer = makeLayer();
    for (let i = 0; i < 12; i++) await layer.set(computeKey({ i }, resolveScope(`tenant-${i % 3}`)), entry(i));
    const seen: unknown[] = [];
    let cursor: string | undefined;
    do {
      const page = await layer.scan({ count: 5, ...(cursor ? { cursor } : {}) });
      seen.push(...page.items.map((x) => x.entry.value));
      cursor = page.cursor;
    } while (cursor);
    expect(new Set(seen)).toEqual(new Set(Array.from({ length: 12 }, (_, i) => i)));
  });
});

describe('RedisLayer: construction and connections', () => {
  it('validates options', () => {
    expect(() => new RedisLayer({ nope: 1 } as never)).toThrow(InvalidOptionError);
    expect(() => new RedisLayer({ prefix: 'a{b}' })).toThrow(/prefix/);
    expect(() => new RedisLayer({ url: 'http://x' })).toThrow(/url/);
    expect(() => new RedisLayer({ url, cluster: { nodes: [{ port: 1 }] } })).toThrow(/only one/);
    expect(() => new RedisLayer({ timeoutMs: 0 })).toThrow(/timeoutMs/);
    expect(() => new RedisLayer({ breaker: { threshold: 1 } as never })).toThrow(/breaker.threshold/);
    expect(() => new RedisLayer({ client: {} as never })).toThrow(/client/);
  });

  it('opens no connection when constructed, only on first use', async () => {
    let connections = 0;
    const listener = createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((r) => listener.listen(0, '127.0.0.1', () => r()));
    const port = (listener.address() as { port: number }).port;
    const layer = new RedisLayer({ url: `redis://127.0.0.1:${port}`, connectTimeoutMs: 300 });
    await sleep(200);
    expect(connections).toBe(0);
    await expect(layer.get(computeKey({ q: 1 }, resolveScope('t')))).rejects.toThrow();
    expect(connections).toBeGreaterThan(0);
    await layer.close();
    await new Promise((r) => listener.close(r));
  });

  it('does no I/O until first use, then fails fast against an unreachable server', async () => {
    const port = await freePort();
    const layer = new RedisLayer({ url: `redis://127.0.0.1:${port}`, connectTimeoutMs: 500, breaker: { cooldownMs: 60_000 } });
    const errors: number[] = [];
    for (let i = 0; i < 6; i++) {
      const t0 = performance.now();
      await expect(layer.get(computeKey({ i }, resolveScope('t')))).rejects.toThrow();
      errors.push(performance.now() - t0);
    }
    expect(layer.state).toBe('open');
    // After the breaker opened, a call is refused by the circuit instead of waiting for the
    // connect timeout (500 ms; the bound leaves room for a loaded machine).
    await expect(layer.get(computeKey({ i: 'last' }, resolveScope('t')))).rejects.toThrow(/circuit/);
    expect(errors.at(-1)!).toBeLessThan(250);
    await layer.close();
  });

  it('works with a caller-supplied ioredis instance and leaves it open on close()', async () => {
    const client = new Redis(url);
    const layer = new RedisLayer({ client, prefix: uniqueKeyPrefix('own-client') });
    const key = computeKey({ q: 'own' }, resolveScope('t'));
    await layer.set(key, entry('mine'));
    expect((await layer.get(key))?.value).toBe('mine');
    await layer.clear();
    await layer.close();
    expect(await client.ping()).toBe('PONG');
    client.disconnect();
  });
});

describe('RedisLayer: coordinator wake-up', () => {
  it("a waiting process is woken by the holder's release message, not by polling", async () => {
    const prefix = uniqueKeyPrefix('wake');
    // Polling alone would take 5 s per round: only the pub/sub release message can be faster.
    const make = () => {
      const layer = new RedisLayer({ url, prefix, lock: { pollMinMs: 5_000, pollMaxMs: 5_000 } });
      layers.push(layer);
      return { layer, cache: new MultiLayerCache({ layers: [layer], coordinator: layer.coordinator, policy: 'always' }) };
    };
    const a = make();
    const b = make();
    await Promise.all([a.layer.connect(), b.layer.connect()]);
    let calls = 0;
    const load = async () => {
      calls++;
      await sleep(300);
      return 'loaded once';
    };
    const t0 = performance.now();
    const first = a.cache.getOrLoad({ q: 'wake' }, load);
    await sleep(50); // a holds the lock
    const second = await b.cache.getOrLoad({ q: 'wake' }, load);
    const waited = performance.now() - t0;
    expect((await first).status).toBe('miss');
    expect(second).toMatchObject({ status: 'hit', value: 'loaded once', coalesced: true });
    expect(calls).toBe(1);
    expect(waited).toBeLessThan(3_000);
  });
});

describe('RedisLayer: coordinator lock TTL', () => {
  it('lock.ttlMs that is not a whole number of ms still takes the lock (Redis takes integer expiries only)', async () => {
    const layer = makeLayer({ lock: { ttlMs: 10_000 / 3 } });
    const key = computeKey({ q: 'fractional lock ttl' }, resolveScope({ tenant: uniqueKeyPrefix('lock') }));
    const ticket = await layer.coordinator.begin(key);
    expect(ticket.kind).toBe('load');
    const lockKey = layer.keys.lock(key);
    expect(await raw.exists(lockKey)).toBe(1);
    const pttl = await raw.pttl(lockKey);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(Math.ceil(10_000 / 3));
    if (ticket.kind === 'load') await ticket.done({ stored: false });
    expect(await raw.exists(lockKey)).toBe(0);
  });
});
