import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CacheEntry, type CacheKey, type Scope, computeKey, computeSemantic, resolveScope } from '@strata-cache/core';
import { SemanticLayer, type SemanticLayerOptions } from '@strata-cache/layer-semantic';
import { type RedisServerHandle, startRedisServer, uniqueKeyPrefix } from '@strata-cache/test-utils';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisLayer } from '../src/index.js';
import { RedisSemanticFeed, type RedisSemanticFeedOptions } from '../src/semantic-feed.js';
import { WordEmbedder } from './fixtures/word-embedder.mjs';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const open = { threshold: 0.8, guards: [], selector: false as const };

/** Polls `fn` until it returns true (or throws after `ms`). */
async function eventually(fn: () => boolean | Promise<boolean>, ms = 5_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > deadline) throw new Error(`${what} not reached within ${ms} ms`);
    await sleep(10);
  }
}

function chat(text: string, scope: Scope = resolveScope('t1'), extra: { tags?: string[]; value?: unknown; ttlMs?: number } = {}) {
  const req = {
    model: 'gpt-4o-mini',
    temperature: 0,
    messages: [
      { role: 'system', content: 'You are helpful.' },
      { role: 'user', content: text },
    ],
  };
  const key: CacheKey = computeKey(req, scope);
  const semantic = computeSemantic(req, scope)!;
  const entry: CacheEntry = {
    value: extra.value ?? `answer to: ${text}`,
    createdAt: Date.now(),
    tags: extra.tags ?? [],
    semantic,
    ...(extra.ttlMs ? { ttlMs: extra.ttlMs } : {}),
  };
  return { key, entry, query: { ...semantic, scope } };
}

let server: RedisServerHandle;
let raw: Redis;
const cleanups: Array<() => Promise<void>> = [];
const dirs: string[] = [];
beforeAll(async () => {
  server = await startRedisServer();
  raw = new Redis(server.url);
}, 30_000);
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});
afterAll(async () => {
  raw?.disconnect();
  await server?.stop();
});

interface Node {
  redis: RedisLayer;
  feed: RedisSemanticFeed;
  semantic: SemanticLayer;
  embedder: WordEmbedder;
  warnings: string[];
  errors: string[];
  close(): Promise<void>;
}

async function node(
  prefix: string,
  extra: {
    semantic?: Partial<SemanticLayerOptions>;
    feed?: Partial<RedisSemanticFeedOptions>;
    url?: string;
    accept?: (scope: Pick<Scope, 'tenant' | 'namespace'>) => boolean;
  } = {},
): Promise<Node> {
  const redis = new RedisLayer({ url: extra.url ?? server.url, prefix, timeoutMs: 1_000 });
  const errors: string[] = [];
  const warnings: string[] = [];
  const feed = new RedisSemanticFeed({ layer: redis, blockMs: 200, readTimeoutMs: 500, onError: (e) => errors.push(e.message), ...extra.feed });
  const embedder = new WordEmbedder(64);
  const semantic = new SemanticLayer({
    embedder,
    ...open,
    rebuildFrom: redis,
    onWarning: (m) => warnings.push(m),
    ...extra.semantic,
    replication: { feed, ...(extra.accept ? { accept: extra.accept } : {}) },
  });
  await semantic.ready();
  let closed = false;
  const n: Node = {
    redis,
    feed,
    semantic,
    embedder,
    warnings,
    errors,
    async close() {
      if (closed) return;
      closed = true;
      await semantic.close();
      await redis.close();
    },
  };
  cleanups.push(() => n.close());
  return n;
}

/** Writes through both layers, as MultiLayerCache would (L2 then L3). */
async function write(n: Node, x: ReturnType<typeof chat>): Promise<void> {
  await n.redis.set(x.key, x.entry);
  await n.semantic.set(x.key, x.entry);
}

