import { execFileSync } from 'node:child_process';
import { copyFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type RedisClusterHandle,
  type RedisServerHandle,
  type TaggedChild,
  spawnTaggedChild,
  startRedisCluster,
  startRedisServer,
  uniqueKeyPrefix,
} from '@strata-cache/test-utils';
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * A purge issued while Redis is paused, down, failing over, or later restored from an older
 * snapshot: application processes (children on the built packages, [MemoryLayer, RedisLayer]
 * with the Redis bus) read a steady load the whole time; the data changes, one process purges.
 *
 * A read is stale when it returns a version older than the one its process knew was current
 * when the read began — the purging process from the moment it called the purge, the others
 * from the moment the purge reached them (bus message, or loaded from Redis). The checks: 0
 * stale reads in every process, every process learns of the purge, and probes of every key at
 * 0.1 s, 6 s and 12 s after the purge is done (Redis back and the purge stored) are all fresh.
 */

const here = dirname(fileURLToPath(import.meta.url));
const pkg = join(here, '..');
const script = join(here, 'fixtures', 'purge-node.mjs');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const KEYS = 40;
const DELAYS = (process.env.STRATA_PROBE_DELAYS ?? '100,6000,12000').split(',').map(Number);

beforeAll(() => {
  // The children import the built package, so build it from the current sources.
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: pkg, stdio: 'inherit' });
}, 60_000);

