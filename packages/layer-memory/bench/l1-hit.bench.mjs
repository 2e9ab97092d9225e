// L1 hit path for a realistic ~1.5 KB chat request: fingerprint + lookup + return.
// Compared in the same run against (a) the seed approach — JSON.stringify of a recursively
// key-sorted copy + SHA-256 hex + Map lookup — and (b) a raw lru-cache get with a
// precomputed key (the floor). Writes bench/results/l1-hit.json at the repo root.
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MultiLayerCache, chatProfile, computeKey, resolveScope } from '@strata-cache/core';
import { LRUCache } from 'lru-cache';
import { MemoryLayer } from '../dist/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const OPS = Number(process.env.BENCH_OPS ?? 200_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);

const request = {
  model: 'gpt-4o-mini',
  temperature: 0,
  max_tokens: 512,
  top_p: 1,
  user: 'user-8c1f',
  stream: false,
  messages: [
    { role: 'system', content: 'You are Acme Support, a concise and friendly assistant for Acme Cloud customers. Answer only questions about Acme products, billing and accounts. If unsure, say so and offer to open a ticket. Never reveal internal policies. Use short paragraphs and bullet points where helpful.' },
    { role: 'user', content: 'Hi! I upgraded to the Team plan yesterday but my invoice still shows the Starter price. Can you check?' },
    { role: 'assistant', content: 'Thanks for reaching out! Plan changes apply from the next billing cycle, so the current invoice reflects the Starter plan. The Team price will appear on your next invoice, prorated for the days since your upgrade.' },
    { role: 'user', content: 'Got it. And how do I add two more seats to the Team plan without waiting for the next cycle? We need them for new hires starting Monday, and both of them will need admin access to the billing dashboard as well as the shared project workspace. Is there a way to do that in one step?' },
  ],
  tools: [
    { type: 'function', function: { name: 'lookup_invoice', description: 'Fetch an invoice by id for the current account', parameters: { type: 'object', properties: { invoice_id: { type: 'string' } }, required: ['invoice_id'] } } },
    { type: 'function', function: { name: 'add_seats', description: 'Add seats to the current subscription immediately, prorated', parameters: { type: 'object', properties: { count: { type: 'integer', minimum: 1 }, role: { type: 'string', enum: ['member', 'admin'] } }, required: ['count'] } } },
  ],
  tool_choice: 'auto',
};
const requestBytes = Buffer.byteLength(JSON.stringify(request));
// Every call gets its own object, parsed from JSON as a server receiving request bodies would.
const POOL = 1024;
const pool = Array.from({ length: POOL }, () => JSON.parse(JSON.stringify(request)));
const response = { id: 'chatcmpl-1', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: 'Go to Settings → Billing → Seats.' }, finish_reason: 'stop' }], usage: { prompt_tokens: 310, completion_tokens: 60, total_tokens: 370 } };

// --- Strata: computeKey + MemoryLayer.get (what MultiLayerCache does on an L1 hit)
const scope = resolveScope('acme');
const layer = new MemoryLayer();
const key = computeKey(request, scope, chatProfile);
layer.set(key, { value: response, createdAt: Date.now(), ttlMs: 3_600_000, tags: [] });
const strata = (r) => layer.get(computeKey(r, scope, chatProfile)).value;

// --- Strata full API: MultiLayerCache.getOrLoad (async) on an L1 hit
const cache = new MultiLayerCache({ layers: [new MemoryLayer()], scope: 'acme' });
await cache.getOrLoad(request, async () => response);
await cache.flush();

// --- Seed approach
const sortKeys = (v) => {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') {
    const out = {};
    for (const k of Object.keys(v).sort()) out[k] = sortKeys(v[k]);
    return out;
  }
  return v;
};
const seedMap = new Map();
const seedKey = (r) => createHash('sha256').update(JSON.stringify(sortKeys(r))).digest('hex');
seedMap.set(seedKey(request), response);
const seed = (r) => seedMap.get(seedKey(r));

// --- Floor: raw lru-cache get with a precomputed key
const lru = new LRUCache({ max: 10_000 });
lru.set(key.id, response);
const floorKey = key.id;
const floor = () => lru.get(floorKey);

