// L2 benchmark, against one redis-server this script starts:
//  1. hits: RedisLayer.get and MultiLayerCache.getOrLoad (L2 only, default options) vs a bare
//     ioredis GET of the same bytes, at concurrency 1, 16 and 64, in interleaved slices;
//  2. writes: Redis CPU per write (INFO cpu and commandstats) vs a plain SET of the same bytes,
//     and vs the Lua script writes used before;
//  3. compression: decode cost and size per value size, deflate vs none (what sets the default);
//  4. faults: latency added per request while the server is SIGSTOPped (hits, and misses with
//     the coordinator), and recovery after SIGCONT.
//
//   pnpm --filter @strata-cache/layer-redis bench        (writes <repo>/bench/results/layer-redis.json + .md)
//   BENCH_SECONDS=1 BENCH_ROUNDS=12 ...                   (longer run; defaults 0.4 s × 6 interleaved slices)
//   BENCH_PARTS=faults ...                                (some parts only: hits, writes, compression, faults;
//                                                          the others are kept from the last results file)
//   BENCH_WRITE_ROUNDS=10 ...                             (interleaved rounds of the writes part; default 3)
//   BENCH_COMPARE_DIST=<path>/dist/index.js ...           (writes: also another build of this package, e.g. the
//                                                          previous commit's, interleaved in the same rounds)
//
// Values are ~2 KB chat completions whose text is real GPT-4 answers (arena-hard, from
// STRATA_DATA_DIR or ../shared/data); without the data set, generated prose of the same size.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { deflateSync, inflateSync } from 'node:zlib';
import os from 'node:os';
import { MultiLayerCache, computeKey, resolveScope } from '@strata-cache/core';
import { MemoryLayer } from '@strata-cache/layer-memory';
import { startRedisServer } from '@strata-cache/test-utils';
import { Redis } from 'ioredis';
import { RedisLayer } from '../dist/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..', '..');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 0.4);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 6);
const CONCURRENCIES = [1, 16, 64];
const KEYS = 1_000;
const BUDGET = 50;

const PARTS = new Set((process.env.BENCH_PARTS ?? 'hits,writes,compression,faults').split(','));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0;
};
const median = (xs) => pct(xs, 50);
const round = (x, d = 3) => Number(x.toFixed(d));

// ------------------------------------------------------------------ workload

function answerTexts() {
  const dir = process.env.STRATA_DATA_DIR ?? join(repo, '..', 'shared', 'data');
  const file = join(dir, 'datasets', 'arena-hard', 'arena-hard-v0.1_answers_gpt-4-0314.jsonl');
  if (existsSync(file)) {
    const texts = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).messages?.[1]?.content?.answer)
      .filter((t) => typeof t === 'string');
    if (texts.length > 0) return { source: 'arena-hard GPT-4 answers', all: texts.join('\n\n') };
  }
  const words =
    'the cache answers a request from memory when the same question was asked before and the answer is still valid so the model is not called again'.split(' ');
  return { source: 'generated prose (data set not found)', all: Array.from({ length: 400_000 }, (_, i) => words[(i * 7919) % words.length]).join(' ') };
}
const TEXT = answerTexts();
/** `bytes` of real text starting at a place chosen by `i`. */
const textOf = (i, bytes) => {
  const off = (i * 104_729) % (TEXT.all.length - bytes - 1);
  return TEXT.all.slice(off, off + bytes);
};

/** A chat completion whose JSON is about `bytes` long. */
function completion(i, bytes = 2_150) {
  return {
    id: `chatcmpl-${i.toString(36).padStart(8, '0')}`,
    object: 'chat.completion',
    created: 1_763_000_000 + i,
    model: 'gpt-4o-mini-2024-07-18',
    choices: [{ index: 0, message: { role: 'assistant', content: textOf(i, bytes - 330) }, logprobs: null, finish_reason: 'stop' }],
    usage: { prompt_tokens: 412, completion_tokens: 480, total_tokens: 892, prompt_tokens_details: { cached_tokens: 0 } },
    system_fingerprint: 'fp_0ba0d124f1',
  };
}

