// A semantic fleet of real processes on real redis-servers: three processes, each
// MultiLayerCache over [RedisLayer, SemanticLayer + RedisSemanticFeed] with the invalidation bus.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type RedisServerHandle, startRedisServer, uniqueKeyPrefix } from '@strata-cache/test-utils';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FleetProcess, type NodeConfig, buildPackage, eventually, sleep } from './fleet-helpers.js';

let server: RedisServerHandle;
const procs: FleetProcess[] = [];
const dirs: string[] = [];

beforeAll(async () => {
  buildPackage();
  server = await startRedisServer();
}, 90_000);
afterEach(async () => {
  await Promise.all(procs.splice(0).map((p) => p.close()));
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});
afterAll(async () => {
  server?.resume();
  await server?.stop();
});

async function fleet(n: number, config: Omit<NodeConfig, 'url'> & { url?: string }): Promise<FleetProcess[]> {
  const out = await Promise.all(Array.from({ length: n }, () => FleetProcess.start({ url: server.url, ...config })));
  procs.push(...out);
  return out;
}

async function start(config: NodeConfig): Promise<FleetProcess> {
  const p = await FleetProcess.start(config);
  procs.push(p);
  return p;
}

const sameKeys = async (ps: FleetProcess[]) => {
  const all = await Promise.all(ps.map((p) => p.call('stats')));
  return { all, equal: all.every((s) => JSON.stringify(s.keys) === JSON.stringify(all[0]!.keys)) };
};