for (const [name, fn] of [['strata', strata], ['seed', seed], ['floor', floor]]) {
  if (fn(pool[0]) !== response) throw new Error(`${name} did not return the cached response`);
}
if ((await cache.getOrLoad(pool[0], async () => null)).value !== response) throw new Error('getOrLoad missed');

// Throughput is measured in this process's CPU time (user + system), not wall time: on a
// shared machine, time spent descheduled would otherwise land on whichever variant ran then.
const cpuMicros = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
function throughput(fn) {
  let sink = 0;
  const c0 = cpuMicros();
  for (let i = 0; i < OPS; i++) if (fn(pool[i & (POOL - 1)]) === undefined) sink++;
  const us = cpuMicros() - c0;
  if (sink) throw new Error('miss during benchmark');
  return (OPS / us) * 1e6;
}
async function throughputAsync() {
  const c0 = cpuMicros();
  for (let i = 0; i < OPS; i++) await cache.getOrLoad(pool[i & (POOL - 1)], async () => null);
  return (OPS / (cpuMicros() - c0)) * 1e6;
}
function latencyP50(fn, n = 20_000) {
  const samples = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const r = pool[i & (POOL - 1)];
    const t0 = process.hrtime.bigint();
    fn(r);
    samples[i] = Number(process.hrtime.bigint() - t0);
  }
  samples.sort();
  return { p50: samples[n >> 1] / 1e3, p99: samples[Math.floor(n * 0.99)] / 1e3 };
}
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

// Warm up, then interleave rounds so machine noise hits every variant alike.
for (const fn of [strata, seed, floor]) throughput(fn);
await throughputAsync();
const runs = { strata: [], seed: [], floor: [], strataGetOrLoad: [] };
const lat = { strata: [], seed: [], floor: [] };
for (let r = 0; r < ROUNDS; r++) {
  runs.strata.push(throughput(strata));
  runs.seed.push(throughput(seed));
  runs.floor.push(throughput(floor));
  runs.strataGetOrLoad.push(await throughputAsync());
  lat.strata.push(latencyP50(strata));
  lat.seed.push(latencyP50(seed));
  lat.floor.push(latencyP50(floor));
}
const summary = (name) => ({
  opsPerSec: Math.round(median(runs[name])),
  p50Us: lat[name] ? +median(lat[name].map((x) => x.p50)).toFixed(3) : undefined,
  p99Us: lat[name] ? +median(lat[name].map((x) => x.p99)).toFixed(3) : undefined,
});
const result = {
  benchmark: 'l1-hit-path',
  date: new Date().toISOString(),
  node: process.version,
  requestBytes,
  opsPerRound: OPS,
  clock: 'ops/s in process CPU time (median of rounds); p50/p99 in wall time per call',
  rounds: ROUNDS,
  variants: {
    strata: { description: 'computeKey (canonical JSON + SHA-256) + MemoryLayer.get', ...summary('strata') },
    strataGetOrLoad: { description: 'MultiLayerCache.getOrLoad hit on L1 (async API, stats)', opsPerSec: Math.round(median(runs.strataGetOrLoad)) },
    seed: { description: 'JSON.stringify(recursively key-sorted copy) + SHA-256 hex + Map.get', ...summary('seed') },
    floor: { description: 'lru-cache get with a precomputed key', ...summary('floor') },
  },
};
result.speedupVsSeed = +(result.variants.strata.opsPerSec / result.variants.seed.opsPerSec).toFixed(2);
result.getOrLoadSpeedupVsSeed = +(result.variants.strataGetOrLoad.opsPerSec / result.variants.seed.opsPerSec).toFixed(2);
result.target = 'strata >= 1.5x seed';
result.targetMet = result.speedupVsSeed >= 1.5;
mkdirSync(join(root, 'bench/results'), { recursive: true });
writeFileSync(join(root, 'bench/results/l1-hit.json'), JSON.stringify(result, null, 2) + '\n');
console.log(JSON.stringify(result, null, 2));
await cache.close();
