// Semantic fleet benchmark: one writer and 3 followers (separate processes) on one redis-server
// this script starts, replicating through RedisSemanticFeed.
//  1. lag at a paced rate (default 1,000 semantic writes/s): from the writer's set() call to the
//     moment the entry is in each follower's index, with small partitions (exact search) and with
//     large ones (HNSW graphs: every process inserts into a graph) — beside the transport floor
//     measured in the same run (raw XADD → XREAD BLOCK of same-size payloads, no layer);
//  2. write throughput unpaced, with replication and without (same writer, same entries);
//  3. CPU per replicated entry (each follower, the writer, Redis) and memory per entry per
//     process (follower heap + index; Redis stream bytes per record).
//
//   pnpm --filter @strata-cache/layer-redis bench:fleet   (writes <repo>/bench/results/semantic-fleet.json + .md)
//   BENCH_RATE=1000 BENCH_SECONDS=10 BENCH_DIMS=512 ...   (defaults)
//   BENCH_BATCH_MS=5          the feed's batchMs in every process (default: the feed's default)
//   BENCH_PROFILE=/tmp/prof   writes a CPU profile of every child process there
//   BENCH_DUMP=/tmp/lags.tsv  writes every lag sample (phase, follower pid, sent at, lag, lag from publish)
import { fork } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
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
/** Small partitions: entries spread over many tenants (each partition stays under flatLimit, 1,024). */
const FLAT_TENANTS = 64;
/** Large partitions: a few tenants, each filled past flatLimit first so its partition is an HNSW graph. */
const GRAPH_TENANTS = 4;
const GRAPH_PREFILL = Number(process.env.BENCH_PREFILL ?? 1_200);
const GRAPH_WRITES = Number(process.env.BENCH_GRAPH_WRITES ?? 5_000);
/** A directory: every child process writes a V8 CPU profile there (\`--cpu-prof\`). */
const PROFILE = process.env.BENCH_PROFILE;
let forks = 0;
/** A file: every lag sample (phase, follower pid, sent at, lag, lag from publish) is written there. */
const DUMP = process.env.BENCH_DUMP;
const dumped = [];

const round = (x, d = 2) => Number(x.toFixed(d));
const pct = (xs, p) => {
  const s = Float64Array.from(xs).sort();
  return s.length ? s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] : NaN;
};
const dist = (xs) => ({ n: xs.length, p50: round(pct(xs, 50)), p90: round(pct(xs, 90)), p99: round(pct(xs, 99)), max: round(pct(xs, 100)) });