describe('a semantic fleet of three processes on one Redis', () => {
  it('a paraphrase stored through A is a semantic hit in B and C, whose embedders never see the stored texts', async () => {
    const [a, b, c] = await fleet(3, { prefix: uniqueKeyPrefix('fleet-hit') });
    const before = await Promise.all([b!, c!].map((p) => p.call('stats')));
    const texts = ['How do I reset my password?', 'Where can I download my invoices?', 'Can I change the email on my account?'];
    for (const text of texts) expect((await a!.call('store', { text, tenant: 'acme', value: `answer: ${text}` })).stored).toBe(true);
    await eventually(
      () => Promise.all([b!, c!].map((p) => p.call('stats'))),
      (ss) => ss.every((s) => s.size === 3),
      10_000,
      'replicated to B and C',
    );
    const after = await Promise.all([b!, c!].map((p) => p.call('stats')));
    // Replicated entries came with their vectors: the followers' embedders were not called.
    after.forEach((s, i) => expect(s.embedded).toBe(before[i]!.embedded));
    for (const p of [b!, c!]) {
      const r = await p.call('lookup', { text: 'how do i reset my password', tenant: 'acme' });
      expect(r).toMatchObject({ hit: true, layer: 'semantic', value: 'answer: How do I reset my password?' });
      expect(r.similarity).toBeGreaterThan(0.99);
      const r2 = await p.call('lookup', { text: 'where can i download my invoices', tenant: 'acme' });
      expect(r2).toMatchObject({ hit: true, layer: 'semantic' });
      // Isolation holds fleet-wide: another tenant asking the same never gets acme's answer.
      expect(await p.call('lookup', { text: 'how do i reset my password', tenant: 'globex' })).toEqual(expect.objectContaining({ hit: false }));
    }
    // Each follower embedded its own two acme lookups, nothing else (globex's partition is empty:
    // no embedding at all).
    const last = await Promise.all([b!, c!].map((p) => p.call('stats')));
    last.forEach((s, i) => expect(s.embedded - before[i]!.embedded).toBe(2));
  }, 60_000);

  it('a tag purge in A: B and C never serve the purged entries afterwards, also when the purge races a write (40 rounds)', async () => {
    const [a, b, c] = await fleet(3, { prefix: uniqueKeyPrefix('fleet-race') });
    const all = [a!, b!, c!];
    for (let round = 0; round < 40; round++) {
      const tag = `topic:${round}`;
      const stored = `what does plan ${round} cost per month`;
      const racing = `is plan ${round} billed yearly or monthly`;
      const { key: storedKey } = await a!.call('store', { text: stored, tenant: 'acme', tags: [tag], value: `old price ${round}` });
      await eventually(
        () => Promise.all([b!, c!].map((p) => p.call('l3', { keys: [storedKey] }))),
        (rs) => rs.every((r) => r.held.length === 1),
        10_000,
        `round ${round}: replicated`,
      );
      // B begins loading an answer with the same tag before the purge, and stores it while the
      // purge is on its way (its own bus message may or may not have arrived yet).
      const begun = await b!.call('begin', { handle: round, text: racing, tenant: 'acme', tags: [tag] });
      expect(begun.kind).toBe('load');
      const delayMs = (round * 7) % 12;
      const [, committed] = await Promise.all([
        a!.call('purgeTag', { tag, tenant: 'acme' }),
        b!.call('commit', { handle: round, value: `racing price ${round}`, delayMs }),
      ]);
      expect(['miss', 'bypass']).toContain(committed.status);
      // (In about a quarter of the rounds B stores the racing answer before its own bus message
      // arrives — `committed.stored` — so both sides of the race are exercised.)
      // Within the feed's lag no L3 of the fleet holds either entry, and none comes back.
      const keys = [storedKey, begun.key];
      const check = () => Promise.all(all.map((p) => p.call('l3', { keys, texts: [stored, racing], tenant: 'acme' })));
      await eventually(check, (rs) => rs.every((r) => r.held.length === 0 && r.found.length === 0), 5_000, `round ${round}: purged everywhere`);
      for (let i = 0; i < 3; i++) {
        await sleep(30);
        for (const r of await check()) expect(r).toEqual(expect.objectContaining({ held: [], found: [] }));
      }
    }
  }, 240_000);

  it('kill -9 of a follower mid-feed, then a restart: it converges (entry counts equal, every key present)', async () => {
    const prefix = uniqueKeyPrefix('fleet-kill');
    const dir = await mkdtemp(join(tmpdir(), 'strata-fleet-'));
    dirs.push(dir);
    const [a, b] = await fleet(2, { prefix });
    let c = await start({ url: server.url, prefix, persistDir: dir, snapshotIntervalMs: 200 });
    const writes = (from: number, to: number) =>
      (async () => {
        for (let i = from; i < to; i++) await a!.call('store', { text: `question number ${i} about the fleet`, tenant: `t${i % 3}`, value: `answer ${i}` });
      })();
    const first = writes(0, 300);
    await eventually(
      () => c.call('stats'),
      (s) => s.size >= 100,
      20_000,
      'c mid-feed',
    );
    await c.kill9();
    await first;
    c = await start({ url: server.url, prefix, persistDir: dir, snapshotIntervalMs: 200 });
    await writes(300, 400);
    const { all } = await eventually(
      () => sameKeys([a!, b!, c]),
      (r) => r.equal && r.all[0]!.size === 400,
      20_000,
      'converged',
    );
    expect(all.map((s) => s.size)).toEqual([400, 400, 400]);
    expect(new Set(all[2]!.keys).size).toBe(400); // no duplicates
    // It resumed from its snapshot's offset: no re-synchronisation, nothing re-embedded.
    expect(all[2]!.replication.resyncs).toBe(0);
    expect(all[2]!.embedded).toBe(0);
  }, 120_000);

  it('the same when its offset was trimmed away while it was down: it re-derives its index from L2', async () => {
    const prefix = uniqueKeyPrefix('fleet-trim');
    const dir = await mkdtemp(join(tmpdir(), 'strata-fleet-'));
    dirs.push(dir);
    const feed = { maxLength: 20, streams: 2 };
    const [a, b] = await fleet(2, { prefix, feed });
    let c = await start({ url: server.url, prefix, persistDir: dir, snapshotIntervalMs: 200, feed });
    for (let i = 0; i < 50; i++) await a!.call('store', { text: `early question ${i}`, tenant: 'acme', value: `answer ${i}` });
    await eventually(
      () => c.call('stats'),
      (s) => s.size === 50,
      20_000,
      'c caught up',
    );
    await sleep(400); // a snapshot with its offset
    await c.kill9();
    // While it is down: far more than the streams keep, and deletes it must not miss.
    for (let i = 50; i < 250; i++)
      await a!.call('store', { text: `later question ${i}`, tenant: i % 2 ? 'acme' : 'globex', value: `answer ${i}`, tags: i < 60 ? ['gone'] : [] });
    await a!.call('purgeTag', { tag: 'gone', tenant: 'acme' });
    await a!.call('purgeTag', { tag: 'gone', tenant: 'globex' });
    c = await start({ url: server.url, prefix, persistDir: dir, feed });
    const { all } = await eventually(
      () => sameKeys([a!, b!, c]),
      (r) => r.equal && r.all[0]!.size === 240,
      30_000,
      'converged after the gap',
    );
    expect(all.map((s) => s.size)).toEqual([240, 240, 240]);
    expect(all[2]!.replication.resyncs).toBeGreaterThanOrEqual(1);
    // Then it follows the streams again.
    await a!.call('store', { text: 'after the gap', tenant: 'acme', value: 'x' });
    await eventually(
      () => c.call('stats'),
      (s) => s.size === 241,
      10_000,
      'follows again',
    );
  }, 120_000);

  it('Redis SIGSTOPped, then down, then back empty, under load: 0 failed requests, replication resumes by itself', async () => {
    const own = await startRedisServer();
    try {
      const prefix = uniqueKeyPrefix('fleet-faults');
      const ps = await Promise.all([0, 1, 2].map(() => start({ url: own.url, prefix })));
      const pool = ['how do i reset my password', 'where are my invoices', 'how do i add a teammate', 'can i export my data', 'how do i delete my account'];
      const loads = ps.map((p, i) => p.call('load', { ms: 11_000, tenant: 'acme', pool: pool.map((t) => `${t} ${i}`) }, 60_000));
      await sleep(1_500);
      own.pause(); // hung: every command times out
      await sleep(2_000);
      own.resume();
      await sleep(1_500);
      await own.kill9(); // down: connections refused
      await sleep(2_000);
      await own.restart(); // back, empty: every index drops what it held, then follows again
      const results = await Promise.all(loads);
      for (const r of results) {
        expect(r.failed).toBe(0);
        expect(r.requests).toBeGreaterThan(100);
      }
      // Replication resumed: a write in one process reaches the others.
      await eventually(
        () => ps[0]!.call('store', { text: 'written after the faults', tenant: 'acme', value: 'fresh' }),
        (r) => r.stored === true,
        10_000,
        'L2 back',
      );
      for (const p of ps.slice(1)) {
        await eventually(
          () => p.call('lookup', { text: 'written after the faults', tenant: 'acme' }),
          (r) => r.hit === true,
          15_000,
          'replicated after the faults',
        );
      }
      const stats = await Promise.all(ps.map((p) => p.call('stats')));
      for (const s of stats) expect(s.replication.resyncs).toBeGreaterThanOrEqual(1);
    } finally {
      own.resume();
      await own.stop();
    }
  }, 120_000);
});
