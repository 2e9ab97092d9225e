// The semantic fleet on a Redis Cluster of 3 masters with a replica each, through a failover
// (kill -9 of the master holding a feed stream; its replica is promoted).
import { spawn } from 'node:child_process';
import { type RedisServerHandle, freePort, rawRedisCommand, startRedisServer, uniqueKeyPrefix } from '@strata-cache/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisLayer } from '../src/index.js';
import { keySlot, streamKeys } from '../src/feed-streams.js';
import { RedisSemanticFeed } from '../src/semantic-feed.js';
import { FleetProcess, buildPackage, eventually, sleep } from './fleet-helpers.js';

function redisCli(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('redis-cli', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`redis-cli ${args.join(' ')}: exit ${code}\n${out}`))));
  });
}

const clusterOk = async (port: number) => (await rawRedisCommand({ port }, ['CLUSTER', 'INFO']).catch(() => '')).includes('cluster_state:ok');

/** Masters and the slot ranges they own, from one live node's view. */
async function masters(port: number): Promise<Array<{ port: number; ranges: Array<[number, number]> }>> {
  const text = await rawRedisCommand({ port }, ['CLUSTER', 'NODES']);
  const body = text.slice(text.indexOf('\r\n') + 2);
  const out: Array<{ port: number; ranges: Array<[number, number]> }> = [];
  for (const line of body.split('\n')) {
    const f = line.trim().split(' ');
    if (f.length < 8 || !f[2]!.includes('master') || f[2]!.includes('fail')) continue;
    const p = Number(f[1]!.split(':')[1]!.split('@')[0]);
    const ranges = f
      .slice(8)
      .filter((r) => /^\d/.test(r))
      .map((r) => r.split('-').map(Number) as [number, number]);
    if (ranges.length > 0) out.push({ port: p, ranges: ranges.map(([a, b]) => [a, b ?? a]) });
  }
  return out;
}

let servers: RedisServerHandle[] = [];
let nodes: Array<{ host: string; port: number }> = [];

beforeAll(async () => {
  buildPackage();
  for (let i = 0; i < 6; i++) {
    const port = await freePort({ busOffset: 10_000 });
    servers.push(
      await startRedisServer({ port, args: ['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '1000'] }),
    );
  }
  await redisCli(['--cluster', 'create', ...servers.map((s) => `127.0.0.1:${s.port}`), '--cluster-replicas', '1', '--cluster-yes']);
  for (const s of servers) await eventually(() => clusterOk(s.port), Boolean, 30_000, `cluster node ${s.port} ok`);
  // Replicas must have synced before anything relies on them.
  await eventually(
    async () =>
      (await Promise.all(servers.map((s) => rawRedisCommand({ port: s.port }, ['INFO', 'replication'])))).filter((t) => t.includes('master_link_status:up'))
        .length,
    (n) => n === 3,
    30_000,
    'replicas synced',
  );
  nodes = (await masters(servers[0]!.port)).map((m) => ({ host: '127.0.0.1', port: m.port }));
}, 120_000);

afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  servers = [];
});

describe('semantic fleet on a Redis Cluster (3 masters, 3 replicas)', () => {
  it('its streams are spread over the masters', async () => {
    const layer = new RedisLayer({ cluster: { nodes } });
    try {
      const feed = new RedisSemanticFeed({ layer });
      const ms = await masters(servers[0]!.port);
      const owner = (slot: number) => ms.find((m) => m.ranges.some(([a, b]) => slot >= a && slot <= b))!.port;
      const owners = new Set(feed.keys.map((k) => owner(keySlot(/\{(.*)\}/.exec(k)![1]!))));
      expect(owners.size).toBe(3);
    } finally {
      await layer.close();
    }
  });

  it('replicates across processes, and a master failover loses nothing that had converged', async () => {
    const prefix = uniqueKeyPrefix('fleet-cluster');
    const a = await FleetProcess.start({ cluster: nodes, prefix });
    const b = await FleetProcess.start({ cluster: nodes, prefix });
    try {
      const tenants = ['acme', 'globex', 'initech', 'umbrella', 'hooli', 'stark'];
      const store = (i: number, phase: string) =>
        a.call('store', { text: `${phase} question ${i} for the cluster`, tenant: tenants[i % tenants.length], value: `${phase} ${i}` });
      const before: string[] = [];
      for (let i = 0; i < 60; i++) before.push((await store(i, 'before')).key);
      await eventually(
        () => b.call('stats'),
        (s) => before.every((k) => s.keys.includes(k)),
        20_000,
        'converged before the failover',
      );
      expect((await b.call('lookup', { text: 'before question 7 for the cluster', tenant: tenants[1] })).hit).toBe(true);
      await sleep(500); // replicas have what their masters acknowledged
      // kill -9 the master that holds the first stream; its replica takes over.
      const ms = await masters(servers[0]!.port);
      const slot = keySlot(/\{(.*)\}/.exec(streamKeys(prefix, 4)[0]!)![1]!);
      const victimPort = ms.find((m) => m.ranges.some(([x, y]) => slot >= x && slot <= y))!.port;
      const victim = servers.find((s) => s.port === victimPort)!;
      await victim.kill9();
      // Writes keep coming during the failover.
      for (let i = 0; i < 30; i++) {
        await store(i, 'during');
        await sleep(50);
      }
      const alive = servers.find((s) => s !== victim)!;
      await eventually(() => clusterOk(alive.port), Boolean, 30_000, 'cluster ok after the failover');
      const after: string[] = [];
      for (let i = 0; i < 20; i++)
        after.push(
          (
            await eventually(
              () => store(i, 'after'),
              (r) => r.stored === true,
              10_000,
              'store after failover',
            )
          ).key,
        );
      const final = await eventually(
        () => Promise.all([a.call('stats'), b.call('stats')]),
        ([sa, sb]) => [...before, ...after].every((k) => sa.keys.includes(k) && sb.keys.includes(k)),
        30_000,
        'nothing converged lost, new writes replicated',
      );
      // And nothing in B that A does not hold (no entry a purge or gap should have removed).
      const [sa, sb] = final;
      expect(sb.keys.filter((k: string) => !sa.keys.includes(k))).toEqual([]);
      expect((await b.call('lookup', { text: 'after question 3 for the cluster', tenant: tenants[3] })).hit).toBe(true);
    } finally {
      await a.close();
      await b.close();
    }
  }, 180_000);
});