/** A chat request as a server receives it (JSON text, parsed afresh for every lookup). */
function requestText(i) {
  return JSON.stringify({
    model: 'gpt-4o-mini',
    temperature: 0,
    messages: [
      { role: 'system', content: 'You are a helpful assistant for a software company. Answer precisely.' },
      { role: 'user', content: `Question ${i}: ${textOf(i * 3, 180)}` },
    ],
  });
}

// ------------------------------------------------------------------ harness

/**
 * Runs `op(i)` with `concurrency` loops for `seconds`: ops/s, Node CPU µs per op, per-op latencies
 * (sampled). An op given as `{ input, run }` gets `run(input(i))`: `input` prepares what a caller
 * would already hold (a request freshly parsed from its body, as a server receives it), and its
 * time is left out of every figure — it runs synchronously on this thread, so its wall time is
 * taken off the elapsed time and the CPU time alike.
 */
async function throughput(op, concurrency, seconds) {
  const run = typeof op === 'function' ? op : op.run;
  const input = typeof op === 'function' ? undefined : op.input;
  let done = 0;
  let failed = 0;
  let excludedMs = 0;
  const lat = [];
  const end = performance.now() + seconds * 1_000;
  const loop = async (w) => {
    let i = w * 15;
    while (performance.now() < end) {
      let arg = i++ % KEYS;
      if (input) {
        const p0 = performance.now();
        arg = input(arg);
        excludedMs += performance.now() - p0;
      }
      const t0 = performance.now();
      try {
        const r = await run(arg);
        if (r === undefined || r === null) failed++;
      } catch {
        failed++;
      }
      if ((done & 7) === 0) lat.push(performance.now() - t0);
      done++;
    }
  };
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  await Promise.all(Array.from({ length: concurrency }, (_, w) => loop(w)));
  const cpu = process.cpuUsage(cpu0);
  const elapsedMs = performance.now() - t0 - excludedMs;
  return { opsPerSec: done / (elapsedMs / 1_000), failed, cpuUsPerOp: (cpu.user + cpu.system - excludedMs * 1_000) / done, lat };
}

async function redisInfo(client) {
  const text = await client.info('all');
  const cmd = {};
  for (const m of text.matchAll(/cmdstat_(\w+):calls=(\d+),usec=(\d+)/g)) cmd[m[1]] = { calls: Number(m[2]), usec: Number(m[3]) };
  const cpu = Number(/used_cpu_user:([\d.]+)/.exec(text)[1]) + Number(/used_cpu_sys:([\d.]+)/.exec(text)[1]);
  return { cmd, cpu };
}

