// The index alone: SemanticLayer.search() with a table-lookup embedder (no model), 100k entries
// in one partition (HNSW) and over 1,000 partitions (flat), against a JS linear scan.
import { computeKey, computeSemantic, resolveScope } from '@strata-cache/core';
import { SemanticLayer } from '../dist/index.js';
import { graphsSettled, log, mix, noisy, pct, rand, round } from './lib.mjs';

const DIMS = 512;
const gc = globalThis.gc ?? (() => {});
const rssMb = () => process.memoryUsage().rss / 1e6;

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
  const scope = resolveScope({ tenant: 'bench', namespace: 'ns' });
  for (let i = 0; i < vectors.length; i++) {
    const p = partitionOf(i);
    const text = `entry ${i}`;
    const req = {
      model: 'gpt-4o-mini',
      messages: [
        { role: 'system', content: `system prompt ${p}` },
        { role: 'user', content: text },
      ],
    };
    let partition = reqs.get(p);
    if (!partition) reqs.set(p, (partition = computeSemantic(req, scope).partition));
    items[i] = {
      key: computeKey(req, scope),
      entry: { value: `answer ${i}`, createdAt: Date.now(), tags: [], semantic: { partition, text } },
      partition,
      scope,
    };
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
  const rssBefore = rssMb();
  const layer = new SemanticLayer({
    embedder: new TableEmbedder('bench-table', table),
    threshold: -1,
    topK: 1,
    guards: [],
    selector: false,
    embeddingCacheSize: 0,
    maxEntries: vectors.length + 1,
  });
  await layer.ready();
  const t0 = performance.now();
  for (let i = 0; i < items.length; i += 1_000) await layer.setMany(items.slice(i, i + 1_000));
  // Graph inserts still waiting in a partition's tail are part of the insert cost.
  await graphsSettled(layer);
  const insertMs = performance.now() - t0;
  gc();
  const rssAfter = rssMb();
  const stats = layer.stats();
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
    const s = performance.now();
    const r = await layer.search({ partition: it.partition, text: `query ${k}`, scope: it.scope });
    lat.push(performance.now() - s);
    if (r.hit && r.hit.key.id === items[exactTop1(vectors, members.get(q.partition), q.vec)].key.id) correct++;
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

function benchLinear(vectors, queries, n) {
  // The seed's approach: one Float32Array per stored entry, a dot product with each.
  const lat = [];
  for (let k = 0; k < Math.min(n, queries.length); k++) {
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

/** `base`: real USE-lite vectors; the rest of the N entries are mixes of two of them plus noise. */
export async function benchIndexes(base, { N, partitions, queries: nq, linearQueries }) {
  const vectors = new Array(N);
  for (let i = 0; i < N; i++) vectors[i] = i < base.length ? base[i] : mix(base[Math.floor(rand() * base.length)], base[Math.floor(rand() * base.length)]);
  const makeQueries = (partitionOf) =>
    Array.from({ length: nq }, () => {
      const i = Math.floor(rand() * N);
      // A paraphrase-like query: a stored vector with noise (cosine ≈ 0.97 to it).
      return { vec: noisy(vectors[i], 0.25), partition: partitionOf(i) };
    });
  const onePartition = () => 0;
  const q1 = makeQueries(onePartition);
  const single = await benchIndex(`${N} entries in one partition (HNSW)`, vectors, onePartition, q1);
  const linear = benchLinear(vectors, q1, linearQueries);
  log('linear scan', linear);
  gc();
  const spread = (i) => i % partitions;
  const many = await benchIndex(`${N} entries over ${partitions} partitions`, vectors, spread, makeQueries(spread));
  return {
    onePartition: single,
    manyPartitions: many,
    linearScanBaseline: { ...linear, note: `JS loop over ${N} Float32Array vectors (the seed's approach), same vectors and queries` },
    speedupVsLinearScan: round(linear.searchP50Ms / single.searchP50Ms, 1),
  };
}
