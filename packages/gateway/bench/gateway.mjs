// The gateway benchmark (`pnpm --filter @strata-cache/gateway bench`), three parts, each against a
// baseline measured in the same run:
//
// 1. Cache hits/s at concurrency 64 (autocannon), beside a bare echo route of the same server
//    (same process, Fastify instance, JSON parser and hooks; no auth, no cache). Rounds interleaved.
//    Then the same two routes at a fixed rate both sustain (BENCH_CPU_RATE req/s, default 3000):
//    the gateway process's CPU time per request (Linux /proc), which does not depend on how much
//    of the machine the load generator takes.
// 2. What a miss adds: one request at a time, a fresh request each time, straight to the upstream
//    vs through the gateway (to the same upstream), interleaved in blocks; p50/p90/p99 of each.
// 3. Redis paused (SIGSTOP), resumed, killed (-9) and restarted under load at concurrency 64 on a
//    gateway whose only layer is Redis: failed requests, and throughput per phase.
//
// Processes: the upstream and the gateway each run in their own child process; autocannon and the
// latency client run here. Knobs: BENCH_DURATION_S (per autocannon run, default 4), BENCH_ROUNDS
// (default 9), BENCH_MISS_N (requests per side, default 2000). Many short interleaved rounds: on a
// shared machine the speed drifts over tens of seconds, and the median of many short side-by-side
// rounds follows the ratio more closely than a few long ones. Writes bench/results/gateway.{json,md}.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { Pool } from 'undici';
import { hashKey } from '@strata-cache/gateway';
import { supportChatRequest } from '@strata-cache/provider-test-servers';
import { startRedisServer } from '@strata-cache/test-utils';

const DURATION = Number(process.env.BENCH_DURATION_S ?? 4);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);
const MISS_N = Number(process.env.BENCH_MISS_N ?? 2000);
const CPU_RATE = Number(process.env.BENCH_CPU_RATE ?? 3000);
const CPU_SECONDS = 4;
const KEY = 'sgw_bench-key';
const UPSTREAM_KEY = 'sk-bench-upstream';
const here = fileURLToPath(new URL('.', import.meta.url));
const resultsDir = fileURLToPath(new URL('../../../bench/results/', import.meta.url));

function child(role, env = {}) {
  const proc = spawn(process.execPath, [here + 'child.mjs', role], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: proc.stdout });
    lines.on('line', (line) => {
      if (line.startsWith('READY ')) resolve({ proc, ...JSON.parse(line.slice(6)) });
    });
    proc.once('exit', (code) => reject(new Error(`${role} exited with ${code}`)));
  });
}

/**
 * BENCH_PIN=1: the gateway process (all its threads) on CPU 0 and this process (autocannon) on
 * CPU 1, with taskset, for the hit and CPU sections. Off by default. Pinned, each side has a core
 * to itself and the rounds agree closely; unpinned, the scheduler moves them about and a round's
 * echo throughput swings by half. The two settings measure different things: pinned, the
 * gateway's helper threads (GC) share its one core, which costs the allocation-heavier hit route
 * more than the echo (2026-12-06: 0.57x pinned against 0.70x unpinned on the same code).
 */