const server = await startRedisServer({ args: ['--maxmemory', '512mb', '--maxmemory-policy', 'allkeys-lru'] });
const outDir = join(repo, 'bench', 'results');
const previous = PARTS.size < 4 && existsSync(join(outDir, 'layer-redis.json')) ? JSON.parse(readFileSync(join(outDir, 'layer-redis.json'), 'utf8')) : {};
const result = {
  ...previous,
  name: 'layer-redis',
  date: new Date().toISOString(),
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, loadAvgAtStart: os.loadavg().map((x) => round(x, 2)) },
  settings: { seconds: SECONDS, rounds: ROUNDS, concurrencies: CONCURRENCIES, keys: KEYS, budgetMs: BUDGET, textSource: TEXT.source },
  targets: { ...(previous.targets ?? {}) },
};
try {
  const bare = new Redis(server.url, { enableAutoPipelining: true });
  const scope = resolveScope({ tenant: 'bench', namespace: 'l2' });

  // ---------------------------------------------------------------- 1. hits
  if (PARTS.has('hits')) {
    const layer = new RedisLayer({ url: server.url, prefix: 'bench' });
    await layer.connect();
    // The previous default (ioredis auto-pipelining on), same keys: what turning it off changed.
    const pipelined = new RedisLayer({ url: server.url, prefix: 'bench', redisOptions: { enableAutoPipelining: true } });
    await pipelined.connect();
    // Core with its defaults, L2 only (an L1 would answer these): key + policy + L2 hit.
    const cache = new MultiLayerCache({ layers: [layer], scope });
    const cachePipelined = new MultiLayerCache({ layers: [pipelined], scope });
    cachePipelined.on('error', () => undefined);
    cache.on('error', () => undefined);
    const texts = Array.from({ length: KEYS }, (_, i) => requestText(i));
    const keys = texts.map((t) => computeKey(JSON.parse(t), scope));
    const rawKeys = keys.map((k) => layer.keys.entry(k));
    for (let i = 0; i < KEYS; i += 100) {
      await Promise.all(
        keys.slice(i, i + 100).map((k, j) =>
          layer.set(k, {
            value: completion(i + j),
            createdAt: Date.now(),
            ttlMs: 3_600_000,
            tags: [],
            model: 'gpt-4o-mini',
            usage: { inputTokens: 412, outputTokens: 480 },
          }),
        ),
      );
    }
    const sample = await bare.getBuffer(rawKeys[0]);
    result.valueBytes = sample.length;
    result.requestBytes = Math.round(texts.reduce((n, t) => n + Buffer.byteLength(t), 0) / texts.length);
    result.valueCodec = ['json', 'deflate', 'brotli'][sample[2]];
    const payloadAt = (b) => 7 + b.readUInt32BE(3);

    const ops = {
      'bare ioredis GET': (i) => bare.getBuffer(rawKeys[i]),
      // Same GET plus the JSON.parse any consumer needs: shows what of the gap is decoding.
      'bare GET + JSON.parse': (i) => bare.getBuffer(rawKeys[i]).then((b) => JSON.parse(b.toString('utf8', payloadAt(b)))),
      'RedisLayer.get': (i) => layer.get(keys[i]),
      // Each lookup gets a request freshly parsed from its body (a new object, as a server
      // receives it); the parse itself is not timed (the L1 bench does the same), as the bare GET
      // pays no parse either.
      'MultiLayerCache.getOrLoad (L2 hit, defaults)': {
        input: (i) => JSON.parse(texts[i]),
        run: (req) => cache.getOrLoad(req, async () => 'miss').then((r) => (r.status === 'hit' ? r : undefined)),
      },
      'RedisLayer.get, auto-pipelined client (previous default)': (i) => pipelined.get(keys[i]),
      'getOrLoad, auto-pipelined client (previous default)': {
        input: (i) => JSON.parse(texts[i]),
        run: (req) => cachePipelined.getOrLoad(req, async () => 'miss').then((r) => (r.status === 'hit' ? r : undefined)),
      },
    };
    for (const c of CONCURRENCIES) for (const op of Object.values(ops)) await throughput(op, c, 0.2); // warm-up

    const hits = {};
    let failures = 0;
    for (const c of CONCURRENCIES) {
      const tp = Object.fromEntries(Object.keys(ops).map((k) => [k, []]));
      const cpu = Object.fromEntries(Object.keys(ops).map((k) => [k, []]));
      const lat = Object.fromEntries(Object.keys(ops).map((k) => [k, []]));
      // Rounds interleave the variants, so machine noise hits them alike; report medians.
      for (let r = 0; r < ROUNDS; r++) {
        for (const [name, op] of Object.entries(ops)) {
          const t = await throughput(op, c, SECONDS);
          tp[name].push(t.opsPerSec);
          cpu[name].push(t.cpuUsPerOp);
          lat[name].push(...t.lat);
          failures += t.failed;
        }
      }
      const bareName = 'bare ioredis GET';
      hits[`concurrency ${c}`] = Object.fromEntries(
        Object.keys(ops).map((name) => [
          name,
          {
            hitsPerSec: Math.round(median(tp[name])),
            // median over slices of (this slice / the bare slice of the same round)
            ratioToBare: round(median(tp[name].map((x, r) => x / tp[bareName][r]))),
            nodeCpuUsPerHit: round(median(cpu[name]), 2),
            p50Ms: round(pct(lat[name], 50), 4),
            p99Ms: round(pct(lat[name], 99), 4),
          },
        ]),
      );
    }
    result.hits = hits;
    result.failedHitsDuringHealthyRuns = failures;
    await pipelined.close();
    // Merged: a run of some parts keeps the other parts' targets (from the results it merges into).
    result.targets = {
      ...result.targets,
      ...Object.fromEntries(
        CONCURRENCIES.flatMap((c) => [
          [`RedisLayer.get >= 0.8x bare GET at concurrency ${c}`, hits[`concurrency ${c}`]['RedisLayer.get'].ratioToBare],
          [`getOrLoad L2 hit >= 0.8x bare GET at concurrency ${c}`, hits[`concurrency ${c}`]['MultiLayerCache.getOrLoad (L2 hit, defaults)'].ratioToBare],
        ]).map(([k, v]) => [k, { value: v, met: v >= 0.8 }]),
      ),
    };
    await layer.close();
  }

  // ---------------------------------------------------------------- 2. writes
  if (PARTS.has('writes')) {
    const N = Number(process.env.BENCH_WRITES ?? 20_000);
    const layer = new RedisLayer({ url: server.url, prefix: 'wbench', writeTimeoutMs: 5_000 });
    await layer.connect();
    const value = completion(7);
    const wscope = resolveScope({ tenant: 'bench', namespace: 'writes' });
    const bytes = await (async () => {
      const k = computeKey({ probe: 1 }, wscope);
      await layer.set(k, { value, createdAt: Date.now(), ttlMs: 3_600_000, tags: [] });
      return bare.getBuffer(layer.keys.entry(k));
    })();
    // The script every write ran before (one EVALSHA per write; copied from the previous
    // release for the comparison): SET, then per index ZADD + trim + ZRANGE + PEXPIREAT.
    const OLD = `
local function index(k, score, member, gt, now)
  if gt then redis.call('ZADD', k, 'GT', score, member) else redis.call('ZADD', k, score, member) end
  redis.call('ZREMRANGEBYSCORE', k, '-inf', '(' .. now)
  local top = redis.call('ZRANGE', k, -1, -1, 'WITHSCORES')
  if top[2] == 'inf' then redis.call('PERSIST', k) elseif top[2] then redis.call('PEXPIREAT', k, math.floor(tonumber(top[2])) + 1000) end
end
local ttl = tonumber(ARGV[2])
if ttl > 0 then redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl) else redis.call('SET', KEYS[1], ARGV[1]) end
index(KEYS[2], ARGV[3], KEYS[1], false, ARGV[4])
for i = 4, #KEYS do index(KEYS[i], ARGV[3], KEYS[1], false, ARGV[4]); index(KEYS[3], ARGV[3], ARGV[i + 1], true, ARGV[4]) end
return 1`;
    const oldSha = await bare.script('LOAD', OLD);
    const compareDist = process.env.BENCH_COMPARE_DIST;
    const other = compareDist ? new (await import(compareDist)).RedisLayer({ url: server.url, prefix: 'wbcmp', writeTimeoutMs: 5_000 }) : undefined;
    if (other) await other.connect();
    const variants = {
      'plain SET (same bytes, PX)': (i) => bare.set(`wb:set:${i}`, bytes, 'PX', 3_600_000),
      'RedisLayer.set, no tags': (i) => layer.set(computeKey({ w: i }, wscope), { value, createdAt: Date.now(), ttlMs: 3_600_000, tags: [] }),
      'RedisLayer.set, 1 tag': (i) =>
        layer.set(computeKey({ w: i, t: 1 }, wscope), { value, createdAt: Date.now(), ttlMs: 3_600_000, tags: ['topic:billing'] }),
      ...(other && {
        'compared build: RedisLayer.set, no tags': (i) => other.set(computeKey({ w: i }, wscope), { value, createdAt: Date.now(), ttlMs: 3_600_000, tags: [] }),
        'compared build: RedisLayer.set, 1 tag': (i) =>
          other.set(computeKey({ w: i, t: 1 }, wscope), { value, createdAt: Date.now(), ttlMs: 3_600_000, tags: ['topic:billing'] }),
      }),
      'previous Lua write, no tags': (i) => {
        const now = Date.now();
        return bare.evalsha(oldSha, 3, `wb:old:{s}:${i}`, 'wb:oldidx:{s}', 'wb:oldtags:{s}', bytes, 3_600_000, now + 3_600_000, now);
      },
      'previous Lua write, 1 tag': (i) => {
        const now = Date.now();
        return bare.evalsha(
          oldSha,
          4,
          `wb:oldt:{s}:${i}`,
          'wb:oldtidx:{s}',
          'wb:oldttags:{s}',
          'wb:oldtag:{s}:topic',
          bytes,
          3_600_000,
          now + 3_600_000,
          now,
          'topic',
        );
      },
    };
    const writes = {};
    for (const c of [1, 16]) {
      const per = Object.fromEntries(Object.keys(variants).map((k) => [k, { cpu: [], cmd: [], wall: [] }]));
      for (let r = 0; r < Number(process.env.BENCH_WRITE_ROUNDS ?? 3); r++) {
        for (const [name, fn] of Object.entries(variants)) {
          const n = Math.floor(N / (c === 1 ? 8 : 2));
          const base = r * 1_000_000 + c * 10_000_000;
          const a = await redisInfo(bare);
          const t0 = performance.now();
          for (let i = 0; i < n; i += c) await Promise.all(Array.from({ length: Math.min(c, n - i) }, (_, j) => fn(base + i + j)));
          const wall = performance.now() - t0;
          const b = await redisInfo(bare);
          // exec / evalsha report the time of the commands they run: count the outer command only.
          const d = (name2) => (b.cmd[name2]?.usec ?? 0) - (a.cmd[name2]?.usec ?? 0);
          const cmdUsec = name.startsWith('plain') ? d('set') : name.startsWith('previous Lua') ? d('evalsha') : d('exec') + d('multi');
          per[name].cpu.push(((b.cpu - a.cpu) * 1e6) / n);
          per[name].cmd.push(cmdUsec / n);
          per[name].wall.push((wall * 1_000) / n);
        }
      }
      const setCpu = median(per['plain SET (same bytes, PX)'].cpu);
      const setCmd = median(per['plain SET (same bytes, PX)'].cmd);
      writes[`concurrency ${c}`] = Object.fromEntries(
        Object.entries(per).map(([name, v]) => [
          name,
          {
            redisCpuUsPerWrite: round(median(v.cpu), 2),
            redisCpuRatioToSet: round(median(v.cpu) / setCpu, 2),
            commandstatsUsPerWrite: round(median(v.cmd), 2),
            commandstatsRatioToSet: round(median(v.cmd) / setCmd, 2),
            // Each round against the SET of the same round: the spread the machine's noise leaves.
            commandstatsRatioRange: ((xs) => [round(Math.min(...xs), 2), round(Math.max(...xs), 2)])(
              v.cmd.map((x, r) => x / per['plain SET (same bytes, PX)'].cmd[r]),
            ),
            wallUsPerWrite: round(median(v.wall), 1),
          },
        ]),
      );
    }
    result.writes = {
      valueBytes: bytes.length,
      rounds: Number(process.env.BENCH_WRITE_ROUNDS ?? 3),
      ...(compareDist && { comparedBuild: process.env.BENCH_COMPARE_LABEL ?? compareDist }),
      ...writes,
    };
    for (const c of [1, 16]) {
      for (const name of ['RedisLayer.set, no tags', 'RedisLayer.set, 1 tag']) {
        const w = writes[`concurrency ${c}`][name];
        result.targets[`${name}: Redis CPU <= 3x SET at concurrency ${c}`] = { value: w.redisCpuRatioToSet, met: w.redisCpuRatioToSet <= 3 };
        result.targets[`${name}: commandstats <= 3x SET at concurrency ${c}`] = { value: w.commandstatsRatioToSet, met: w.commandstatsRatioToSet <= 3 };
      }
    }
    await layer.clear();
    await layer.close();
    if (other) await other.close();
  }

  // ---------------------------------------------------------------- 3. compression
  if (PARTS.has('compression')) {
    const rows = [];
    for (const size of [2_150, 8_192, 16_384, 65_536]) {
      const vals = Array.from({ length: 40 }, (_, i) => Buffer.from(JSON.stringify({ value: completion(i * 11, size), createdAt: 1, ttlMs: 1, tags: [] })));
      const packed = vals.map((v) => deflateSync(v, { level: 6 }));
      const reps = Math.max(200, Math.floor(4e6 / size));
      const time = (f) => {
        for (let i = 0; i < reps; i++) f(i % 40);
        const t0 = process.hrtime.bigint();
        for (let i = 0; i < reps; i++) f(i % 40);
        return Number(process.hrtime.bigint() - t0) / reps / 1_000;
      };
      const json = [];
      const inflate = [];
      for (let r = 0; r < 5; r++) {
        json.push(time((i) => JSON.parse(vals[i].toString('utf8'))));
        inflate.push(time((i) => JSON.parse(inflateSync(packed[i]).toString('utf8'))));
      }
      const raw = vals.reduce((a, v) => a + v.length, 0) / 40;
      const def = packed.reduce((a, v) => a + v.length, 0) / 40;
      rows.push({
        jsonBytes: Math.round(raw),
        deflatedBytes: Math.round(def),
        savedBytes: Math.round(raw - def),
        decodeUsJson: round(median(json), 2),
        decodeUsDeflate: round(median(inflate), 2),
        extraUsPerHit: round(median(inflate) - median(json), 2),
      });
    }
    result.compression = { codec: 'deflate level 6 (zlib)', rows };
  }

  // ---------------------------------------------------------------- 4. faults
  if (PARTS.has('faults')) {
    const layer = new RedisLayer({ url: server.url, prefix: 'fbench', timeoutMs: BUDGET, breaker: { cooldownMs: 500 } });
    await layer.connect();
    const cache = new MultiLayerCache({ layers: [{ layer, budgetMs: BUDGET }], policy: 'always', defaultTtlMs: 3_600_000 });
    cache.on('error', () => undefined);
    const requests = Array.from({ length: KEYS }, (_, i) => ({ q: i }));
    for (let i = 0; i < KEYS; i += 100) await Promise.all(requests.slice(i, i + 100).map((r, j) => cache.getOrLoad(r, async () => completion(i + j))));
    await cache.flush();
    const seq = async (op, n) => {
      const xs = [];
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        await op(i % KEYS);
        xs.push(performance.now() - t0);
      }
      return xs;
    };
    const healthy = await seq((i) => cache.lookup(requests[i]), 1_000);
    server.pause();
    const pausedStart = performance.now();
    const paused = [];
    let failed = 0;
    while (performance.now() - pausedStart < 3_000) {
      const i = paused.length % KEYS;
      const t0 = performance.now();
      try {
        await cache.lookup(requests[i]);
      } catch {
        failed++;
      }
      paused.push(performance.now() - t0);
    }
    const concurrentPaused = await throughput((i) => cache.lookup(requests[i]).then(() => 1), 64, 1);
    server.resume();
    const resumedAt = performance.now();
    let recoveredMs = -1;
    while (performance.now() - resumedAt < 10_000) {
      if ((await cache.lookup(requests[0]))?.layer === 'redis') {
        recoveredMs = performance.now() - resumedAt;
        break;
      }
      await sleep(10);
    }
    const healthyP50 = pct(healthy, 50);
    result.sigstop = {
      requests: paused.length,
      failedRequests: failed,
      healthyP50Ms: round(healthyP50, 4),
      pausedP50Ms: round(pct(paused, 50), 4),
      pausedP99Ms: round(pct(paused, 99), 3),
      pausedMaxMs: round(
        paused.reduce((a, b) => Math.max(a, b), 0),
        2,
      ),
      addedMaxMs: round(paused.reduce((a, b) => Math.max(a, b), 0) - healthyP50, 2),
      requestsThatWaitedTheBudget: paused.filter((x) => x >= BUDGET * 0.8).length,
      requestsPerSecWhilePausedAtConcurrency64: Math.round(concurrentPaused.opsPerSec),
      recoveryAfterSigcontMs: round(recoveredMs, 1),
      breaker: layer.stats(),
    };
    await cache.close();

    // Misses with the coordinator while Redis hangs (L1 + L2, default timeouts): what a miss pays.
    const mlayer = new RedisLayer({ url: server.url, prefix: 'mbench' });
    await mlayer.connect();
    const mcache = new MultiLayerCache({ layers: [new MemoryLayer(), mlayer], coordinator: mlayer.coordinator, policy: 'always' });
    mcache.on('error', () => undefined);
    server.pause();
    const missWaits = [];
    let missFailed = 0;
    for (let i = 0; i < 200; i++) {
      const t0 = performance.now();
      try {
        await mcache.getOrLoad({ miss: i }, async () => 'loaded');
      } catch {
        missFailed++;
      }
      missWaits.push(performance.now() - t0);
    }
    server.resume();
    result.sigstopMissesWithCoordinator = {
      requests: missWaits.length,
      failedRequests: missFailed,
      firstMissesMs: missWaits.slice(0, 4).map((x) => round(x, 1)),
      maxMs: round(Math.max(...missWaits), 1),
      p50Ms: round(pct(missWaits, 50), 3),
      breaker: mlayer.stats(),
    };
    await mcache.close();
  }
  bare.disconnect();
} finally {
  await server.stop();
}

