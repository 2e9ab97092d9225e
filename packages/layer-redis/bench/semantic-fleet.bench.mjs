// Semantic fleet benchmark: one writer and 3 followers (separate processes) on one redis-server
// this script starts, replicating through RedisSemanticFeed.
//  1. lag at a paced rate (default 1,000 semantic writes/s): from the writer's set() call to the
//     moment the entry is in each follower's index — beside the transport floor measured in the
//     same run (raw XADD → XREAD BLOCK of same-size payloads, no layer);
//  2. write throughput unpaced, with replication and without (same writer, same entries);
//  3. CPU per replicated entry (each follower, the writer, Redis) and memory per entry per
//     process (follower heap + index; Redis stream bytes per record).
//
//   pnpm --filter @strata-cache/layer-redis bench:fleet   (writes <repo>/bench/results/semantic-fleet.json + .md)
//   BENCH_RATE=1000 BENCH_SECONDS=10 BENCH_DIMS=512 ...   (defaults)
import { fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rawRedisCommand, startRedisServer } from '@strata-cache/test-utils';
import { Redis } from 'ioredis';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..', '..');
const RATE = Number(process.env.BENCH_RATE ?? 1_000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const DIMS = Number(process.env.BENCH_DIMS ?? 512);
const FOLLOWERS = Number(process.env.BENCH_FOLLOWERS ?? 3);
const PACED = RATE * SECONDS;
const UNPACED = Number(process.env.BENCH_UNPACED ?? 10_000);

const round = (x, d = 2) => Number(x.toFixed(d));
const pct = (xs, p) => {
  const s = Float64Array.from(xs).sort();
  return s.length ? s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] : NaN;
};
const dist = (xs) => ({ n: xs.length, p50: round(pct(xs, 50)), p90: round(pct(xs, 90)), p99: round(pct(xs, 99)), max: round(pct(xs, 100)) });