interface Node {
  readonly child: TaggedChild;
  send(op: string, args?: Record<string, unknown>): void;
  /** The next `tag` line after those already consumed. */
  next(tag: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  ask(op: string, tag: string, args?: Record<string, unknown>, timeoutMs?: number): Promise<Record<string, unknown>>;
}

function startNode(config: Record<string, unknown>): Node {
  const child = spawnTaggedChild(script, [JSON.stringify({ keys: KEYS, ...config })], { cwd: pkg });
  const used = new Map<string, number>();
  const node: Node = {
    child,
    send: (op, args = {}) => void child.proc.stdin!.write(JSON.stringify({ op, ...args }) + '\n'),
    async next(tag, timeoutMs = 30_000) {
      const n = (used.get(tag) ?? 0) + 1;
      const lines = await child.waitFor(tag, n, timeoutMs);
      used.set(tag, n);
      return lines[n - 1]!.data;
    },
    async ask(op, tag, args = {}, timeoutMs) {
      node.send(op, args);
      return node.next(tag, timeoutMs);
    },
  };
  return node;
}

async function until(what: string, check: () => Promise<boolean>, ms: number): Promise<number> {
  const t0 = Date.now();
  while (!(await check())) {
    if (Date.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(50);
  }
  return Date.now() - t0;
}

/** Nothing of the purge is left to do in the purging process (an older core has no status: done). */
async function purgeDone(node: Node): Promise<boolean> {
  const s = (await node.ask('status', 'STATUS')) as { pending?: Record<string, number> };
  return !s.pending || Object.values(s.pending).every((n) => n === 0);
}

/** Probes every key in every process after each delay (from `from`), then checks every process's reads. */
async function checkAfter(nodes: Node[], from: number, label: string): Promise<Array<Record<string, unknown>>> {
  const probes: Array<Record<string, unknown>> = [];
  for (const d of DELAYS) {
    await sleep(Math.max(0, from + d - Date.now()));
    for (const [i, n] of nodes.entries()) probes.push({ node: i, delayMs: d, ...(await n.ask('probe', 'PROBE', { name: `${label}+${d}` })) });
  }
  for (const n of nodes) await n.ask('stop', 'STOPPED');
  const reports = await Promise.all(nodes.map((n) => n.ask('report', 'REPORT')));
  console.log(
    label,
    JSON.stringify({ probes: probes.map((p) => ({ node: p.node, delayMs: p.delayMs, stale: p.stale, versions: p.versions, layers: p.layers })), reports }),
  );
  for (const p of probes) {
    expect(p.stale, `${label}: probe of process ${p.node} at +${p.delayMs} ms`).toBe(0);
    expect(p.versions, `${label}: probe of process ${p.node} at +${p.delayMs} ms`).toEqual([2]);
  }
  for (const [i, r] of reports.entries()) {
    expect(r.required, `${label}: process ${i} learned of the purge`).toBe(2);
    expect(r.stale, `${label}: stale reads in process ${i} after it knew of the purge (${JSON.stringify(r.staleExamples)})`).toBe(0);
    expect(r.reads, `${label}: process ${i} kept serving`).toBeGreaterThan(0);
    expect(r.failed, `${label}: failed requests in process ${i}`).toBe(0);
  }
  return reports;
}

/** Fill every process (L1 and L2 hold version 1), start the load, and change the data. */
async function prepare(nodes: Node[]): Promise<void> {
  for (const n of nodes) await n.ask('fill', 'FILLED');
  for (const n of nodes) await n.ask('load', 'LOADING', { concurrency: 2 });
  await sleep(500);
}

async function changeData(nodes: Node[]): Promise<void> {
  for (const n of nodes) await n.ask('source', 'SOURCE', { version: 2 });
}

async function exitAll(nodes: Node[]): Promise<void> {
  await Promise.all(
    nodes.map(async (n) => {
      if (n.child.proc.exitCode !== null) return;
      n.send('exit');
      await Promise.race([n.child.exited, sleep(5_000)]);
      if (n.child.proc.exitCode === null) n.child.proc.kill('SIGKILL');
    }),
  );
}

describe('a purge is never lost: own redis-server, 2 application processes, load running', () => {
  const servers: RedisServerHandle[] = [];
  afterAll(async () => {
    for (const s of servers) await s.stop();
  });

  it('purge during SIGSTOP → 0 stale reads afterwards, at any delay', async () => {
    const server = await startRedisServer();
    servers.push(server);
    const prefix = uniqueKeyPrefix('sigstop');
    const nodes = [startNode({ url: server.url, prefix, name: 'A' }), startNode({ url: server.url, prefix, name: 'B' })];
    try {
      await Promise.all(nodes.map((n) => n.next('READY')));
      await prepare(nodes);
      server.pause();
      await sleep(1_500); // every breaker has opened
      await changeData(nodes);
      const purged = (await nodes[0]!.ask('purge', 'PURGED')) as { result: { unreached: string[]; pending: boolean; durable: boolean } };
      expect(purged.result).toMatchObject({ unreached: ['redis'], pending: true, durable: false });
      await sleep(2_000);
      server.resume();
      const back = Date.now();
      const ms = await until('the purge is stored and published', () => purgeDone(nodes[0]!), 15_000);
      console.log('sigstop: purge done', ms, 'ms after Redis resumed');
      await checkAfter(nodes, Date.now(), `sigstop (done ${Date.now() - back} ms after resume)`);
    } finally {
      server.resume();
      await exitAll(nodes);
    }
  }, 120_000);

  it('purge while Redis is down (kill -9), restarted from its RDB → 0 stale reads afterwards, at any delay', async () => {
    const server = await startRedisServer();
    servers.push(server);
    const raw = new Redis(server.url);
    const prefix = uniqueKeyPrefix('kill9');
    const nodes = [startNode({ url: server.url, prefix, name: 'A' }), startNode({ url: server.url, prefix, name: 'B' })];
    try {
      await Promise.all(nodes.map((n) => n.next('READY')));
      await prepare(nodes);
      await raw.save(); // the RDB the restart loads: version 1 everywhere, no watermark
      raw.disconnect();
      await server.kill9();
      await sleep(1_000);
      await changeData(nodes);
      const purged = (await nodes[0]!.ask('purge', 'PURGED')) as { result: { unreached: string[]; pending: boolean } };
      expect(purged.result).toMatchObject({ unreached: ['redis'], pending: true });
      await sleep(2_000);
      await server.restart();
      const back = Date.now();
      const ms = await until('the purge is stored and published', () => purgeDone(nodes[0]!), 15_000);
      console.log('kill9: purge done', ms, 'ms after Redis restarted');
      await checkAfter(nodes, Date.now(), `kill -9 + RDB (done ${Date.now() - back} ms after restart)`);
    } finally {
      raw.disconnect();
      await exitAll(nodes);
    }
  }, 120_000);

  it('Redis restored from a snapshot taken before the purge → 0 stale reads, in the processes that knew and in one started after', async () => {
    const server = await startRedisServer();
    servers.push(server);
    const raw = new Redis(server.url);
    const prefix = uniqueKeyPrefix('restore');
    const nodes = [startNode({ url: server.url, prefix, name: 'A' }), startNode({ url: server.url, prefix, name: 'B' })];
    try {
      await Promise.all(nodes.map((n) => n.next('READY')));
      await prepare(nodes);
      await raw.save();
      copyFileSync(join(server.dir, 'dump.rdb'), join(server.dir, 'before-purge.rdb'));
      await changeData(nodes);
      const purged = (await nodes[0]!.ask('purge', 'PURGED')) as { result: { unreached: string[]; durable: boolean } };
      expect(purged.result).toMatchObject({ unreached: [], durable: true });
      await nodes[1]!.next('KNOWN', 10_000);
      await sleep(1_000);
      raw.disconnect();
      await server.kill9();
      copyFileSync(join(server.dir, 'before-purge.rdb'), join(server.dir, 'dump.rdb'));
      await server.restart(); // version 1 everywhere again, and no watermark
      const back = Date.now();
      const late = startNode({ url: server.url, prefix, name: 'C' });
      nodes.push(late);
      // Every process that knew writes the watermark back (before C starts reading: C waits for it).
      const check = new Redis(server.url);
      await until(
        'the watermark is back in Redis',
        async () => (await check.keys(`${prefix}:wm:*`)).length > 0 && (await check.zcard(`${prefix}:wm:{${prefix}}:marks`)) > 0,
        10_000,
      );
      check.disconnect();
      await late.next('READY');
      await late.ask('source', 'SOURCE', { version: 2 });
      await late.ask('require', 'REQUIRED', { version: 2 });
      await late.ask('load', 'LOADING', { concurrency: 2 });
      await checkAfter(nodes, back, 'restore from an older snapshot');
    } finally {
      raw.disconnect();
      await exitAll(nodes);
    }
  }, 120_000);
});

describe('a purge is never lost: Redis Cluster (3 masters, 1 replica each), failover under load', () => {
  let cluster: RedisClusterHandle | undefined;
  afterAll(async () => cluster?.stop(), 30_000);

  it('purge while the master of the entries and of the watermarks fails over → 0 stale reads afterwards, at any delay', async () => {
    cluster = await startRedisCluster(3, { replicas: 1, args: ['--cluster-node-timeout', '1000'] });
    const probe = new Cluster([...cluster.nodes]);
    try {
      // The master of the default scope's slot, and a prefix whose watermark keys live there too.
      type Slots = Array<[number, number, [string, number, string], ...Array<[string, number, string]>]>;
      let slots: Slots = [];
      await until(
        'every master has its replica',
        async () => {
          slots = (await probe.cluster('SLOTS')) as unknown as Slots;
          return slots.length > 0 && slots.every((r) => r.length >= 4);
        },
        30_000,
      );
      for (const s of cluster.servers.slice(3)) {
        const r = new Redis(s.port);
        await until('replicas in sync', async () => /master_link_status:up/.test(await r.info('replication')), 30_000);
        r.disconnect();
      }
      const ownerOf = async (key: string) => {
        const slot = (await probe.cluster('KEYSLOT', key)) as number;
        const range = slots.find(([from, to]) => slot >= from && slot <= to)!;
        return { master: range[2][1], replica: range[3]![1] };
      };
      const target = await ownerOf('{default/default}');
      let prefix = '';
      for (let i = 0; !prefix; i++) {
        const p = uniqueKeyPrefix(`failover${i}`);
        if ((await ownerOf(`{${p}}`)).master === target.master) prefix = p;
      }
      const master = cluster.servers.find((s) => s.port === target.master)!;
      const nodesConf = cluster.nodes.map((n) => ({ host: n.host, port: n.port }));
      const nodes = [startNode({ cluster: nodesConf, prefix, name: 'A' }), startNode({ cluster: nodesConf, prefix, name: 'B' })];
      try {
        await Promise.all(nodes.map((n) => n.next('READY')));
        await prepare(nodes);
        await sleep(500); // replicated
        master.pause();
        await sleep(300);
        await changeData(nodes);
        const purged = (await nodes[0]!.ask('purge', 'PURGED')) as { result: { unreached: string[]; pending: boolean } };
        expect(purged.result).toMatchObject({ unreached: ['redis'], pending: true });
        // The replica takes over.
        const other = new Redis(target.replica);
        await until('the replica is promoted', async () => /role:master/.test(await other.info('replication')), 30_000);
        other.disconnect();
        const back = Date.now();
        master.resume(); // it rejoins as a replica
        const ms = await until('the purge is stored and published', () => purgeDone(nodes[0]!), 30_000);
        console.log('failover: purge done', ms, 'ms after the promotion');
        await checkAfter(nodes, Date.now(), `cluster failover (done ${Date.now() - back} ms after the promotion)`);
      } finally {
        master.resume();
        await exitAll(nodes);
      }
    } finally {
      probe.disconnect();
    }
  }, 180_000);
});
