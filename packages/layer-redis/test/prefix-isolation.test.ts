import { type CacheKey, type LoadTicket, computeKey, resolveScope } from '@strata-cache/core';
import { redisForTests, uniqueKeyPrefix } from '@strata-cache/test-utils';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisLayer } from '../src/index.js';
import { scanAll } from './own-redis.js';

// Layers whose prefixes nest (`P`, `P:b`, `P:1b`, `P:tagscopes`) on one Redis: an unscoped
// operation of `P` must never read or remove a key of the others.
let url: string;
let raw: Redis;
const layers: RedisLayer[] = [];
const tickets: LoadTicket[] = [];

const makeLayer = (prefix: string) => {
  // Locks outlive the test, so a lock key cannot vanish between the snapshot and the check.
  const layer = new RedisLayer({ url, prefix, timeoutMs: 1_000, lock: { ttlMs: 60_000 } });
  layers.push(layer);
  return layer;
};

const entry = (value: unknown, tags: string[]) => ({ value, createdAt: Date.now(), ttlMs: 60_000, tags });

beforeAll(async () => {
  url = (await redisForTests()).url;
  raw = new Redis(url);
});
/** Releases the locks taken so far (and stops their renewal). */
async function release(): Promise<void> {
  for (const t of tickets.splice(0)) if (t.kind === 'load') await t.done({ stored: false });
}

afterAll(async () => {
  await release();
  for (const l of layers) {
    await l.clear().catch(() => undefined);
    await l.close();
  }
  raw.disconnect();
});

/** Entries in two scopes, with tags (scope, tag and tag-scope indexes), and one held lock. */
async function fill(layer: RedisLayer, label: string): Promise<CacheKey[]> {
  const keys: CacheKey[] = [];
  for (const tenant of ['acme', 'other corp']) {
    const scope = resolveScope({ tenant, namespace: 'bot:1' });
    for (const i of [0, 1]) {
      const k = computeKey({ label, i }, scope);
      await layer.set(k, entry(`${label}-${tenant}-${i}`, ['t1', 'topic:x']));
      keys.push(k);
    }
  }
  const locked = computeKey({ label, q: 'locked' }, resolveScope('acme'));
  const ticket = await layer.coordinator.begin(locked);
  tickets.push(ticket);
  expect(ticket.kind).toBe('load');
  expect(await raw.exists(layer.keys.lock(locked))).toBe(1);
  return keys;
}

describe('RedisLayer: unscoped operations keep to their own prefix', () => {
  it('clear() removes its entries, indexes and locks, and no key of a longer prefix (P:b, P:1b, P:tagscopes)', async () => {
    const p = uniqueKeyPrefix('nest');
    const others = [makeLayer(`${p}:b`), makeLayer(`${p}:1b`), makeLayer(`${p}:tagscopes`)];
    const otherKeys = await Promise.all(others.map((l, i) => fill(l, `other${i}`)));
    const before = await scanAll(raw, `${p}:*`);
    // Entries, locks and every index kind of each other layer.
    for (const l of others) {
      const own = before.filter((k) => k.startsWith(`${l.keys.prefix}:`));
      for (const kind of [`:${otherKeys[0]![0]!.schema}:{`, ':lock:{', ':idx:{', ':tags:{', ':tag:{', ':tagscopes:']) {
        expect(own.some((k) => k.startsWith(l.keys.prefix + kind))).toBe(true);
      }
    }

    const layer = makeLayer(p);
    const mine = await fill(layer, 'mine');
    // Kept on purpose: watermarks, the semantic feed's streams, the gateway's scope versions.
    const kept = [`${p}:wm:{${p}}:seq`, `${p}:sfeed:{sf4.0.0}`, `${p}:gateway:versions`];
    await raw.set(kept[0]!, '3');
    await raw.xadd(kept[1]!, '*', 'n', '1');
    await raw.hset(kept[2]!, 'acme/bot', '2');
    expect((await scanAll(raw, `${p}:*`)).length).toBeGreaterThan(before.length + kept.length);

    expect(await layer.clear()).toBe(mine.length);

    // Every key of the other prefixes is still there, and only those plus the kept ones.
    expect(await scanAll(raw, `${p}:*`)).toEqual([...before, ...kept].sort());
    for (const k of mine) expect(await layer.get(k)).toBeUndefined();
    for (const [i, l] of others.entries()) {
      for (const k of otherKeys[i]!) expect((await l.get(k))?.value).toMatch(new RegExp(`^other${i}-`));
      // Their indexes still work.
      expect(await l.deleteByTag('t1')).toBe(otherKeys[i]!.length);
    }
    await release();
  });

  it('scan() without a scope lists its own entries only, and does not read keys of P:1b (index ZSETs)', async () => {
    const p = uniqueKeyPrefix('nest-scan');
    const other = makeLayer(`${p}:1b`);
    const otherKeys = await fill(other, 'other');
    const layer = makeLayer(p);
    const mine = await fill(layer, 'mine');
    await release(); // no lock renewal (a script calling GET) while GETs are counted
    const gets = async () => Number(/cmdstat_get:calls=(\d+)/.exec(await raw.info('commandstats'))?.[1] ?? 0);

    const listed: string[] = [];
    const getsBefore = await gets();
    let cursor: string | undefined;
    do {
      const page = await layer.scan({ cursor, count: 1_000 });
      listed.push(...page.items.map((i) => i.key.hash));
      cursor = page.cursor;
    } while (cursor !== undefined);
    expect(listed.sort()).toEqual(mine.map((k) => k.hash).sort());
    // One GET per own entry: none for P:1b's entries or lock (other test files may share the server).
    if (!process.env.REDIS_URL) expect((await gets()) - getsBefore).toBe(mine.length);

    // And the other way round: P:1b lists its own.
    const theirs: string[] = [];
    cursor = undefined;
    do {
      const page = await other.scan({ cursor, count: 1_000 });
      theirs.push(...page.items.map((i) => i.key.hash));
      cursor = page.cursor;
    } while (cursor !== undefined);
    expect(theirs.sort()).toEqual(otherKeys.map((k) => k.hash).sort());
  });
});