describe('RedisSemanticFeed: replication through Redis Streams', () => {
  it('a write in one process reaches the other with its vector: a paraphrase hits there, nothing is embedded for it', async () => {
    const prefix = uniqueKeyPrefix('feed-basic');
    const a = await node(prefix);
    const b = await node(prefix);
    const x = chat('How do I reset my password?');
    await write(a, x);
    await eventually(async () => (await b.semantic.get(x.key)) !== undefined, 5_000, 'replicated put');
    const r = await b.semantic.search(chat('how do i reset my password').query);
    expect(r.hit?.key.id).toBe(x.key.id);
    expect(r.hit?.entry.value).toBe(x.entry.value);
    expect(b.embedder.texts).toBe(1); // its own lookup only
    expect(b.semantic.stats()).toMatchObject({ entries: 1, indexed: 1 });
    expect(b.semantic.stats().replication?.lagMs?.max).toBeGreaterThanOrEqual(0);
    expect(a.feed.stats()).toMatchObject({ published: 1, dropped: 0 });
    expect(b.errors).toEqual([]);
  });

  it('deletes, tag / version / scope purges and evictions reach the other process', async () => {
    const prefix = uniqueKeyPrefix('feed-deletes');
    const a = await node(prefix, { semantic: { maxEntries: 5 } });
    const b = await node(prefix);
    const s0 = resolveScope({ tenant: 'rep', version: 0 });
    const s1 = resolveScope({ tenant: 'rep', version: 1 });
    const other = resolveScope({ tenant: 'rep', namespace: 'other' });
    const xs = [
      chat('tagged question', s0, { tags: ['t'] }),
      chat('old version question', s0),
      chat('deleted question', s1),
      chat('cleared question', other),
      chat('kept question', s1),
    ];
    for (const x of xs) await write(a, x);
    await eventually(() => b.semantic.size === 5, 5_000, 'five replicated');
    await a.semantic.deleteByTag('t');
    await a.semantic.deleteOlderVersions(s1);
    await a.semantic.delete(xs[2]!.key);
    await a.semantic.clear(other);
    await eventually(() => b.semantic.size === 1, 5_000, 'purges applied');
    expect(await b.semantic.get(xs[4]!.key)).toBeDefined();
    // A holds at most 5: the sixth write evicts its least recently used entry, in B too.
    const more = ['one', 'two', 'three', 'four', 'five'].map((t) => chat(`${t} more`, s1));
    for (const x of more) await write(a, x);
    await eventually(async () => b.semantic.size === 5 && (await b.semantic.get(xs[4]!.key)) === undefined, 5_000, 'eviction applied');
  });

  it('a TTL expires everywhere at once (it travels with the entry); a partition filter keeps other tenants out', async () => {
    const prefix = uniqueKeyPrefix('feed-ttl');
    const a = await node(prefix);
    const b = await node(prefix, { accept: (scope) => scope.tenant === 'mine' });
    const short = chat('a short-lived answer', resolveScope('mine'), { ttlMs: 400 });
    const theirs = chat('another tenant question', resolveScope('theirs'));
    await write(a, short);
    await write(a, theirs);
    await eventually(async () => (await b.semantic.get(short.key)) !== undefined, 5_000, 'replicated');
    expect(await b.semantic.get(theirs.key)).toBeUndefined(); // not a tenant b serves
    expect(b.semantic.size).toBe(1);
    await sleep(500);
    expect(await b.semantic.get(short.key)).toBeUndefined();
    expect((await b.semantic.search(short.query)).hit).toBeUndefined();
  });

  it('restarts from its snapshot plus the stream after the snapshot: no duplicates, nothing lost', async () => {
    const prefix = uniqueKeyPrefix('feed-restart');
    const dir = await mkdtemp(join(tmpdir(), 'strata-feed-'));
    dirs.push(dir);
    const a = await node(prefix);
    const b = await node(prefix, { semantic: { persistDir: dir } });
    const first = ['first one', 'first two', 'first three'].map((t) => chat(t));
    for (const x of first) await write(a, x);
    await eventually(() => b.semantic.size === 3);
    await b.close(); // final snapshot with its offset
    const later = ['later one', 'later two'].map((t) => chat(t));
    for (const x of later) await write(a, x);
    await a.semantic.delete(first[0]!.key);
    await a.redis.delete(first[0]!.key);
    const b2 = await node(prefix, { semantic: { persistDir: dir } });
    await eventually(() => b2.semantic.size === 4, 5_000, 'caught up');
    expect(await b2.semantic.get(first[0]!.key)).toBeUndefined();
    for (const x of [...first.slice(1), ...later]) expect((await b2.semantic.search(x.query)).hit?.key.id).toBe(x.key.id);
    expect(b2.semantic.stats().replication).toMatchObject({ resyncs: 0 });
    // Only its own lookups were embedded (the replicated texts came with their vectors).
    expect(b2.embedder.texts).toBeLessThanOrEqual(2);
  });

  it('an offset trimmed away: re-derives the index from L2 — imports what it lacks, drops what L2 no longer holds', async () => {
    const prefix = uniqueKeyPrefix('feed-trim');
    const dir = await mkdtemp(join(tmpdir(), 'strata-feed-'));
    dirs.push(dir);
    const a = await node(prefix, { feed: { maxLength: 1 } });
    const b = await node(prefix, { semantic: { persistDir: dir } });
    const kept = chat('kept across the gap');
    const gone = chat('deleted during the gap');
    await write(a, kept);
    await write(a, gone);
    await eventually(() => b.semantic.size === 2);
    await b.close();
    // While B is down: a delete, and enough writes that the streams are trimmed past B's offset.
    await a.semantic.delete(gone.key);
    await a.redis.delete(gone.key);
    const during = Array.from({ length: 300 }, (_, i) => chat(`written while b was down number ${i}`));
    for (const x of during) await write(a, x);
    await a.feed.flush(5_000);
    const b2 = await node(prefix, { semantic: { persistDir: dir } });
    await eventually(() => (b2.semantic.stats().replication?.resyncs ?? 0) >= 1 && b2.semantic.size === 301, 10_000, 're-synchronised');
    expect(await b2.semantic.get(gone.key)).toBeUndefined();
    expect(await b2.semantic.get(kept.key)).toBeDefined();
    expect(b2.feed.stats().gaps).toBeGreaterThanOrEqual(1);
    // After the gap it follows the stream again.
    const after = chat('after the gap');
    await write(a, after);
    await eventually(async () => (await b2.semantic.get(after.key)) !== undefined);
  });

  it('an offset taken under other settings is a gap, not misread', async () => {
    const prefix = uniqueKeyPrefix('feed-config');
    const a = await node(prefix);
    const x = chat('written before');
    await write(a, x);
    const sink = { applied: 0, gaps: [] as Array<string | undefined> };
    const feed = new RedisSemanticFeed({ layer: a.redis, streams: 2, blockMs: 100, onError: () => undefined });
    const sub = await feed.subscribe(`r1:4.deadbeef:${['0-0/0', '0-0/0', '0-0/0', '0-0/0'].join(',')}`, {
      apply: (rs) => void (sink.applied += rs.length),
      gap: async (r) => void sink.gaps.push(r),
    });
    await eventually(() => sink.gaps.length === 1);
    expect(sink.gaps[0]).toMatch(/^r1:2\./);
    await sub.close();
  });

  it('a Redis that comes back empty: every follower drops what it replicated (its purges may be lost), then follows again', async () => {
    const own = await startRedisServer();
    cleanups.push(() => own.stop());
    const prefix = uniqueKeyPrefix('feed-empty');
    const a = await node(prefix, { url: own.url });
    const b = await node(prefix, { url: own.url });
    const xs = ['one before', 'two before'].map((t) => chat(t));
    for (const x of xs) await write(a, x);
    await eventually(() => b.semantic.size === 2);
    await own.restart(); // empty: L2, the streams and their numbers are gone
    await eventually(() => b.semantic.size === 0 && (b.semantic.stats().replication?.resyncs ?? 0) >= 1, 15_000, 'b emptied');
    await eventually(() => a.semantic.size === 0, 15_000, 'a emptied');
    const y = chat('written after the restart');
    await eventually(
      async () =>
        write(a, y).then(
          () => true,
          () => false,
        ),
      10_000,
      'L2 back',
    );
    await eventually(async () => (await b.semantic.get(y.key)) !== undefined, 10_000, 'follows again');
  }, 40_000);

  it('a Redis restored from an older snapshot: followers notice it went back and follow the restored L2', async () => {
    const own = await startRedisServer();
    cleanups.push(() => own.stop());
    const prefix = uniqueKeyPrefix('feed-restored');
    const a = await node(prefix, { url: own.url });
    const b = await node(prefix, { url: own.url });
    const [x1, x2] = [chat('first saved answer'), chat('second saved answer')];
    for (const x of [x1, x2]) await write(a, x);
    await eventually(() => b.semantic.size === 2);
    const admin = new Redis(own.url);
    await admin.save(); // the RDB the server comes back from
    admin.disconnect();
    // After the snapshot: one more entry, and a delete.
    const y = chat('written after the snapshot');
    await write(a, y);
    await a.semantic.delete(x1.key);
    await eventually(async () => b.semantic.size === 2 && (await b.semantic.get(y.key)) !== undefined);
    await own.restart(); // loads the RDB: streams and L2 as they were at save()
    await eventually(
      () => Promise.resolve((b.semantic.stats().replication?.resyncs ?? 0) >= 1 && (a.semantic.stats().replication?.resyncs ?? 0) >= 1),
      15_000,
      'both re-synchronised',
    );
    for (const n of [a, b]) {
      // L2 lost `y` with the restore: the indexes drop it. `x1` is back in the restored L2, but its
      // delete was applied here within the last minute: it stays out. `x2` is kept.
      await eventually(async () => (await n.semantic.get(y.key)) === undefined, 5_000, 'y dropped');
      expect(await n.semantic.get(x1.key)).toBeUndefined();
      expect(await n.semantic.get(x2.key)).toBeDefined();
    }
    const z = chat('written after the restore');
    await eventually(
      async () =>
        write(a, z).then(
          () => true,
          () => false,
        ),
      10_000,
      'L2 back',
    );
    await eventually(async () => (await b.semantic.get(z.key)) !== undefined, 10_000, 'follows again');
  }, 40_000);

  it("refuses malformed records and entries filed under another tenant's key, and keeps following", async () => {
    const prefix = uniqueKeyPrefix('feed-hostile');
    const a = await node(prefix, { feed: { streams: 1 } });
    const b = await node(prefix, { feed: { streams: 1 } });
    const key = a.feed.keys[0]!;
    const last = async () => {
      const r = await raw.xrevrange(key, '+', '-', 'COUNT', 1);
      return r.length ? Number(r[0]![1][1]) : 0;
    };
    // Garbage in the numbered sequence: skipped, counted, no gap.
    await raw.xadd(key, '*', 'n', String((await last()) + 1), 'o', 'intruder', 'm', 'not a record');
    // A well-formed put whose key id names tenant "victim" but whose scope is "attacker".
    const victim = chat('victim question', resolveScope('victim'));
    const forged = {
      type: 'put',
      at: Date.now(),
      key: { ...victim.key, scope: resolveScope('attacker') },
      entry: victim.entry,
      embedder: { id: b.embedder.id, dimensions: 64 },
    };
    const json = Buffer.from(JSON.stringify(forged));
    const rec = Buffer.alloc(5 + json.length);
    rec[0] = 1;
    rec.writeUInt32BE(json.length, 1);
    json.copy(rec, 5);
    await raw.xadd(key, '*', 'n', String((await last()) + 1), 'o', 'intruder', 'm', rec);
    const ok = chat('a real write after them');
    await write(a, ok);
    await eventually(async () => (await b.semantic.get(ok.key)) !== undefined);
    expect(await b.semantic.get(victim.key)).toBeUndefined();
    expect(b.semantic.size).toBe(1);
    expect(b.feed.stats()).toMatchObject({ decodeErrors: 1, gaps: 0 });
    expect(b.semantic.stats().replication?.rejected).toBe(1);
  });

  it('Redis paused: lookups answer from the local index at once, writes are held and sent when it resumes', async () => {
    const own = await startRedisServer();
    cleanups.push(async () => {
      own.resume();
      await own.stop();
    });
    const prefix = uniqueKeyPrefix('feed-pause');
    const a = await node(prefix, { url: own.url });
    const b = await node(prefix, { url: own.url });
    const x = chat('before the pause');
    await write(a, x);
    await eventually(async () => (await b.semantic.get(x.key)) !== undefined);
    own.pause();
    try {
      const during = chat('written during the pause');
      await a.semantic.set(during.key, during.entry);
      const t0 = Date.now();
      for (let i = 0; i < 20; i++) expect((await b.semantic.search(chat('before the pause').query)).hit?.key.id).toBe(x.key.id);
      expect(Date.now() - t0).toBeLessThan(2_000); // no lookup waits for Redis
      await sleep(1_500);
      expect(a.feed.stats().buffered).toBeGreaterThan(0);
      own.resume();
      await eventually(async () => (await b.semantic.get(during.key)) !== undefined, 15_000, 'held write delivered');
      expect(b.semantic.stats().replication?.resyncs).toBe(0);
    } finally {
      own.resume();
    }
  }, 40_000);

  it('a full buffer drops puts first and folds invalidations into scope clears (never drops one)', async () => {
    const own = await startRedisServer();
    cleanups.push(async () => {
      own.resume();
      await own.stop();
    });
    const prefix = uniqueKeyPrefix('feed-full');
    const a = await node(prefix, { url: own.url, feed: { maxBuffered: 10, streams: 1 } });
    const b = await node(prefix, { url: own.url, feed: { streams: 1 } });
    const s = resolveScope('full');
    const held = chat('held by b before', s);
    await write(a, held);
    await eventually(async () => (await b.semantic.get(held.key)) !== undefined);
    own.pause();
    try {
      for (let i = 0; i < 15; i++) {
        const x = chat(`put number ${i}`, s);
        await a.semantic.set(x.key, x.entry);
      }
      for (let i = 0; i < 15; i++) await a.semantic.deleteByTag(`tag-${i}`, s);
      await a.semantic.delete(held.key);
      const st = a.feed.stats();
      expect(st.dropped).toBeGreaterThan(0);
      expect(st.collapsed).toBeGreaterThan(0);
      expect(st.buffered).toBeLessThanOrEqual(10);
      own.resume();
      // The folded clear of the scope removes what b held (a put of it may be among the dropped).
      await eventually(async () => (await b.semantic.get(held.key)) === undefined, 15_000, 'invalidation delivered');
    } finally {
      own.resume();
    }
  }, 40_000);

  it('checks its options', () => {
    const layer = new RedisLayer({ url: server.url });
    cleanups.push(() => layer.close());
    expect(() => new RedisSemanticFeed({ layer, streams: 0 })).toThrow(/streams/);
    expect(() => new RedisSemanticFeed({ layer, maxLength: 1.5 })).toThrow(/maxLength/);
    expect(() => new RedisSemanticFeed({ layer, blockMs: 0 })).toThrow(/blockMs/);
    expect(() => new RedisSemanticFeed({ layer, batchMs: -1 })).toThrow(/batchMs/);
    expect(() => new RedisSemanticFeed({ layer, batchMs: 0 })).not.toThrow();
    expect(() => new RedisSemanticFeed({ layer, bogus: 1 } as never)).toThrow(/unknown RedisSemanticFeed option "bogus"/);
    expect(() => new RedisSemanticFeed({ layer: {} as never })).toThrow(/RedisLayer/);
    expect(new RedisSemanticFeed({ layer, streams: 3 }).keys).toHaveLength(3);
  });
});
