// L2 benchmark: RedisLayer hits vs. a bare ioredis GET of the same bytes, in one run against
// one redis-server this script starts; plus the latency added while that server is SIGSTOPped.
//
//   pnpm --filter @strata-cache/layer-redis bench        (writes <repo>/bench/results/layer-redis.json + .md)
//   BENCH_SECONDS=1 BENCH_ROUNDS=30 ...                   (longer run; defaults 0.5 s × 12 interleaved slices)
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import os from 'node:os';
import { MultiLayerCache, computeKey, resolveScope } from '@strata-cache/core';
import { startRedisServer } from '@strata-cache/test-utils';
import { Redis } from 'ioredis';
import { RedisLayer } from '../dist/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..', '..');
// Many short interleaved slices: on a shared machine the load drifts within seconds, so each
// slice's ratio to the bare GET measured right next to it is more telling than long runs.
const SECONDS = Number(process.env.BENCH_SECONDS ?? 0.5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 12);
const CONCURRENCY = 64;
const KEYS = 1_000;
const BUDGET = 50;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0;
};
const round = (x, d = 3) => Number(x.toFixed(d));

/** A typical small chat completion (about 600 bytes of JSON: below the compression threshold). */
function completion(i) {
  return {
    id: `chatcmpl-${i.toString(36).padStart(8, '0')}`,
    object: 'chat.completion',
    created: 1_763_000_000 + i,
    model: 'gpt-4o-mini-2024-07-18',
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: `Answer number ${i}: Paris is the capital of France. It has been since 508 AD, with brief interruptions.` },
        logprobs: null,
        finish_reason: 'stop',
      },
    ],
    usage: { prompt_tokens: 25, completion_tokens: 24, total_tokens: 49, prompt_tokens_details: { cached_tokens: 0 } },
    system_fingerprint: 'fp_0ba0d124f1',
  };
}

/** Runs `op(i)` with `concurrency` loops for `seconds`; returns ops/s. */
async function throughput(op, concurrency, seconds) {
  let done = 0;
  let failed = 0;
  const end = performance.now() + seconds * 1_000;
  const loop = async (w) => {
    let i = w;
    while (performance.now() < end) {
      try {
        const r = await op(i++ % KEYS);
        if (r === undefined || r === null) failed++;
      } catch {
        failed++;
      }
      done++;
    }
  };
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  await Promise.all(Array.from({ length: concurrency }, (_, w) => loop(w)));
  const cpu = process.cpuUsage(cpu0);
  // CPU time of this Node process per operation: far less sensitive to other load on the machine than wall-clock rates.
  return { opsPerSec: done / ((performance.now() - t0) / 1_000), failed, cpuUsPerOp: (cpu.user + cpu.system) / done };
}

let latencyFailures = 0;
/** Sequential single requests: latency distribution in ms. */
async function latency(op, n) {
  const xs = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    try {
      await op(i % KEYS);
    } catch {
      latencyFailures++; // e.g. a load spike past timeoutMs: the app would see a miss
    }
    xs.push(performance.now() - t0);
  }
  return xs;
}