function child(args) {
  const execArgv = ['--expose-gc', ...(PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE}`, `--cpu-prof-name=${args[0]}-${++forks}.cpuprofile`] : [])];
  const c = fork(join(here, 'fleet-node.mjs'), args, { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
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
  const results = {
    startedAt: new Date().toISOString(),
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, loadavg: os.loadavg().map((x) => round(x)) },
    settings: {
      rate: RATE,
      seconds: SECONDS,
      dims: DIMS,
      followers: FOLLOWERS,
      streams: 4,
      batchMs: process.env.BENCH_BATCH_MS ? Number(process.env.BENCH_BATCH_MS) : 'default (5)',
      flatTenants: FLAT_TENANTS,
      graphTenants: GRAPH_TENANTS,
      graphPrefill: GRAPH_PREFILL,
    },
  };
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
    const all = [writer, ...followers];
    await Promise.all(all.map((c) => c.next('ready')));
    const phase = async (name) => {
      for (const c of all) c.send({ type: 'phase', phase: name });
      await Promise.all(all.map((c) => c.next('ack')));
    };
    const report = async (memory = false) => {
      for (const f of followers) f.send({ type: 'report', memory });
      return Promise.all(followers.map((f) => f.next('report')));
    };
    let written = 0;
    /** Waits until every follower holds `total` entries; resolves the last reports (lags of the wait included). */
    const caughtUp = async (total, graphs = 0) => {
      const lags = [];
      const fromPublish = [];
      for (let i = 0, done = false; i < 1_200; i++) {
        // Once every follower is there, one more report with memory figures (after a collection).
        const rs = await report(done);
        for (const r of rs) {
          for (const l of r.lags) {
            if (DUMP) dumped.push(`${l.phase}\t${r.pid}\t${round(l.at, 2)}\t${round(l.ms, 2)}\t${round(l.pub, 2)}`);
            lags.push(l.ms);
            fromPublish.push(l.pub);
          }
        }
        if (done) return { reports: rs, lags, fromPublish };
        done = rs.every((r) => r.entries >= total && r.stats.graphPartitions >= graphs && !(r.stats.pendingGraphInserts > 0));
        if (!done) await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`followers did not reach ${total} entries`);
    };
    const paced = async (name, count, tenants, group) => {
      await phase(name);
      const cpu0 = await redisCpu(port);
      writer.send({ type: 'write', count, offset: written, rate: RATE, phase: name, tenants, group });
      const w = await writer.next('written');
      written += count;
      const { reports, lags, fromPublish } = await caughtUp(written);
      const redisMs = (await redisCpu(port)) - cpu0;
      return {
        writes: count,
        achievedPerSecond: round(count / (w.wroteMs / 1_000)),
        lagMs: dist(lags),
        lagFromPublishMs: dist(fromPublish),
        lagVsFloor: { p50: round(pct(lags, 50) / results.floor.p50), p99: round(pct(lags, 99) / results.floor.p99) },
        cpuPerEntryMs: {
          followers: reports.map((r) => round(r.cpuMs / Math.max(1, r.applied), 4)),
          writer: round(w.cpuMs / count, 4),
          redis: round(redisMs / count, 4),
        },
        reports,
      };
    };
    const memoryOf = (before, after) => {
      const n = after.entries - (before?.entries ?? 0);
      const live = (m, st) => m.heapUsed + m.arrayBuffers + st.indexBytes;
      const b = before ? live(before.mem, before.stats) : live(after.base, { indexBytes: 0 });
      return {
        entries: n,
        liveBytesPerEntry: round((live(after.mem, after.stats) - b) / n, 0),
        rssBytesPerEntry: round((after.mem.rss - (before ? before.mem.rss : after.base.rss)) / n, 0),
        indexBytesPerEntry: round((after.stats.indexBytes - (before?.stats.indexBytes ?? 0)) / n, 0),
        graphPartitions: after.stats.graphPartitions,
      };
    };

    // 1. many small partitions (flat, exact search): the replication path itself
    const flat = await paced('flat', PACED, FLAT_TENANTS);
    console.error(
      `flat partitions, paced ${RATE}/s: lag p50 ${flat.lagMs.p50} ms, p99 ${flat.lagMs.p99} ms, max ${flat.lagMs.max} ms (from publish: p50 ${flat.lagFromPublishMs.p50}, p99 ${flat.lagFromPublishMs.p99}); follower CPU/entry ${flat.cpuPerEntryMs.followers.join(', ')} ms, writer ${flat.cpuPerEntryMs.writer} ms`,
    );

    // 2. throughput, as fast as the writer takes them (still flat partitions)
    await phase('unpaced');
    writer.send({ type: 'write', count: UNPACED, offset: written, rate: 0, phase: 'unpaced', tenants: FLAT_TENANTS });
    const unpaced = await writer.next('written');
    written += UNPACED;
    const u = await caughtUp(written);
    const afterFlat = u.reports[0];
    results.unpaced = {
      writes: UNPACED,
      writesPerSecond: round(UNPACED / (unpaced.wroteMs / 1_000)),
      appendedPerSecond: round(UNPACED / (unpaced.sentMs / 1_000)),
      lagMs: dist(u.lags),
      writerCpuPerWriteMs: round(unpaced.cpuMs / UNPACED, 4),
    };

    // 3. large partitions (HNSW graphs): every apply is also a graph insert in every process
    await phase('prefill');
    const prefill = GRAPH_TENANTS * GRAPH_PREFILL;
    writer.send({ type: 'write', count: prefill, offset: written, rate: 0, phase: 'prefill', tenants: GRAPH_TENANTS, group: 'graph' });
    await writer.next('written');
    written += prefill;
    // Every process's partitions are whole graphs before the measured writes (a partition that
    // crosses flatLimit builds its graph in slices, and points added to a graph wait in its tail
    // for their insert; the followers' and the writer's both).
    const pre = await caughtUp(written, GRAPH_TENANTS);
    for (let i = 0; i < 600; i++) {
      writer.send({ type: 'report' });
      const { stats } = await writer.next('report');
      if (stats.graphPartitions >= GRAPH_TENANTS && !(stats.pendingGraphInserts > 0)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const graph = await paced('graph', Math.min(PACED, GRAPH_WRITES), GRAPH_TENANTS, 'graph');
    console.error(
      `graph partitions, paced ${RATE}/s: lag p50 ${graph.lagMs.p50} ms, p99 ${graph.lagMs.p99} ms, max ${graph.lagMs.max} ms (from publish: p50 ${graph.lagFromPublishMs.p50}, p99 ${graph.lagFromPublishMs.p99}); follower CPU/entry ${graph.cpuPerEntryMs.followers.join(', ')} ms, writer ${graph.cpuPerEntryMs.writer} ms`,
    );

    // ---- memory per entry per process
    const redisClient = new Redis(server.url);
    let streamBytes = 0;
    let streamLen = 0;
    for (const key of await redisClient.keys(`${prefix}:sfeed:*`)) {
      streamBytes += Number(await redisClient.call('MEMORY', 'USAGE', key, 'SAMPLES', '0'));
      streamLen += Number(await redisClient.xlen(key));
    }
    redisClient.disconnect();
    results.memory = {
      flat: memoryOf(undefined, afterFlat),
      graph: memoryOf(pre.reports[0], graph.reports[0]),
      redisStreamBytesPerRecord: round(streamBytes / Math.max(1, streamLen), 0),
      redisStreamRecords: streamLen,
    };
    for (const r of [flat, graph]) delete r.reports;
    results.flat = flat;
    results.graph = graph;

    // ---- baseline writer: the same unpaced writes without replication, in this run
    const solo = child(['writer', server.url, `${prefix}-solo`, String(DIMS), 'off']);
    await solo.next('ready');
    solo.send({ type: 'write', count: UNPACED, offset: 0, rate: 0, phase: 'unpaced', tenants: FLAT_TENANTS });
    const s = await solo.next('written');
    results.unpaced.withoutReplication = { writesPerSecond: round(UNPACED / (s.wroteMs / 1_000)), cpuPerWriteMs: round(s.cpuMs / UNPACED, 4) };
    results.unpaced.throughputRatio = round(results.unpaced.writesPerSecond / results.unpaced.withoutReplication.writesPerSecond);
    results.unpaced.writerCpuRatio = round(results.unpaced.writerCpuPerWriteMs / results.unpaced.withoutReplication.cpuPerWriteMs);
    console.error(
      `unpaced: ${results.unpaced.writesPerSecond} writes/s with replication, ${results.unpaced.withoutReplication.writesPerSecond} without (${results.unpaced.throughputRatio}×); catch-up lag p99 ${results.unpaced.lagMs.p99} ms`,
    );
    solo.send({ type: 'close' });
    for (const c of all) c.send({ type: 'close' });
    await new Promise((r) => setTimeout(r, 1_000));
  } finally {
    await server.stop();
  }
  if (DUMP) writeFileSync(DUMP, `${dumped.join('\n')}\n`);
  results.finishedAt = new Date().toISOString();
  results.machine.loadavgAtEnd = os.loadavg().map((x) => round(x));
  const dir = join(repo, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'semantic-fleet.json'), JSON.stringify(results, null, 2) + '\n');
  writeFileSync(join(dir, 'semantic-fleet.md'), markdown(results));
  console.log(markdown(results));
}

function lagRow(label, l) {
  return `| ${label} | ${l.p50} ms | ${l.p90} ms | ${l.p99} ms | ${l.max} ms |`;
}

function markdown(r) {
  const f = r.flat;
  const g = r.graph;
  const u = r.unpaced;
  const m = r.memory;
  const cpuRow = (label, x) => `| ${label} | ${x.followers.map((v) => `${v} ms`).join(', ')} | ${x.writer} ms | ${x.redis} ms |`;
  return `# Semantic fleet: replication through Redis Streams

\`pnpm --filter @strata-cache/layer-redis bench:fleet\` — ${r.startedAt}. One writer and ${r.settings.followers} followers, each its own
process (SemanticLayer + RedisSemanticFeed, ${r.settings.dims}-d vectors, ${r.settings.streams} streams, \`batchMs\` ${r.settings.batchMs}), one redis-server on loopback;
${r.machine.cpus} × ${r.machine.model} shared with other work, Node ${r.machine.node}, load average ${r.machine.loadavg.join(' / ')} at the start,
${r.machine.loadavgAtEnd.join(' / ')} at the end. Lag = from the writer's \`set()\` call to the entry being in a follower's index
(every put, every follower; its embedding in the writer included); "from publish" = from the mutation's time in the writer
(after its embedding and indexing there; the writer's \`Date.now()\`, so ±1 ms). The writer builds its requests before its
paced window starts (until 2026-12-03 it built them inside it, fell behind schedule at once and sent the first hundreds
of writes of each phase as one burst, which dominated the lag tail); followers are polled without a forced garbage
collection until they have caught up (one at the end, for the memory figures), and the large-partition writes start
once every process's partitions are whole graphs (a partition crossing flatLimit builds its graph in slices; no point waits for its insert).
The README (Benchmark) compares this run with runs alternating the semantic layer before and after graph inserts
moved off the write path (2026-12-04), measured with this same script.

## Lag at ${r.settings.rate} semantic writes/s

| | p50 | p90 | p99 | max |
|---|---:|---:|---:|---:|
${lagRow(`small partitions (${r.settings.flatTenants} tenants, exact search): ${f.writes} writes, achieved ${f.achievedPerSecond}/s`, f.lagMs)}
${lagRow(`large partitions (${r.settings.graphTenants} tenants on HNSW graphs, ${r.settings.graphPrefill} entries each first): ${g.writes} writes, achieved ${g.achievedPerSecond}/s`, g.lagMs)}
${lagRow("small partitions, from the writer's publish", f.lagFromPublishMs)}
${lagRow("large partitions, from the writer's publish", g.lagFromPublishMs)}
${lagRow('transport floor (raw XADD → XREAD BLOCK of the same bytes, same rate, no layer)', r.floor)}

Small partitions vs the floor: ${f.lagVsFloor.p50}× at p50, ${f.lagVsFloor.p99}× at p99. Target p99 ≤ 100 ms: small partitions
**${f.lagMs.p99 <= 100 ? 'met' : 'NOT met'}** (${f.lagMs.p99} ms); large partitions **${g.lagMs.p99 <= 100 ? 'met' : 'NOT met'}** (${g.lagMs.p99} ms).

## CPU per replicated entry

| partitions | each follower (decode + apply + index, XREAD loop included) | writer (embed + index + encode + append) | redis-server |
|---|---|---:|---:|
${cpuRow('small (flat)', f.cpuPerEntryMs)}
${cpuRow('large (HNSW)', g.cpuPerEntryMs)}

A follower keeps up with a write rate while its CPU per entry × rate stays under the CPU it has.
On HNSW partitions every process pays a graph insert per entry (in a background turn, once the entry is already
findable from its partition's tail); ${r.settings.followers} followers and the writer on ${r.machine.cpus} shared cores then use most of
the CPU there is, so the lag there depends on what else the machine runs.

## Throughput (${u.writes} writes as fast as the writer takes them, small partitions)

| | writes/s | writer CPU per write |
|---|---:|---:|
| with replication (${r.settings.followers} followers running) | ${u.writesPerSecond} (appended to Redis: ${u.appendedPerSecond}/s) | ${u.writerCpuPerWriteMs} ms |
| without replication (same writer, same run, followers idle) | ${u.withoutReplication.writesPerSecond} | ${u.withoutReplication.cpuPerWriteMs} ms |
| ratio | ${u.throughputRatio}× | ${u.writerCpuRatio}× |

Followers' lag while catching up with that burst: p50 ${u.lagMs.p50} ms, p99 ${u.lagMs.p99} ms, max ${u.lagMs.max} ms.

## Memory per entry per process

| | small partitions (${m.flat.entries} entries) | large partitions (${m.graph.entries} more entries) |
|---|---:|---:|
| follower, live (V8 heap + vectors + graphs) | ${m.flat.liveBytesPerEntry} B | — |
| follower, RSS growth | ${m.flat.rssBytesPerEntry} B | ${m.graph.rssBytesPerEntry} B |
| of which the index (vector, graph links; estimated from the layout) | ${m.flat.indexBytesPerEntry} B | ${m.graph.indexBytesPerEntry} B |

(Large partitions: the graphs live outside the V8 heap, and a heap difference over a few thousand
entries written after others is dominated by garbage collection timing — RSS growth and the
index estimate are the figures to use; \`@strata-cache/layer-semantic\`'s own benchmark measures
memory per entry in one process in detail.)

Every process holds every entry it replicates (the writer too); a partition filter (\`replication.accept\`)
lets a process hold only the tenants it serves. Redis: ${m.redisStreamBytesPerRecord} B per stream record (${m.redisStreamRecords} kept);
at most streams × maxLength records (4 × 10,000 by default: ≈ ${round((4 * 10_000 * m.redisStreamBytesPerRecord) / 2 ** 20, 0)} MiB at this size).
`;
}

// `--render`: rewrite the .md from the last results file (after a change to the text only).
if (process.argv[2] === '--render') {
  const dir = join(repo, 'bench', 'results');
  const results = JSON.parse(readFileSync(join(dir, 'semantic-fleet.json'), 'utf8'));
  writeFileSync(join(dir, 'semantic-fleet.md'), markdown(results));
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