function child(args) {
  const c = fork(join(here, 'fleet-node.mjs'), args, { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const inbox = [];
  const waiters = [];
  c.on('message', (m) => {
    const w = waiters.findIndex((x) => x.type === m.type);
    if (w >= 0) waiters.splice(w, 1)[0].resolve(m);
    else inbox.push(m);
  });
  return {
    proc: c,
    send: (m) => c.send(m),
    next(type) {
      const i = inbox.findIndex((m) => m.type === type);
      if (i >= 0) return Promise.resolve(inbox.splice(i, 1)[0]);
      return new Promise((resolve) => waiters.push({ type, resolve }));
    },
  };
}

async function redisCpu(port) {
  const info = await rawRedisCommand({ port }, ['INFO', 'cpu']);
  const v = (k) => Number(new RegExp(`${k}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return (v('used_cpu_user') + v('used_cpu_sys')) * 1_000;
}

async function main() {
  const server = await startRedisServer();
  const port = server.port;
  const prefix = `bench-fleet-${process.pid}`;
  const results = { startedAt: new Date().toISOString(), machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, loadavg: os.loadavg().map((x) => round(x)) }, settings: { rate: RATE, seconds: SECONDS, dims: DIMS, followers: FOLLOWERS, tenants: 8, streams: 4 } };
  try {
    // ---- transport floor
    const bare = child(['bare', server.url, prefix, String(DIMS)]);
    await bare.next('ready');
    bare.send({ type: 'run', count: Math.min(PACED, 5_000), rate: RATE, bytes: DIMS * 4 + 900 });
    const floor = await bare.next('done');
    results.floor = dist(floor.lags);
    console.error(`transport floor (raw XADD → XREAD BLOCK, ${DIMS * 4 + 900} B): p50 ${results.floor.p50} ms, p99 ${results.floor.p99} ms`);

    // ---- fleet
    const writer = child(['writer', server.url, prefix, String(DIMS), 'on']);
    const followers = Array.from({ length: FOLLOWERS }, () => child(['follower', server.url, prefix, String(DIMS), 'on']));
    await Promise.all([writer, ...followers].map((c) => c.next('ready')));
    const phase = async (name) => {
      for (const c of [writer, ...followers]) c.send({ type: 'phase', phase: name });
      await Promise.all([writer, ...followers].map((c) => c.next('ack')));
    };

    await phase('paced');
    const cpu0 = await redisCpu(port);
    writer.send({ type: 'write', count: PACED, offset: 0, rate: RATE, phase: 'paced' });
    const paced = await writer.next('written');
    await new Promise((r) => setTimeout(r, 1_000));
    const redisPacedMs = (await redisCpu(port)) - cpu0;
    for (const f of followers) f.send({ type: 'report' });
    const pacedReports = await Promise.all(followers.map((f) => f.next('report')));
    const pacedLags = pacedReports.flatMap((r) => r.lags.map((l) => l.ms));
    results.paced = {
      writes: PACED,
      achievedPerSecond: round(PACED / (paced.wroteMs / 1_000)),
      lagMs: dist(pacedLags),
      lagVsFloor: { p50: round(pct(pacedLags, 50) / results.floor.p50), p99: round(pct(pacedLags, 99) / results.floor.p99) },
      appliedPerFollower: pacedReports.map((r) => r.applied),
      cpuPerEntryMs: {
        followers: pacedReports.map((r) => round(r.cpuMs / Math.max(1, r.applied), 4)),
        writer: round(paced.cpuMs / PACED, 4),
        redis: round(redisPacedMs / PACED, 4),
      },
      writerFeed: paced.feed,
    };
    console.error(`paced ${RATE}/s: lag p50 ${results.paced.lagMs.p50} ms, p99 ${results.paced.lagMs.p99} ms, max ${results.paced.lagMs.max} ms`);

    // ---- unpaced: throughput with replication, and how fast followers keep up
    await phase('unpaced');
    writer.send({ type: 'write', count: UNPACED, offset: PACED, rate: 0, phase: 'unpaced' });
    const unpaced = await writer.next('written');
    // Followers done when they hold every entry.
    const total = PACED + UNPACED;
    let reports;
    for (let i = 0; i < 600; i++) {
      for (const f of followers) f.send({ type: 'report' });
      reports = await Promise.all(followers.map((f) => f.next('report')));
      if (reports.every((r) => r.entries >= total)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const unpacedLags = reports.flatMap((r) => r.lags.map((l) => l.ms));
    results.unpaced = {
      writes: UNPACED,
      writesPerSecond: round(UNPACED / (unpaced.wroteMs / 1_000)),
      appendedPerSecond: round(UNPACED / (unpaced.sentMs / 1_000)),
      followersHoldAll: reports.every((r) => r.entries >= total),
      lagMs: dist(unpacedLags),
    };

    // ---- memory per entry per process
    const redisClient = new Redis(server.url);
    let streamBytes = 0;
    let streamLen = 0;
    for (const key of await redisClient.keys(`${prefix}:sfeed:*`)) {
      streamBytes += Number(await redisClient.call('MEMORY', 'USAGE', key, 'SAMPLES', '0'));
      streamLen += Number(await redisClient.xlen(key));
    }
    redisClient.disconnect();
    const r0 = reports[0];
    results.memory = {
      entries: r0.entries,
      followerLiveBytesPerEntry: round((r0.mem.heapUsed - r0.base.heapUsed + (r0.mem.arrayBuffers - r0.base.arrayBuffers) + r0.stats.indexBytes) / r0.entries, 0),
      followerRssBytesPerEntry: round((r0.mem.rss - r0.base.rss) / r0.entries, 0),
      followerIndexBytesPerEntry: round(r0.stats.indexBytes / r0.entries, 0),
      graphPartitions: r0.stats.graphPartitions,
      redisStreamBytesPerRecord: round(streamBytes / Math.max(1, streamLen), 0),
      redisStreamRecords: streamLen,
    };

    // ---- baseline writer: the same writes without replication, in this run
    const solo = child(['writer', server.url, `${prefix}-solo`, String(DIMS), 'off']);
    await solo.next('ready');
    solo.send({ type: 'write', count: UNPACED, offset: 0, rate: 0, phase: 'solo' });
    const s = await solo.next('written');
    results.unpaced.withoutReplication = { writesPerSecond: round(UNPACED / (s.wroteMs / 1_000)), cpuPerWriteMs: round(s.cpuMs / UNPACED, 4) };
    results.unpaced.throughputRatio = round(results.unpaced.writesPerSecond / results.unpaced.withoutReplication.writesPerSecond);
    results.unpaced.writerCpuPerWriteMs = round(unpaced.cpuMs / UNPACED, 4);
    solo.send({ type: 'close' });
    for (const c of [writer, ...followers]) c.send({ type: 'close' });
    await new Promise((r) => setTimeout(r, 1_000));
  } finally {
    await server.stop();
  }
  results.finishedAt = new Date().toISOString();
  const dir = join(repo, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'semantic-fleet.json'), JSON.stringify(results, null, 2) + '\n');
  writeFileSync(join(dir, 'semantic-fleet.md'), markdown(results));
  console.log(markdown(results));
}

function markdown(r) {
  const p = r.paced;
  const u = r.unpaced;
  const m = r.memory;
  return `# Semantic fleet: replication through Redis Streams

\`pnpm --filter @strata-cache/layer-redis bench:fleet\` — ${r.startedAt}. One writer and ${r.settings.followers} followers, each its own
process (SemanticLayer + RedisSemanticFeed, ${r.settings.dims}-d vectors, ${r.settings.tenants} tenants over ${r.settings.streams} streams), one
redis-server on loopback; ${r.machine.cpus} × ${r.machine.model}, Node ${r.machine.node}, load average at start ${r.machine.loadavg.join(' / ')}.
Lag = from the writer's \`set()\` call to the entry being in a follower's index (every put, every follower).

## Lag at ${r.settings.rate} semantic writes/s (${p.writes} writes, achieved ${p.achievedPerSecond}/s)

| | p50 | p90 | p99 | max |
|---|---:|---:|---:|---:|
| replication (writer set() → follower index) | ${p.lagMs.p50} ms | ${p.lagMs.p90} ms | ${p.lagMs.p99} ms | ${p.lagMs.max} ms |
| transport floor (raw XADD → XREAD BLOCK, same bytes, same rate) | ${r.floor.p50} ms | ${r.floor.p90} ms | ${r.floor.p99} ms | ${r.floor.max} ms |
| ratio | ${p.lagVsFloor.p50}× | | ${p.lagVsFloor.p99}× | |

Target p99 ≤ 100 ms: **${p.lagMs.p99 <= 100 ? 'met' : 'NOT met'}** (${p.lagMs.p99} ms). Entries applied per follower: ${p.appliedPerFollower.join(', ')}.

## Throughput (${u.writes} writes as fast as the writer takes them)

| | writes/s | writer CPU per write |
|---|---:|---:|
| with replication | ${u.writesPerSecond} (appended to Redis: ${u.appendedPerSecond}/s) | ${u.writerCpuPerWriteMs} ms |
| without replication (same writer, same run) | ${u.withoutReplication.writesPerSecond} | ${u.withoutReplication.cpuPerWriteMs} ms |
| ratio | ${u.throughputRatio}× | |

Followers held every entry afterwards: ${u.followersHoldAll ? 'yes' : 'NO'}; lag while catching up: p50 ${u.lagMs.p50} ms, p99 ${u.lagMs.p99} ms, max ${u.lagMs.max} ms.

## CPU per replicated entry (paced phase)

| process | CPU per entry |
|---|---:|
| each follower (decode + index, XREAD loop included) | ${p.cpuPerEntryMs.followers.map((x) => `${x} ms`).join(', ')} |
| writer (embedding + index + encode + append) | ${p.cpuPerEntryMs.writer} ms |
| redis-server (append script + serving ${r.settings.followers} readers) | ${p.cpuPerEntryMs.redis} ms |

## Memory per entry per process (${m.entries} entries)

| | bytes per entry |
|---|---:|
| follower, live (V8 heap + vectors + graphs) | ${m.followerLiveBytesPerEntry} |
| follower, RSS growth | ${m.followerRssBytesPerEntry} |
| of which the index (vector + graph links) | ${m.followerIndexBytesPerEntry} |
| Redis, per stream record (${m.redisStreamRecords} records kept) | ${m.redisStreamBytesPerRecord} |

Every process holds every entry it replicates (${m.graphPartitions} HNSW partitions here); a partition filter
(\`replication.accept\`) lets a process hold only the tenants it serves. Redis keeps at most
streams × maxLength records (4 × 10,000 by default: ≈ ${round((4 * 10_000 * m.redisStreamBytesPerRecord) / 2 ** 20, 0)} MiB at this record size).
`;
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
