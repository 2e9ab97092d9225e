import { type CacheKey, computeKey, resolveScope } from '@strata-cache/core';
import { uniqueKeyPrefix } from '@strata-cache/test-utils';
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import type { RedisLayer } from '../src/index.js';
import { entry, ownRedis, scanAll, sleep } from './own-redis.js';

// Writes remember the index TTLs and registrations they have set and skip re-sending them. These
// checks hold that memory to the guarantees: an index never expires before a live member (nor
// lives without TTL), and every purge still finds every entry — also when another process (here:
// another layer instance, with its own memory) purged or cleared in between, or the server
// restarted. Own redis-server: they count commands, kill connections and FLUSHALL.
const own = ownRedis('index-memo');
const { calls } = own;

const HOUR = 3_600_000;

/** Two layers on one prefix: two processes, each with its own memory of what it has set. */
function pair(): [RedisLayer, RedisLayer] {
  const prefix = uniqueKeyPrefix('memo');
  return [own.makeLayer({ prefix }), own.makeLayer({ prefix })];
}

/**
 * Every index (`idx`, `tag`) and registry under the prefix has a TTL, and every index's TTL is at
 * least its longest-lived member's expiry; every tag index with members is in its tag's registry.
 */
async function expectIndexesSound(raw: Redis, layer: RedisLayer): Promise<void> {
  const p = layer.keys.prefix;
  for (const k of await scanAll(raw, `${p}:*`)) {
    if (layer.keys.isEntry(k) || k.startsWith(`${p}:lock:`)) continue;
    const at = Number(await raw.call('PEXPIRETIME', k));
    expect(at, `${k} has a TTL`).toBeGreaterThan(0);
    const kind = /^:(idx|tag):\{([^}]*)\}(?::(.*))?$/.exec(k.slice(p.length));
    if (!kind) continue;
    const top = await raw.zrange(k, -1, -1, 'WITHSCORES');
    if (top.length === 2 && top[1] !== 'inf') expect(at, `${k} outlives its members`).toBeGreaterThanOrEqual(Number(top[1]));
    if (kind[1] === 'tag' && (await raw.zcard(k)) > 0) {
      const members = (await raw.zrange(k, 0, -1)).filter((m) => m !== `${k}:-`);
      if (members.length > 0) expect(await raw.zscore(layer.keys.tagScopes(kind[3]!), kind[2]!), `${k} is registered`).not.toBeNull();
    }
  }
}

async function write(layer: RedisLayer, keys: CacheKey[], ttlMs: number, tags: string[]): Promise<void> {
  await Promise.all(keys.map((k, i) => layer.set(k, entry(i, { ttlMs, tags }))));
}