const server = await startRedisServer({ args: ['--maxmemory', '256mb', '--maxmemory-policy', 'allkeys-lru'] });
const result = { name: 'layer-redis', date: new Date().toISOString(), machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, loadAvgAtStart: os.loadavg().map((x) => round(x, 2)) }, settings: { seconds: SECONDS, rounds: ROUNDS, concurrency: CONCURRENCY, keys: KEYS, budgetMs: BUDGET } };
try {
  const layer = new RedisLayer({ url: server.url, prefix: 'bench', timeoutMs: BUDGET, breaker: { cooldownMs: 500 } });
  await layer.connect();
  const cache = new MultiLayerCache({ layers: [{ layer, budgetMs: BUDGET }], policy: 'always', defaultTtlMs: 3_600_000 });
  cache.on('error', () => undefined);
  // The floor: a bare ioredis client with the same auto-pipelining, reading the very same bytes.
  const bare = new Redis(server.url, { enableAutoPipelining: true });

  const scope = resolveScope({ tenant: 'bench', namespace: 'l2' });
  const requests = Array.from({ length: KEYS }, (_, i) => ({ model: 'gpt-4o-mini', temperature: 0, messages: [{ role: 'user', content: `question ${i}` }] }));
  const keys = requests.map((r) => computeKey(r, scope));
  const rawKeys = keys.map((k) => layer.keys.entry(k));
  for (let i = 0; i < KEYS; i += 100) {
    await Promise.all(keys.slice(i, i + 100).map((k, j) => layer.set(k, { value: completion(i + j), createdAt: Date.now(), ttlMs: 3_600_000, tags: ['bench'], model: 'gpt-4o-mini', usage: { inputTokens: 25, outputTokens: 24 } })));
  }
  const valueBytes = (await bare.getBuffer(rawKeys[0])).length;

  const ops = {
    'bare ioredis GET': (i) => bare.getBuffer(rawKeys[i]),
    // Same GET plus the JSON.parse any consumer needs: shows what of the gap is decoding.
    'bare GET + JSON.parse': (i) => bare.getBuffer(rawKeys[i]).then((b) => JSON.parse(b.subarray(3).toString('utf8'))),
    // Concurrent reads of one tick go out as one MGET (see the README): the GET loop above stays the floor.
    'RedisLayer.get': (i) => layer.get(keys[i]),
    'MultiLayerCache.lookup (key + L2 hit)': (i) => cache.lookup(requests[i], { scope }),
  };
  // Warm-up (JIT, connections).
  for (const op of Object.values(ops)) await throughput(op, CONCURRENCY, 0.3);

  // Rounds interleave the variants, so machine noise hits them alike; report medians.
  const tp = Object.fromEntries(Object.keys(ops).map((k) => [k, []]));
  const cpu = Object.fromEntries(Object.keys(ops).map((k) => [k, []]));
  const lat = Object.fromEntries(Object.keys(ops).map((k) => [k, []]));
  let failures = 0;
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, op] of Object.entries(ops)) {
      const t = await throughput(op, CONCURRENCY, SECONDS);
      tp[name].push(t.opsPerSec);
      cpu[name].push(t.cpuUsPerOp);
      failures += t.failed;
    }
    for (const [name, op] of Object.entries(ops)) lat[name].push(...(await latency(op, 500)));
  }
  const median = (xs) => pct(xs, 50);
  const bareTp = median(tp['bare ioredis GET']);
  const bareP50 = pct(lat['bare ioredis GET'], 50);
  result.valueBytes = valueBytes;
  result.hits = Object.fromEntries(
    Object.keys(ops).map((name) => [
      name,
      {
        hitsPerSecAtConcurrency64: Math.round(median(tp[name])),
        throughputRatioToBare: round(median(tp[name]) / bareTp),
        // median over slices of (this slice / the bare slice right before it)
        throughputRatioToBarePerSliceMedian: round(median(tp[name].map((x, r) => x / tp['bare ioredis GET'][r]))),
        hitsPerSecBestSlice: Math.round(Math.max(...tp[name])),
        nodeCpuUsPerHit: round(median(cpu[name]), 2),
        nodeCpuRatioToBare: round(median(cpu[name]) / median(cpu['bare ioredis GET'])),
        singleHitP50Ms: round(pct(lat[name], 50), 4),
        singleHitP99Ms: round(pct(lat[name], 99), 4),
        p50RatioToBare: round(pct(lat[name], 50) / bareP50),
      },
    ]),
  );
  result.failedHitsDuringHealthyRuns = failures + latencyFailures;
  const layerHits = result.hits['RedisLayer.get'];
  result.targets = {
    'L2 hits/s at concurrency 64 >= 100000': { value: layerHits.hitsPerSecAtConcurrency64, met: layerHits.hitsPerSecAtConcurrency64 >= 100_000 },
    'single-hit p50 within 1.3x of bare GET': { value: layerHits.p50RatioToBare, met: layerHits.p50RatioToBare <= 1.3 },
  };

  // ---- SIGSTOP: latency added per request while Redis hangs (through MultiLayerCache, as an app sees it).
  const healthy = await latency((i) => cache.lookup(requests[i], { scope }), 1_000);
  server.pause();
  const pausedStart = performance.now();
  const paused = [];
  let answered = 0;
  while (performance.now() - pausedStart < 3_000) {
    const i = paused.length % KEYS;
    const t0 = performance.now();
    const hit = await cache.lookup(requests[i], { scope });
    paused.push(performance.now() - t0);
    if (hit === undefined) answered++; // a miss, served without failing
  }
  const concurrentPaused = await throughput((i) => cache.lookup(requests[i], { scope }).then(() => 1), CONCURRENCY, 1);
  server.resume();
  const resumedAt = performance.now();
  let recoveredMs = -1;
  while (performance.now() - resumedAt < 10_000) {
    if ((await cache.lookup(requests[0], { scope }))?.layer === 'redis') {
      recoveredMs = performance.now() - resumedAt;
      break;
    }
    await sleep(10);
  }
  const healthyP50 = pct(healthy, 50);
  result.sigstop = {
    requests: paused.length,
    servedAsMisses: answered,
    failedRequests: paused.length - answered,
    healthyP50Ms: round(healthyP50, 4),
    pausedP50Ms: round(pct(paused, 50), 4),
    pausedP99Ms: round(pct(paused, 99), 3),
    pausedMaxMs: round(paused.reduce((a, b) => Math.max(a, b), 0), 2), // no spread: can be 100,000s of samples
    addedMeanMsPerRequest: round(paused.reduce((a, b) => a + b, 0) / paused.length - healthyP50, 4),
    addedP50MsPerRequest: round(pct(paused, 50) - healthyP50, 4),
    requestsThatWaitedTheBudget: paused.filter((x) => x >= BUDGET * 0.8).length,
    budgetMs: BUDGET,
    requestsPerSecWhilePausedAtConcurrency64: Math.round(concurrentPaused.opsPerSec),
    recoveryAfterSigcontMs: round(recoveredMs, 1),
    breaker: layer.stats(),
  };

  await cache.close();
  bare.disconnect();
} finally {
  await server.stop();
}