const PIN = process.env.BENCH_PIN === '1' && os.cpus().length >= 2 && hasTaskset();
function hasTaskset() {
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
function pin(pid, cpus) {
  if (PIN) execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
}
const ALL_CPUS = `0-${os.cpus().length - 1}`;

async function stop(c) {
  if (c.proc.exitCode !== null) return;
  c.proc.kill('SIGTERM');
  await new Promise((r) => c.proc.once('exit', r));
}

function gatewayConfig(upstreamURL, cache) {
  return JSON.stringify({
    server: { port: 0, host: '127.0.0.1' },
    upstreams: { openai: { baseUrl: upstreamURL, apiKey: { env: 'UPSTREAM_KEY' } } },
    keys: [{ id: 'bench', tenant: 'bench', hash: hashKey(KEY) }],
    cache: { policy: 'always', ...cache },
    log: { level: 'warn' },
  });
}

const headers = { 'content-type': 'application/json', authorization: `Bearer ${KEY}` };

async function cannon(opts) {
  const r = await autocannon({ connections: 64, duration: DURATION, method: 'POST', headers, ...opts });
  return {
    rps: r.requests.average,
    total: r.requests.total,
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    errors: r.errors,
    timeouts: r.timeouts,
    non2xx: r.non2xx,
  };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const r2 = (x) => Math.round(x * 100) / 100;
const r3 = (x) => Math.round(x * 1000) / 1000;

// ------------------------------------------------------------------------------------ 1. hits
async function hits(upstream) {
  const gw = await child('gateway', { BENCH_GATEWAY_CONFIG: gatewayConfig(upstream.baseURL, { l1: { maxEntries: 10_000 } }), UPSTREAM_KEY });
  // BENCH_PIN=1: the gateway on CPU 0, autocannon (this process) on CPU 1.
  pin(gw.proc.pid, '0');
  pin(process.pid, '1');
  const json = JSON.stringify(supportChatRequest('Can I return them if they do not fit?'));
  const stream = JSON.stringify({ ...supportChatRequest('Can I return them if they do not fit?'), stream: true });
  for (const body of [json, stream]) {
    const r = await fetch(gw.url + '/v1/chat/completions', { method: 'POST', headers, body });
    await r.text();
    const again = await fetch(gw.url + '/v1/chat/completions', { method: 'POST', headers, body });
    await again.text();
    if (again.headers.get('x-strata-cache') !== 'hit') throw new Error('warm-up did not produce a hit');
  }
  const rounds = [];
  for (let i = 0; i < ROUNDS; i++) {
    const echo = await cannon({ url: gw.url + '/bench/echo', body: json });
    const hit = await cannon({ url: gw.url + '/v1/chat/completions', body: json });
    const streamHit = await cannon({ url: gw.url + '/v1/chat/completions', body: stream });
    rounds.push({ echo, hit, streamHit, ratio: r3(hit.rps / echo.rps), streamRatio: r3(streamHit.rps / echo.rps) });
    console.log(
      `round ${i + 1}: echo ${Math.round(echo.rps)}/s, JSON hit ${Math.round(hit.rps)}/s (${r3(hit.rps / echo.rps)}x), stream hit ${Math.round(streamHit.rps)}/s (${r3(streamHit.rps / echo.rps)}x)`,
    );
  }
  const cpu = await cpuPerRequest(gw, json);
  await stop(gw);
  pin(process.pid, ALL_CPUS);
  const bad = rounds.flatMap((r) => [r.echo, r.hit, r.streamHit]).reduce((n, x) => n + x.errors + x.timeouts + x.non2xx, 0);
  return {
    connections: 64,
    durationS: DURATION,
    pinned: PIN,
    rounds,
    median: {
      echoRps: Math.round(median(rounds.map((r) => r.echo.rps))),
      hitRps: Math.round(median(rounds.map((r) => r.hit.rps))),
      streamHitRps: Math.round(median(rounds.map((r) => r.streamHit.rps))),
      ratio: r3(median(rounds.map((r) => r.ratio))),
      streamRatio: r3(median(rounds.map((r) => r.streamRatio))),
    },
    failedRequests: bad,
    cpuAtFixedRate: cpu,
  };
}

/** CPU ticks (user, system) of a process and of its main thread, from /proc. */
function cpuTicks(pid) {
  const fields = (file) => {
    const stat = readFileSync(file, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // from field 3 (state) on
    return { user: Number(rest[11]), sys: Number(rest[12]) }; // fields 14 (utime) and 15 (stime)
  };
  return { process: fields(`/proc/${pid}/stat`), main: fields(`/proc/${pid}/task/${pid}/stat`) };
}

/**
 * Echo and JSON hits at a fixed request rate both routes sustain, interleaved: the gateway's CPU
 * time per request (its main thread, and the whole process with its helper threads). At
 * saturation the load generator shares the two cores with the gateway, so hits/s also measures
 * how much CPU the generator left; CPU per request at one rate does not.
 */
async function cpuPerRequest(gw, json) {
  if (!existsSync(`/proc/${gw.proc.pid}/stat`)) return undefined;
  let hz = 100;
  try {
    hz = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    // no getconf: Linux's usual 100 Hz
  }
  // µs of CPU per request between two readings: user + system, or user only.
  const usPer = (a, b, field, n, withSys = true) => {
    const ticks = b[field].user - a[field].user + (withSys ? b[field].sys - a[field].sys : 0);
    return r2(((ticks / hz) * 1e6) / n);
  };
  const run = async (url) => {
    const before = cpuTicks(gw.proc.pid);
    const r = await autocannon({ connections: 64, duration: CPU_SECONDS, overallRate: CPU_RATE, method: 'POST', headers, url, body: json });
    const after = cpuTicks(gw.proc.pid);
    const n = r.requests.total;
    return {
      requests: n,
      rps: Math.round(r.requests.average),
      mainUsPerRequest: usPer(before, after, 'main', n),
      mainUserUsPerRequest: usPer(before, after, 'main', n, false),
      processUsPerRequest: usPer(before, after, 'process', n),
      failed: r.errors + r.timeouts + r.non2xx,
    };
  };
  await run(gw.url + '/bench/echo'); // warm-up at this rate
  await run(gw.url + '/v1/chat/completions');
  const rounds = [];
  for (let i = 0; i < ROUNDS; i++) {
    const echo = await run(gw.url + '/bench/echo');
    const hit = await run(gw.url + '/v1/chat/completions');
    const mainRatio = r3(echo.mainUsPerRequest / hit.mainUsPerRequest);
    rounds.push({ echo, hit, mainRatio, processRatio: r3(echo.processUsPerRequest / hit.processUsPerRequest) });
    console.log(
      `cpu at ${CPU_RATE}/s, round ${i + 1}: echo ${echo.mainUsPerRequest} µs/req (main thread), JSON hit ${hit.mainUsPerRequest} µs/req (echo ÷ hit ${mainRatio})`,
    );
  }
  const med = (f) => r2(median(rounds.map(f)));
  return {
    rate: CPU_RATE,
    durationS: CPU_SECONDS,
    clockTicksPerSecond: hz,
    rounds,
    median: {
      echoMainUs: med((r) => r.echo.mainUsPerRequest),
      hitMainUs: med((r) => r.hit.mainUsPerRequest),
      echoProcessUs: med((r) => r.echo.processUsPerRequest),
      hitProcessUs: med((r) => r.hit.processUsPerRequest),
      mainRatio: r3(median(rounds.map((r) => r.mainRatio))),
      processRatio: r3(median(rounds.map((r) => r.processRatio))),
    },
    failedRequests: rounds.reduce((n, r) => n + r.echo.failed + r.hit.failed, 0),
  };
}

// ------------------------------------------------------------------------------------ 2. miss latency
async function missLatency(upstream) {
  const gw = await child('gateway', { BENCH_GATEWAY_CONFIG: gatewayConfig(upstream.baseURL, { l1: { maxEntries: 100_000 } }), UPSTREAM_KEY });
  const direct = new Pool(new URL(upstream.baseURL).origin, { connections: 1 });
  const through = new Pool(gw.url, { connections: 1 });
  const upstreamPath = new URL(upstream.baseURL).pathname + '/chat/completions';
  let n = 0;
  const one = async (pool, path, auth) => {
    const body = JSON.stringify(supportChatRequest(`Question number ${n++}: where is my order?`));
    const t = performance.now();
    const res = await pool.request({ method: 'POST', path, headers: { 'content-type': 'application/json', authorization: auth }, body });
    await res.body.text();
    const ms = performance.now() - t;
    if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
    return { ms, cache: res.headers['x-strata-cache'] };
  };
  const d = [];
  const g = [];
  // Warm both paths (connections, JIT).
  const px = [];
  for (let i = 0; i < 200; i++) {
    await one(direct, upstreamPath, `Bearer ${UPSTREAM_KEY}`);
    await one(through, '/bench/proxy', `Bearer ${KEY}`);
    await one(through, '/v1/chat/completions', `Bearer ${KEY}`);
  }
  for (let block = 0; block < MISS_N / 100; block++) {
    for (let i = 0; i < 100; i++) d.push((await one(direct, upstreamPath, `Bearer ${UPSTREAM_KEY}`)).ms);
    for (let i = 0; i < 100; i++) px.push((await one(through, '/bench/proxy', `Bearer ${KEY}`)).ms);
    for (let i = 0; i < 100; i++) {
      const r = await one(through, '/v1/chat/completions', `Bearer ${KEY}`);
      if (r.cache !== 'miss') throw new Error(`expected a miss, got ${r.cache}`);
      g.push(r.ms);
    }
  }
  await direct.close();
  await through.close();
  await stop(gw);
  const summary = (xs) => ({ p50Ms: r3(pct(xs, 50)), p90Ms: r3(pct(xs, 90)), p99Ms: r3(pct(xs, 99)) });
  const out = {
    requestsPerSide: d.length,
    direct: summary(d),
    bareProxy: summary(px),
    gateway: summary(g),
    addedP50Ms: r3(pct(g, 50) - pct(d, 50)),
    addedP90Ms: r3(pct(g, 90) - pct(d, 90)),
    bareProxyAddedP50Ms: r3(pct(px, 50) - pct(d, 50)),
    bareProxyAddedP90Ms: r3(pct(px, 90) - pct(d, 90)),
  };
  console.log(
    `miss: direct p50 ${out.direct.p50Ms} ms, through a bare proxy ${out.bareProxy.p50Ms} ms, through the gateway p50 ${out.gateway.p50Ms} ms, added ${out.addedP50Ms} ms`,
  );
  return out;
}

// ------------------------------------------------------------------------------------ 3. Redis faults
async function redisFaults(upstream) {
  const redis = await startRedisServer();
  const gw = await child('gateway', {
    BENCH_GATEWAY_CONFIG: gatewayConfig(upstream.baseURL, { l1: false, l2: { url: redis.url, prefix: 'bench-faults', timeoutMs: 50, budgetMs: 60 } }),
    UPSTREAM_KEY,
  });
  let i = 0;
  const phases = [];
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const instance = autocannon({
    url: gw.url + '/v1/chat/completions',
    connections: 64,
    duration: 12,
    method: 'POST',
    headers,
    // Half repeated questions (hits once stored), half new ones (misses that write).
    requests: [{ setupRequest: (req) => ({ ...req, body: JSON.stringify(supportChatRequest(i++ % 2 ? `repeat ${i % 50}` : `fresh ${i}`)) }) }],
  });
  let last = 0;
  let counted = 0;
  instance.on('response', () => counted++);
  const mark = (phase) => {
    phases.push({ phase, requests: counted - last });
    last = counted;
  };
  await sleep(2000);
  mark('healthy (2 s)');
  redis.pause();
  await sleep(2000);
  mark('paused, SIGSTOP (2 s)');
  redis.resume();
  await sleep(2000);
  mark('resumed (2 s)');
  await redis.kill9();
  await sleep(2000);
  mark('killed -9 (2 s)');
  await redis.restart();
  const result = await instance;
  mark('restarted (~4 s)');
  await stop(gw);
  await redis.stop();
  const out = {
    connections: 64,
    total: result.requests.total,
    ok2xx: result['2xx'],
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    failedRequests: result.errors + result.timeouts + result.non2xx,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    maxMs: result.latency.max,
    phases,
  };
  console.log(`redis faults: ${out.total} requests, ${out.failedRequests} failed; p99 ${out.p99Ms} ms, max ${out.maxMs} ms`);
  return out;
}

const upstream = await child('upstream');
let results;
try {
  const hit = await hits(upstream);
  const miss = await missLatency(upstream);
  const faults = await redisFaults(upstream);
  results = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    loadAverage: os.loadavg().map(r2),
    hits: hit,
    miss,
    redisFaults: faults,
  };
} finally {
  await stop(upstream);
}

mkdirSync(resultsDir, { recursive: true });
writeFileSync(resultsDir + 'gateway.json', JSON.stringify(results, null, 2) + '\n');
const h = results.hits;
const m = results.miss;
const f = results.redisFaults;
const md = `# Gateway benchmark

\`pnpm --filter @strata-cache/gateway bench\` — ${results.date}, Node ${results.node}, ${results.cpus} × ${results.cpuModel}, load average at the end ${results.loadAverage.join(' / ')} (a shared machine: other work ran meanwhile).

The upstream (a local OpenAI wire-format server, no model latency) and the gateway each run in a child process; autocannon and the latency client run in the benchmark's process. Request: a ~0.9 KB chat completion (system prompt, history, question).

## 1. Cache hits per second at concurrency 64

Baseline: \`POST /bench/echo\` on the same Fastify server of the same gateway process (same JSON body parser and hooks, answers with the request body; no authentication, no cache). ${ROUNDS} interleaved rounds of ${DURATION} s each; target: JSON hits ≥ 0.7× the echo route. ${h.pinned ? 'Pinned (BENCH_PIN=1): the gateway process on CPU 0, autocannon on CPU 1.' : 'Processes not pinned to CPUs (BENCH_PIN=1 pins them; see the benchmark script).'}

| round | echo req/s | JSON hit req/s | ratio | stream hit req/s | ratio |
| ---: | ---: | ---: | ---: | ---: | ---: |
${h.rounds.map((r, i) => `| ${i + 1} | ${Math.round(r.echo.rps)} | ${Math.round(r.hit.rps)} | ${r.ratio}× | ${Math.round(r.streamHit.rps)} | ${r.streamRatio}× |`).join('\n')}
| **median** | **${h.median.echoRps}** | **${h.median.hitRps}** | **${h.median.ratio}×** | **${h.median.streamHitRps}** | **${h.median.streamRatio}×** |

JSON hits, round 1: latency p50 ${h.rounds[0].hit.p50Ms} ms, p99 ${h.rounds[0].hit.p99Ms} ms at concurrency 64. Failed requests over all runs: ${h.failedRequests}.
${
  h.cpuAtFixedRate
    ? `
### CPU per request at a fixed rate

The same echo route and JSON hit at ${h.cpuAtFixedRate.rate} req/s (a rate both sustain; ${h.cpuAtFixedRate.rounds.length} interleaved rounds of ${h.cpuAtFixedRate.durationS} s): the gateway process's CPU time (user + system, from /proc) per request — its main thread, and the whole process with its helper threads. At saturation autocannon shares the 2 cores with the gateway, so the hits/s ratio above also depends on how much CPU the load generator left over; the CPU ratio does not. Echo ÷ hit is the hits/s ratio a gateway limited by its own CPU would reach.

| round | echo µs/req (main) | hit µs/req (main) | echo ÷ hit (main) | echo µs/req (process) | hit µs/req (process) | echo ÷ hit (process) |
| ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${h.cpuAtFixedRate.rounds.map((r, i) => `| ${i + 1} | ${r.echo.mainUsPerRequest} | ${r.hit.mainUsPerRequest} | ${r.mainRatio}× | ${r.echo.processUsPerRequest} | ${r.hit.processUsPerRequest} | ${r.processRatio}× |`).join('\n')}
| **median** | **${h.cpuAtFixedRate.median.echoMainUs}** | **${h.cpuAtFixedRate.median.hitMainUs}** | **${h.cpuAtFixedRate.median.mainRatio}×** | **${h.cpuAtFixedRate.median.echoProcessUs}** | **${h.cpuAtFixedRate.median.hitProcessUs}** | **${h.cpuAtFixedRate.median.processRatio}×** |

Failed requests: ${h.cpuAtFixedRate.failedRequests}. Clock ticks of ${Math.round(1e6 / h.cpuAtFixedRate.clockTicksPerSecond)} µs: each figure is ±${r2(1e6 / h.cpuAtFixedRate.clockTicksPerSecond / (h.cpuAtFixedRate.rate * h.cpuAtFixedRate.durationS))} µs/req.
`
    : ''
}
## 2. What a miss adds

One request at a time, each a new question (a miss), ${m.requestsPerSide} per side in interleaved blocks of 100: straight to the upstream vs through the gateway (auth, key, L1 lookup, upstream call over undici, store). Target: ≤ 1 ms added at p50. ${m.bareProxy ? 'The floor of any proxy, measured beside them: a bare route on the same gateway server that sends the body on to the upstream over undici and relays its answer (no authentication, key, cache or header handling).' : ''}

| | p50 ms | p90 ms | p99 ms |
| --- | ---: | ---: | ---: |
| upstream directly | ${m.direct.p50Ms} | ${m.direct.p90Ms} | ${m.direct.p99Ms} |
${m.bareProxy ? `| through a bare proxy route (same server) | ${m.bareProxy.p50Ms} | ${m.bareProxy.p90Ms} | ${m.bareProxy.p99Ms} |\n` : ''}| through the gateway | ${m.gateway.p50Ms} | ${m.gateway.p90Ms} | ${m.gateway.p99Ms} |
| **added by the gateway** | **${m.addedP50Ms}** | **${m.addedP90Ms}** | |
${m.bareProxy ? `| added by the bare proxy | ${m.bareProxyAddedP50Ms} | ${m.bareProxyAddedP90Ms} | |\n` : ''}

## 3. Redis failing under load

A gateway whose only layer is Redis (L2, \`timeoutMs\` 50, budget 60 ms), autocannon at concurrency 64 for 12 s, half repeated questions and half new ones; Redis (its own redis-server) is paused with SIGSTOP, resumed, killed with SIGKILL and restarted empty.

**${f.failedRequests} failed requests** of ${f.total} (errors ${f.errors}, timeouts ${f.timeouts}, non-2xx ${f.non2xx}); latency p50 ${f.p50Ms} ms, p99 ${f.p99Ms} ms, max ${f.maxMs} ms.

| phase | requests answered |
| --- | ---: |
${f.phases.map((p) => `| ${p.phase} | ${p.requests} |`).join('\n')}
`;
writeFileSync(resultsDir + 'gateway.md', md);
console.log(md);
