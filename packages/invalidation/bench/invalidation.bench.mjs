// Invalidation benchmark (run: pnpm --filter @strata-cache/invalidation bench; needs dist + redis).
//
// 1. Cross-process delay: process A purges a tag; how long until process B's in-process layers
//    (L1, and L3 when installed) have dropped the entry — B's core applies the Redis bus message
//    and emits a remote `invalidate` event, timestamped on the shared machine clock.
//    Baseline measured in the same run: a raw Redis PUBLISH → message round trip.
// 2. Tag purge cost vs cache size (L1): purging 10 tagged entries from caches of growing size,
//    against a full-scan purge (purgeByPrompt) of the same 10 entries.
// 3. Engine overhead on the L1 hit path, and the cost of watermarks on it (10,000 watermarks of
//    other keys and 1,000 of other tags vs none, same cache).
// 4. Purges under faults (own redis-servers, two processes under load, engine.purgeTag while
//    Redis is SIGSTOPped, killed and restarted from its RDB, failing over (Cluster), and later
//    restored from an older snapshot): stale reads afterwards, how long until the purge was
//    stored and published, and until the other process knew.
//
// Env: REDIS_URL (else a throwaway redis-server is started), BENCH_ITERATIONS (default 300),
// BENCH_SIZES (default "1000,10000,100000"), BENCH_HITS (hits per engine-overhead pass × 2, default
// 200000), BENCH_OVERHEAD_ROUNDS (interleaved engine-overhead rounds, default 5).
import { fork } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MultiLayerCache, loaded } from '@strata-cache/core';
import { MemoryLayer } from '@strata-cache/layer-memory';
import { redisForTests, startRedisCluster, startRedisServer, uniqueKeyPrefix } from '@strata-cache/test-utils';
import { Redis } from 'ioredis';
import { createInvalidationEngine, creativeRequests, maxAge, staleAfterModelChange, tagWhen, timeSensitivePrompts } from '../dist/index.js';
import { chat, createNode, nowAbs, versionedLoad } from '../test/fixtures/process.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..', '..');
const ITER = Number(process.env.BENCH_ITERATIONS ?? 300);
const SIZES = (process.env.BENCH_SIZES ?? '1000,10000,100000').split(',').map(Number);

/** `v` rounded to `places` decimals. */
const round = (v, places) => Math.round(v * 10 ** places) / 10 ** places;
/** The middle value (the upper one of the two middle values of an even count). */
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  const r = (v) => round(v, 3);
  return { n: s.length, p50: r(q(0.5)), p95: r(q(0.95)), p99: r(q(0.99)), max: r(s[s.length - 1]), mean: r(s.reduce((a, b) => a + b, 0) / s.length) };
}