describe('RedisLayer: remembered index TTLs and registrations', () => {
  it('a write of an index this process has already extended sends SET, ZADD and one PEXPIREAT NX per index, nothing else', async () => {
    const [a] = pair();
    const scope = resolveScope({ tenant: 'few-commands' });
    // 16 min TTL: the grid is a minute, so these writes fall in one or two grid steps.
    await a.set(computeKey({ warm: 1 }, scope), entry('w', { ttlMs: 16 * 60_000, tags: ['t'] }));
    const before = await calls('set', 'zadd', 'pexpireat', 'exec');
    const n = 20;
    for (let i = 0; i < n; i++) await a.set(computeKey({ i }, scope), entry(i, { ttlMs: 16 * 60_000, tags: ['t'] }));
    const after = await calls('set', 'zadd', 'pexpireat', 'exec');
    expect(after.exec! - before.exec!).toBe(n);
    expect(after.set! - before.set!).toBe(n);
    // Per write: ZADD into the scope's and the tag's index, PEXPIREAT NX of each. Once, should the
    // minute turn: the GTs of both indexes and both registries' ZADD + NX + GT (2 + 2 × 3).
    expect(after.zadd! - before.zadd!).toBeLessThanOrEqual(2 * n + 2);
    expect(after.pexpireat! - before.pexpireat!).toBeLessThanOrEqual(2 * n + 6);
    await expectIndexesSound(own.raw, a);
  });

  it("a purge or clear by another process does not shorten an index's TTL below what this process relies on", async () => {
    for (const purge of ['deleteByTag', 'deleteByTag in scope', 'clear(scope)', 'clear()'] as const) {
      const [a, b] = pair();
      const scope = resolveScope({ tenant: 'purged', namespace: purge.replace(/\W/g, '') });
      const first = Array.from({ length: 3 }, (_, i) => computeKey({ first: i }, scope));
      await write(a, first, HOUR, ['t']);
      // b empties the indexes a has extended to an hour.
      const removed =
        purge === 'deleteByTag'
          ? await b.deleteByTag('t')
          : purge === 'deleteByTag in scope'
            ? await b.deleteByTag('t', scope)
            : purge === 'clear(scope)'
              ? await b.clear(scope)
              : await b.clear();
      expect(removed).toBe(first.length);
      // b writes with a short TTL: a re-created index would get b's short TTL...
      await write(b, [computeKey({ short: 1 }, scope)], 2_000, ['t']);
      // ...and a, remembering its hour, would not extend it for its new entries.
      const second = Array.from({ length: 3 }, (_, i) => computeKey({ second: i }, scope));
      await write(a, second, HOUR, ['t']);
      await expectIndexesSound(own.raw, a);
      // Every entry is still found by every kind of purge.
      expect(await b.deleteByTag('t'), purge).toBe(second.length + 1);
      await write(a, second, HOUR, ['t']);
      expect(await b.clear(scope), purge).toBe(second.length);
      await expectIndexesSound(own.raw, a);
    }
  });

  it("after an unscoped clear() by another process, an unscoped deleteByTag still finds this process's new entries", async () => {
    const [a, b] = pair();
    const scopes = [resolveScope({ tenant: 'reg-a' }), resolveScope({ tenant: 'reg-b' })];
    const keys = scopes.flatMap((s) => [0, 1].map((i) => computeKey({ i }, s)));
    await write(a, keys, HOUR, ['shared']);
    expect(await b.clear()).toBe(keys.length);
    // a remembers both shards as registered under the tag: the registry must still list them.
    await write(a, keys, HOUR, ['shared']);
    await expectIndexesSound(own.raw, a);
    expect(await b.deleteByTag('shared')).toBe(keys.length);
    expect((await a.getMany(keys)).every((e) => e === undefined)).toBe(true);
  });

  it('scan() and deleteOlderVersions() that empty an index keep its TTL, and skip the placeholder', async () => {
    const [a, b] = pair();
    const v0 = resolveScope({ tenant: 'versions' });
    const keys = [0, 1, 2].map((i) => computeKey({ i }, v0));
    await write(a, keys, HOUR, []);
    expect(await b.deleteOlderVersions(resolveScope({ tenant: 'versions', version: 1 }))).toBe(keys.length);
    await write(b, [computeKey({ short: 1 }, v0)], 2_000, []);
    await write(a, [computeKey({ again: 1 }, v0)], HOUR, []);
    await expectIndexesSound(own.raw, a);
    // scan drops members whose entry is gone; the placeholder is no entry and is not listed.
    await own.raw.del(...[computeKey({ short: 1 }, v0), computeKey({ again: 1 }, v0)].map((k) => a.keys.entry(k)));
    const page = await b.scan({ scope: v0 });
    expect(page.items).toEqual([]);
    await write(b, [computeKey({ short: 2 }, v0)], 2_000, []);
    await write(a, [computeKey({ again: 2 }, v0)], HOUR, []);
    await expectIndexesSound(own.raw, a);
    expect((await b.scan({ scope: v0 })).items.map((i) => i.entry.value).sort()).toEqual([0, 0]);
  });

  it('an index deleted behind the layer (evicted, deleted by hand) gets a TTL again from the next write', async () => {
    const [a] = pair();
    const scope = resolveScope({ tenant: 'evicted' });
    await write(a, [computeKey({ i: 0 }, scope)], HOUR, ['t']);
    const shard = a.keys.shardOf(computeKey({ i: 0 }, scope));
    await own.raw.del(a.keys.scopeIndex(shard), a.keys.tagIndex(shard, 't'));
    await write(a, [computeKey({ i: 1 }, scope)], HOUR, ['t']);
    for (const idx of [a.keys.scopeIndex(shard), a.keys.tagIndex(shard, 't')]) {
      expect(await own.raw.zcard(idx)).toBe(1);
      expect(Number(await own.raw.call('PEXPIRETIME', idx))).toBeGreaterThanOrEqual(Date.now() + HOUR);
    }
  });

  it('a reconnect (a restarted, empty server) makes the next write set every TTL and registration again', async () => {
    const [a, b] = pair();
    const scope = resolveScope({ tenant: 'restarted' });
    await write(a, [computeKey({ i: 0 }, scope)], HOUR, ['t']);
    // The server "restarts" empty: its data is gone and a's connection is dropped.
    const client = (await a.getClient()) as Redis;
    const id = await client.client('ID');
    await own.raw.flushall();
    await own.raw.client('KILL', 'ID', String(id));
    const k = computeKey({ i: 1 }, scope);
    for (let i = 0; i < 100; i++) {
      await sleep(20);
      if (
        await a.set(k, entry(1, { ttlMs: HOUR, tags: ['t'] })).then(
          () => true,
          () => false,
        )
      )
        break;
    }
    expect(await own.raw.exists(a.keys.entry(k))).toBe(1);
    await expectIndexesSound(own.raw, a);
    expect(await b.deleteByTag('t')).toBe(1);
  });
});