result.machine.loadAvgAtEnd = os.loadavg().map((x) => round(x, 2));
const outDir = join(repo, 'bench', 'results');
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, 'layer-redis.json'), JSON.stringify(result, null, 2) + '\n');
const h = result.hits;
const md = [
  `# layer-redis benchmark (${result.date})`,
  '',
  `One local redis-server (started by the bench), ${result.machine.cpus} CPUs, Node ${result.machine.node}; value ${result.valueBytes} bytes; concurrency ${CONCURRENCY}; medians of ${ROUNDS} interleaved slices × ${SECONDS} s per path (shared, noisy machine: compare ratios, not absolutes). Load average (1/5/15 min) ${result.machine.loadAvgAtStart.join(' / ')} at start, ${result.machine.loadAvgAtEnd.join(' / ')} at end.`,
  '',
  '| path | hits/s @64 (median) | best slice | × bare (per-slice median) | Node CPU µs/hit | CPU × bare | p50 ms | p99 ms | p50 × bare |',
  '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ...Object.entries(h).map(([k, v]) => `| ${k} | ${v.hitsPerSecAtConcurrency64} | ${v.hitsPerSecBestSlice} | ${v.throughputRatioToBarePerSliceMedian} | ${v.nodeCpuUsPerHit} | ${v.nodeCpuRatioToBare} | ${v.singleHitP50Ms} | ${v.singleHitP99Ms} | ${v.p50RatioToBare} |`),
  '',
  `Targets: ${Object.entries(result.targets).map(([k, v]) => `${k}: ${v.value} (${v.met ? 'met' : 'NOT met'})`).join('; ')}.`,
  '',
  `SIGSTOP (budget ${BUDGET} ms): ${result.sigstop.requests} sequential requests in 3 s, ${result.sigstop.failedRequests} failed; added latency per request p50 ${result.sigstop.addedP50MsPerRequest} ms, mean ${result.sigstop.addedMeanMsPerRequest} ms, max ${result.sigstop.pausedMaxMs} ms; ${result.sigstop.requestsThatWaitedTheBudget} requests waited the budget (before the breaker opened); ${result.sigstop.requestsPerSecWhilePausedAtConcurrency64} requests/s at concurrency 64 while paused (all misses); recovery ${result.sigstop.recoveryAfterSigcontMs} ms after SIGCONT.`,
  '',
].join('\n');
writeFileSync(join(outDir, 'layer-redis.md'), md);
console.log(md);