async function spawnChild(config) {
  const proc = fork(join(here, '..', 'test', 'fixtures', 'process.mjs'), [], {
    env: { ...process.env, STRATA_INVALIDATION_CHILD: '1', STRATA_INVALIDATION_CONFIG: JSON.stringify(config) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const pending = new Map();
  const waiters = [];
  let nextId = 1;
  let semantic = false;
  await new Promise((resolve, reject) => {
    proc.once('exit', (c) => reject(new Error('child exited ' + c)));
    proc.on('message', (m) => {
      if (m.type === 'ready') {
        semantic = m.semantic;
        resolve();
      } else if (m.type === 'invalidated') {
        for (const w of [...waiters]) if (w.match(m)) waiters.splice(waiters.indexOf(w), 1) && w.resolve(m);
      } else if (m.id !== undefined) {
        const p = pending.get(m.id);
        pending.delete(m.id);
        if (p) m.error ? p.reject(new Error(m.error)) : p.resolve(m.result);
      }
    });
  });
  proc.removeAllListeners('exit');
  return {
    semantic,
    call: (op, args = {}) =>
      new Promise((resolve, reject) => {
        const id = nextId++;
        pending.set(id, { resolve, reject });
        proc.send({ id, op, ...args });
      }),
    waitFor: (match, ms = 5_000) =>
      new Promise((resolve, reject) => {
        const w = { match, resolve };
        waiters.push(w);
        setTimeout(() => {
          const i = waiters.indexOf(w);
          if (i >= 0) {
            waiters.splice(i, 1);
            reject(new Error('no invalidation within ' + ms + ' ms'));
          }
        }, ms).unref();
      }),
    kill: async () => {
      await Promise.race([
        new Promise((r) => {
          proc.once('exit', r);
          proc.send({ id: 0, op: 'close' });
        }),
        new Promise((r) => setTimeout(r, 3_000)),
      ]);
      if (proc.exitCode === null) proc.kill('SIGKILL');
    },
  };
}

async function crossProcess(redisUrl) {
  const prefix = uniqueKeyPrefix('inv-bench');
  const a = await createNode({ redisUrl, prefix });
  const b = await spawnChild({ redisUrl, prefix });
  const fromStart = [];
  const afterResolve = [];
  const purgeLocal = [];
  let stillServed = 0;
  try {
    for (let i = 0; i < ITER + 20; i++) {
      const tag = `bench:${i}`;
      const text = `bench question ${i}`;
      await b.call('load', { text, answer: 'v' + i, tags: [tag] });
      const arrived = b.waitFor((m) => m.message.type === 'tag' && m.message.tag === tag);
      const t0 = nowAbs();
      await a.engine.purgeTag(tag);
      const t1 = nowAbs();
      const m = await arrived;
      if (i < 20) continue; // warm-up
      fromStart.push(m.at - t0);
      afterResolve.push(m.at - t1);
      purgeLocal.push(t1 - t0);
      if (i % 25 === 0) {
        const s = await b.call('inspect', { text });
        if (s.l1 || s.l2 || s.l3) stillServed++;
      }
    }
  } finally {
    await b.kill();
    await a.cache.clear();
    await a.engine.close();
    await a.cache.close();
  }

  // Baseline: raw PUBLISH → message on the same server, no Strata.
  const pub = new Redis(redisUrl);
  const sub = new Redis(redisUrl);
  const channel = prefix + ':raw';
  await sub.subscribe(channel);
  const raw = [];
  let waiting;
  sub.on('message', (_c, msg) => waiting?.(nowAbs() - Number(msg)));
  for (let i = 0; i < ITER + 20; i++) {
    const d = await new Promise((resolve) => {
      waiting = resolve;
      void pub.publish(channel, String(nowAbs()));
    });
    if (i >= 20) raw.push(d);
  }
  await sub.quit();
  await pub.quit();
  const s = stats(fromStart);
  const r = stats(raw);
  return {
    semanticLayerInOtherProcess: b.semantic,
    stillServedAfterMessage: stillServed,
    delayFromInvalidateCallMs: s,
    delayAfterInvalidateResolvedMs: stats(afterResolve),
    localInvalidateMs: stats(purgeLocal),
    baselineRawPubSubMs: r,
    ratioP50VsRawPubSub: round(s.p50 / r.p50, 2),
    targetMs: 100,
    meetsTargetAtP99: s.p99 < 100,
  };
}

async function tagPurgeScaling() {
  const out = [];
  for (const size of SIZES) {
    const memory = new MemoryLayer({ maxEntries: size + 100, freeze: false });
    const cache = new MultiLayerCache({ layers: [memory], defaultTtlMs: null });
    const engine = createInvalidationEngine({ cache });
    for (let i = 0; i < size; i++) await cache.getOrLoad(chat(`filler question number ${i}`), () => 'x');
    const reps = 15;
    const byTag = [];
    const byScan = [];
    for (let rep = 0; rep < reps; rep++) {
      for (let j = 0; j < 10; j++) await cache.getOrLoad(chat(`tagged refund question ${j}`), () => loaded('y', { tags: ['refunds'] }));
      let t = performance.now();
      const a = await engine.purgeTag('refunds');
      byTag.push(performance.now() - t);
      if (a.total !== 10) throw new Error('tag purge removed ' + a.total);
      for (let j = 0; j < 10; j++) await cache.getOrLoad(chat(`tagged refund question ${j}`), () => loaded('y', { tags: ['refunds'] }));
      t = performance.now();
      const p = await engine.purgeByPrompt(/^tagged refund/, { pageSize: 10_000, maxScanned: size + 1_000 });
      byScan.push(performance.now() - t);
      if (p.purged !== 10) throw new Error('scan purge removed ' + p.purged);
    }
    const tag = stats(byTag);
    const scan = stats(byScan);
    out.push({ cacheEntries: size, taggedEntries: 10, tagPurgeMs: tag, fullScanPurgeMs: scan, scanOverTagP50: round(scan.p50 / tag.p50, 1) });
    await engine.close();
    await cache.close();
  }
  return out;
}

/**
 * Cost of the engine's hooks on the L1 hit path and on a miss+write, against the same cache
 * without it. A warm-up pass of each (discarded: the first pass of a process runs cold code),
 * then interleaved rounds, each on a fresh cache; medians, and each round's ratio. A single pass
 * of 10,000 misses moved between 20 and 34 µs from run to run on this shared machine.
 */
async function hookOverhead() {
  const HITS = Number(process.env.BENCH_HITS ?? 200_000) / 2;
  const ROUNDS = Number(process.env.BENCH_OVERHEAD_ROUNDS ?? 5);
  const make = (withEngine) => {
    const cache = new MultiLayerCache({ layers: [new MemoryLayer({ maxEntries: 20_000 })], defaultTtlMs: null });
    if (withEngine) {
      createInvalidationEngine({
        cache,
        rules: [
          tagWhen({ prompt: /product/i }, ['topic:product']),
          tagWhen({ model: /^gpt-4o/ }, ['model:{model}']),
          maxAge(72 * 3_600_000, { tag: 'faq' }),
          maxAge(3_600_000, { prompt: /^rephrase:/ }),
          creativeRequests(),
          timeSensitivePrompts(),
          staleAfterModelChange(),
        ],
      });
    }
    return cache;
  };
  const pass = async (withEngine) => {
    const cache = make(withEngine);
    const reqs = Array.from({ length: 10_000 }, (_, i) => chat(`what is the warranty of product ${i}?`));
    let t = performance.now();
    for (const r of reqs) await cache.getOrLoad(r, () => 'answer');
    const missUs = ((performance.now() - t) * 1000) / reqs.length;
    t = performance.now();
    for (let i = 0; i < HITS; i++) await cache.getOrLoad(reqs[i % reqs.length], () => 'never');
    const hitUs = ((performance.now() - t) * 1000) / HITS;
    await cache.close();
    return { hitUs, missAndWriteUs: missUs };
  };
  await pass(false);
  await pass(true);
  const rounds = [];
  for (let i = 0; i < ROUNDS; i++) {
    const without = await pass(false);
    const withEngine = await pass(true);
    rounds.push({ without, withEngine });
  }
  const hitRatios = rounds.map((r) => r.withEngine.hitUs / r.without.hitUs);
  const missRatios = rounds.map((r) => r.withEngine.missAndWriteUs / r.without.missAndWriteUs);
  return {
    rules: 7,
    hits: HITS,
    misses: 10_000,
    rounds: ROUNDS,
    withEngine: {
      hitUs: round(median(rounds.map((r) => r.withEngine.hitUs)), 3),
      missAndWriteUs: round(median(rounds.map((r) => r.withEngine.missAndWriteUs)), 1),
    },
    withoutEngine: {
      hitUs: round(median(rounds.map((r) => r.without.hitUs)), 3),
      missAndWriteUs: round(median(rounds.map((r) => r.without.missAndWriteUs)), 1),
    },
    hitRatio: round(median(hitRatios), 2),
    missRatio: round(median(missRatios), 2),
    hitRatioRange: [round(Math.min(...hitRatios), 2), round(Math.max(...hitRatios), 2)],
    missRatioRange: [round(Math.min(...missRatios), 2), round(Math.max(...missRatios), 2)],
  };
}

/**
 * Hit cost with watermarks in the table (none covering the entries read) vs none: process CPU
 * time per hit, median of interleaved rounds (the machine is shared).
 */
async function watermarkHitCost() {
  const HITS = Number(process.env.BENCH_HITS ?? 200_000) / 2;
  const reqs = Array.from({ length: 10_000 }, (_, i) => chat(`what is the warranty of product ${i}?`));
  const make = async (keys, tags) => {
    const cache = new MultiLayerCache({ layers: [new MemoryLayer({ maxEntries: 20_000 })], defaultTtlMs: null });
    for (const [i, r] of reqs.entries()) await cache.getOrLoad(r, () => loaded('answer', { tags: [`product:${i}`, 'topic:warranty'] }));
    for (let i = 0; i < keys; i++) await cache.invalidateKey(chat(`another question ${i}`));
    for (let i = 0; i < tags; i++) await cache.invalidateTag(`other:${i}`);
    return cache;
  };
  const configs = { none: await make(0, 0), '200 (100 keys, 100 tags)': await make(100, 100), '11000 (10000 keys, 1000 tags)': await make(10_000, 1_000) };
  const rounds = Object.fromEntries(Object.keys(configs).map((k) => [k, []]));
  for (let round = 0; round < 8; round++) {
    const order = Object.keys(configs);
    if (round % 2) order.reverse();
    for (const k of order) {
      const t = process.cpuUsage();
      for (let i = 0; i < HITS; i++) await configs[k].getOrLoad(reqs[i % reqs.length], () => 'never');
      const u = process.cpuUsage(t);
      rounds[k].push((u.user + u.system) / HITS);
    }
  }
  const base = median(rounds.none);
  const out = { hitsPerRound: HITS, rounds: 8, cpuUsPerHit: {} };
  for (const k of Object.keys(configs)) out.cpuUsPerHit[k] = { us: round(median(rounds[k]), 3), ratio: round(median(rounds[k]) / base, 2) };
  for (const c of Object.values(configs)) await c.close();
  return out;
}

// ---------------------------------------------------------------- 4. purges under faults

const FAULT_KEYS = 40;
const PROBE_DELAYS = (process.env.BENCH_PROBE_DELAYS ?? '100,6000,12000').split(',').map(Number);

async function waitUntil(check, ms) {
  const t0 = Date.now();
  while (!(await check())) {
    if (Date.now() - t0 > ms) return -1;
    await new Promise((r) => setTimeout(r, 25));
  }
  return Date.now() - t0;
}

/** One fault run: A (this process) and B (a child) under load; the data changes; A purges during the fault. */
async function faultRun(kind) {
  let server;
  let cluster;
  let nodeConfig;
  let masterOfScope;
  const prefix = uniqueKeyPrefix(`inv-fault-${kind}`);
  if (kind === 'failover') {
    cluster = await startRedisCluster(3, { replicas: 1, args: ['--cluster-node-timeout', '1000'] });
    const probe = new (await import('ioredis')).Cluster([...cluster.nodes]);
    let slots = [];
    await waitUntil(async () => (slots = await probe.cluster('SLOTS')).length > 0 && slots.every((r) => r.length >= 4), 30_000);
    const slot = await probe.cluster('KEYSLOT', '{default/default}');
    const range = slots.find(([a, b]) => slot >= a && slot <= b);
    masterOfScope = { master: cluster.servers.find((x) => x.port === range[2][1]), replica: range[3][1] };
    probe.disconnect();
    for (const r of cluster.servers.slice(3)) {
      const c = new Redis(r.port);
      await waitUntil(async () => /master_link_status:up/.test(await c.info('replication')), 30_000);
      c.disconnect();
    }
    nodeConfig = { cluster: cluster.nodes.map((n) => ({ host: n.host, port: n.port })) };
  } else {
    server = await startRedisServer();
    nodeConfig = { redisUrl: server.url };
  }
  const common = { ...nodeConfig, prefix, withSemantic: false, l1MaxEntries: FAULT_KEYS / 4, redisOptions: { breaker: { cooldownMs: 200 } }, keys: FAULT_KEYS };
  const a = await createNode(common);
  a.cache.on('error', () => undefined);
  const la = versionedLoad(a, FAULT_KEYS);
  const b = await spawnChild(common);
  const lb = (action, arg) => b.call('versioned', { action, arg });
  const raw = server ? new Redis(server.url) : undefined;
  const result = { kind };
  try {
    await la.fill();
    await lb('fill');
    la.start();
    await lb('start');
    await new Promise((r) => setTimeout(r, 500));
    if (kind === 'sigstop') {
      server.pause();
      await new Promise((r) => setTimeout(r, 1_500));
    } else if (kind === 'kill9') {
      await raw.save();
      await server.kill9();
      await new Promise((r) => setTimeout(r, 1_000));
    } else if (kind === 'restore') {
      await raw.save();
      copyFileSync(join(server.dir, 'dump.rdb'), join(server.dir, 'before-purge.rdb'));
    } else {
      masterOfScope.master.pause();
      await new Promise((r) => setTimeout(r, 300));
    }
    la.source(2);
    await lb('source', 2);
    la.require();
    const t0 = performance.now();
    const audit = await a.engine.purgeTag('topic:product');
    result.purge = { ms: Math.round(performance.now() - t0), unreached: audit.unreached, durable: audit.durable, pending: audit.pending };
    if (kind === 'restore') {
      await waitUntil(async () => (await lb('report')).knownAt > 0, 10_000);
      await new Promise((r) => setTimeout(r, 1_000));
      await server.kill9();
      copyFileSync(join(server.dir, 'before-purge.rdb'), join(server.dir, 'dump.rdb'));
      await server.restart();
    } else {
      await new Promise((r) => setTimeout(r, 2_000));
      if (kind === 'sigstop') server.resume();
      else if (kind === 'kill9') await server.restart();
      else {
        const other = new Redis(masterOfScope.replica);
        await waitUntil(async () => /role:master/.test(await other.info('replication')), 30_000);
        other.disconnect();
        masterOfScope.master.resume();
      }
    }
    const back = Date.now();
    const pendingZero = () => Object.values(a.cache.invalidationStatus().pending).every((n) => n === 0);
    result.purgeDoneAfterRecoveryMs = await waitUntil(async () => pendingZero(), 30_000);
    result.otherProcessKnewAfterRecoveryMs = kind === 'restore' ? 'before the fault' : await waitUntil(async () => (await lb('report')).knownAt > 0, 30_000);
    const done = Date.now();
    result.probes = [];
    for (const d of PROBE_DELAYS) {
      await new Promise((r) => setTimeout(r, Math.max(0, done + d - Date.now())));
      const pa = await la.probe();
      const pb = await lb('probe');
      result.probes.push({ afterDoneMs: d, staleA: pa.stale, staleB: pb.stale, versionsA: pa.versions, versionsB: pb.versions });
    }
    await la.stop();
    await lb('stop');
    const ra = la.report();
    const rb = await lb('report');
    result.staleReads = { purgingProcess: ra.stale, otherProcess: rb.stale };
    result.reads = { purgingProcess: ra.reads, otherProcess: rb.reads, fromRedis: ra.fromRedis + rb.fromRedis, failed: ra.failed + rb.failed };
    result.oldVersionServedByOtherBeforeItKnew = { reads: rb.oldBeforeKnown, sinceRecovery: (await lb('report', back)).oldBeforeKnown };
  } finally {
    server?.resume();
    masterOfScope?.master.resume();
    raw?.disconnect();
    await b.kill();
    await a.engine.close();
    await a.cache.close();
    await server?.stop();
    await cluster?.stop();
  }
  return result;
}

async function faultRuns() {
  const out = [];
  for (const kind of (process.env.BENCH_FAULTS ?? 'sigstop,kill9,failover,restore').split(',').filter(Boolean)) out.push(await faultRun(kind));
  return out;
}

const started = Date.now();
const redis = await redisForTests();
const result = {
  name: 'invalidation',
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, node: process.version, note: 'shared 2-core machine; other benchmarks and tests may run at the same time' },
  redis: redis.owned ? 'throwaway redis-server started by the bench' : 'REDIS_URL',
  iterations: ITER,
  crossProcess: await crossProcess(redis.url),
  tagPurgeScaling: await tagPurgeScaling(),
  hookOverhead: await hookOverhead(),
  watermarkHitCost: await watermarkHitCost(),
  faults: await faultRuns(),
  durationS: 0,
};
result.durationS = round((Date.now() - started) / 1000, 1);
if (redis.server) await redis.server.stop();

const dir = join(repo, 'bench', 'results');
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, 'invalidation.json'), JSON.stringify(result, null, 2) + '\n');
const c = result.crossProcess;
const md = [
  '# Invalidation benchmark',
  '',
  `${result.date} · Node ${process.version} · ${cpus().length} CPUs (shared) · ${ITER} iterations · ${result.durationS} s`,
  '',
  '## Cross-process delay (Redis bus)',
  '',
  `Process A calls \`engine.purgeTag()\`; measured until process B's core has applied the bus message to its in-process layers (L1${c.semanticLayerInOtherProcess ? ' + L3' : ''}).`,
  '',
  '| | p50 ms | p95 ms | p99 ms | max ms |',
  '|---|---|---|---|---|',
  `| from the invalidate call | ${c.delayFromInvalidateCallMs.p50} | ${c.delayFromInvalidateCallMs.p95} | ${c.delayFromInvalidateCallMs.p99} | ${c.delayFromInvalidateCallMs.max} |`,
  `| after invalidate resolved in A | ${c.delayAfterInvalidateResolvedMs.p50} | ${c.delayAfterInvalidateResolvedMs.p95} | ${c.delayAfterInvalidateResolvedMs.p99} | ${c.delayAfterInvalidateResolvedMs.max} |`,
  `| baseline: raw Redis PUBLISH → message | ${c.baselineRawPubSubMs.p50} | ${c.baselineRawPubSubMs.p95} | ${c.baselineRawPubSubMs.p99} | ${c.baselineRawPubSubMs.max} |`,
  '',
  `Target < 100 ms: ${c.meetsTargetAtP99 ? 'met at p99' : 'NOT met at p99'}. p50 is ${c.ratioP50VsRawPubSub}× a raw pub/sub round trip (same process, no Strata).`,
  'A negative "after resolved" figure means B had dropped the entry before A\'s `await` returned (A resolves after publishing).',
  `Spot checks of B's layers after the message (every 25th iteration) that still held the entry: ${c.stillServedAfterMessage}.`,
  '',
  '## Tag purge cost vs cache size (L1 memory, 10 tagged entries)',
  '',
  '| cache entries | tag purge p50 ms | full-scan purge p50 ms | scan / tag |',
  '|---|---|---|---|',
  ...result.tagPurgeScaling.map((r) => `| ${r.cacheEntries} | ${r.tagPurgeMs.p50} | ${r.fullScanPurgeMs.p50} | ${r.scanOverTagP50}× |`),
  '',
  '## Engine overhead (L1 only, 7 rules, getOrLoad)',
  '',
  `Medians of ${result.hookOverhead.rounds} interleaved rounds (each on a fresh cache: ${result.hookOverhead.misses} misses, then ${result.hookOverhead.hits} hits), after a warm-up round of each; the ratio is the median of the rounds' ratios (range ${result.hookOverhead.hitRatioRange.join('–')}× for hits, ${result.hookOverhead.missRatioRange.join('–')}× for misses).`,
  '',
  '| | L1 hit µs | miss + write µs |',
  '|---|---|---|',
  `| without engine | ${result.hookOverhead.withoutEngine.hitUs} | ${result.hookOverhead.withoutEngine.missAndWriteUs} |`,
  `| with engine | ${result.hookOverhead.withEngine.hitUs} | ${result.hookOverhead.withEngine.missAndWriteUs} |`,
  `| ratio | ${result.hookOverhead.hitRatio}× | ${result.hookOverhead.missRatio}× |`,
  '',
  `## Watermarks on the hit path (L1 only, getOrLoad, entries with 2 tags; process CPU per hit, median of ${result.watermarkHitCost.rounds} interleaved rounds of ${result.watermarkHitCost.hitsPerRound})`,
  '',
  'Watermarks held by the process, none covering the entries read (the cost of checking).',
  '',
  '| watermarks | CPU µs per hit | × none |',
  '|---|---|---|',
  ...Object.entries(result.watermarkHitCost.cpuUsPerHit).map(([k, v]) => `| ${k} | ${v.us} | ${v.ratio}× |`),
  '',
  '## Purges under faults (two processes, [MemoryLayer(10 of 40 keys), RedisLayer] + Redis bus + engine, load running)',
  '',
  'A read is stale when it returns data older than what its process knew was current when the read began: the purging process from its `purgeTag()` call, the other from when the purge reached it. Probes read every key in both processes after the purge was done (stored and published).',
  '',
  '| fault | purge result | done after Redis back | other process knew after | stale reads (purging / other) | probes at ' +
    PROBE_DELAYS.map((d) => d / 1000 + ' s').join(', ') +
    ' (stale A/B) | reads (from Redis) | failed | old data the other process served before it knew (since Redis back) |',
  '|---|---|---|---|---|---|---|---|---|',
  ...result.faults.map(
    (f) =>
      `| ${f.kind} | unreached [${f.purge.unreached.join(', ')}], durable ${f.purge.durable}, pending ${f.purge.pending}, ${f.purge.ms} ms | ${f.purgeDoneAfterRecoveryMs} ms | ${typeof f.otherProcessKnewAfterRecoveryMs === 'number' ? f.otherProcessKnewAfterRecoveryMs + ' ms' : f.otherProcessKnewAfterRecoveryMs} | ${f.staleReads.purgingProcess} / ${f.staleReads.otherProcess} | ${f.probes.map((p) => `${p.staleA}/${p.staleB}`).join(', ')} | ${f.reads.purgingProcess + f.reads.otherProcess} (${f.reads.fromRedis}) | ${f.reads.failed} | ${f.oldVersionServedByOtherBeforeItKnew.reads} (${f.oldVersionServedByOtherBeforeItKnew.sinceRecovery}) |`,
  ),
  '',
].join('\n');
writeFileSync(join(dir, 'invalidation.md'), md);
console.log(md);
process.exit(0);