result.machine.loadAvgAtEnd = os.loadavg().map((x) => round(x, 2));
if (PARTS.size < 4) {
  result.partsRun = [...PARTS];
  // When each section was measured (a section kept from the last results keeps its date).
  const before = (p) =>
    previous.partDates?.[p] ?? (previous.partsRun ? (previous.partsRun.includes(p) ? previous.date : previous.otherPartsFrom) : previous.date);
  result.partDates = Object.fromEntries(['hits', 'writes', 'compression', 'faults'].map((p) => [p, PARTS.has(p) ? result.date : before(p)]));
  result.otherPartsFrom = previous.otherPartsFrom ?? previous.date;
}
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, 'layer-redis.json'), JSON.stringify(result, null, 2) + '\n');

const md = [
  `# layer-redis benchmark (${result.date})`,
  '',
  `One local redis-server (started by the bench), ${result.machine.cpus} CPUs shared with other work, Node ${result.machine.node}. Load average (1/5/15 min) ${result.machine.loadAvgAtStart.join(' / ')} at start, ${result.machine.loadAvgAtEnd.join(' / ')} at end: compare ratios (measured in the same run, interleaved), not absolutes.`,
  ...(result.partsRun
    ? [
        '',
        `This run measured ${result.partsRun.join(', ')} only; the other sections are from earlier runs: ${Object.entries(result.partDates)
          .filter(([p]) => !PARTS.has(p))
          .map(([p, d]) => `${p} ${d}`)
          .join(', ')}.`,
      ]
    : []),
  '',
  `## Hits: ${result.valueBytes}-byte values (${result.valueCodec}; ${TEXT.source}), medians of ${ROUNDS} interleaved slices × ${SECONDS} s per path`,
  '',
  ...(result.requestBytes
    ? [
        `The getOrLoad paths look up a chat request of ${result.requestBytes} bytes (JSON), parsed afresh for every lookup as a server receives it; the parse is not timed (the bare GET parses nothing).`,
        '',
      ]
    : []),
  '| concurrency | path | hits/s | × bare GET | Node CPU µs/hit | p50 ms | p99 ms |',
  '|---:|---|---:|---:|---:|---:|---:|',
  ...Object.entries(result.hits).flatMap(([c, paths]) =>
    Object.entries(paths).map(
      ([k, v]) => `| ${c.replace('concurrency ', '')} | ${k} | ${v.hitsPerSec} | ${v.ratioToBare} | ${v.nodeCpuUsPerHit} | ${v.p50Ms} | ${v.p99Ms} |`,
    ),
  ),
  '',
  `## Writes: Redis CPU per write (${result.writes.valueBytes}-byte value)`,
  '',
  '"Redis CPU" is the server process\'s user+sys CPU (INFO cpu) per write, network handling included; "commandstats" is the time INFO commandstats books for the top-level command (EXEC+MULTI, EVALSHA, SET).',
  '',
  `Medians of ${result.writes.rounds ?? 3} interleaved rounds; "range" is the ratio of each round to that round's SET.${result.writes.comparedBuild ? ` "compared build": ${result.writes.comparedBuild}, in the same rounds.` : ''}`,
  '',
  '| concurrency | write | Redis CPU µs | × SET | commandstats µs | × SET | range | wall µs |',
  '|---:|---|---:|---:|---:|---:|---:|---:|',
  ...['concurrency 1', 'concurrency 16'].flatMap((c) =>
    Object.entries(result.writes[c]).map(
      ([k, v]) =>
        `| ${c.replace('concurrency ', '')} | ${k} | ${v.redisCpuUsPerWrite} | ${v.redisCpuRatioToSet} | ${v.commandstatsUsPerWrite} | ${v.commandstatsRatioToSet} | ${v.commandstatsRatioRange ? v.commandstatsRatioRange.join('–') : ''} | ${v.wallUsPerWrite} |`,
    ),
  ),
  '',
  `## Compression (${result.compression.codec}) on real-text completions: decode cost per hit vs bytes saved`,
  '',
  '| JSON bytes | deflated | saved | decode µs, JSON | decode µs, deflate | extra µs per hit |',
  '|---:|---:|---:|---:|---:|---:|',
  ...result.compression.rows.map(
    (r) => `| ${r.jsonBytes} | ${r.deflatedBytes} | ${r.savedBytes} | ${r.decodeUsJson} | ${r.decodeUsDeflate} | ${r.extraUsPerHit} |`,
  ),
  '',
  '## Targets',
  '',
  ...Object.entries(result.targets).map(([k, v]) => `- ${k}: ${v.value} (${v.met ? 'met' : 'NOT met'})`),
  '',
  '## Faults',
  '',
  `SIGSTOP (budget ${BUDGET} ms, hits through MultiLayerCache.lookup): ${result.sigstop.requests} sequential requests in 3 s, ${result.sigstop.failedRequests} failed; max ${result.sigstop.pausedMaxMs} ms (added ${result.sigstop.addedMaxMs} ms over the healthy p50), p50 ${result.sigstop.pausedP50Ms} ms; ${result.sigstop.requestsThatWaitedTheBudget} requests waited the budget (before the breaker opened); ${result.sigstop.requestsPerSecWhilePausedAtConcurrency64} requests/s at concurrency 64 while paused (all misses); hits from Redis again ${result.sigstop.recoveryAfterSigcontMs} ms after SIGCONT.`,
  '',
  `Misses with the coordinator while SIGSTOPped (L1 + L2, default options): ${result.sigstopMissesWithCoordinator.requests} sequential misses, ${result.sigstopMissesWithCoordinator.failedRequests} failed; the first ones took ${result.sigstopMissesWithCoordinator.firstMissesMs.join(', ')} ms (read + one lock attempt, until the breaker opened), max ${result.sigstopMissesWithCoordinator.maxMs} ms, p50 ${result.sigstopMissesWithCoordinator.p50Ms} ms.`,
  '',
].join('\n');
writeFileSync(join(outDir, 'layer-redis.md'), md);
console.log(md);
