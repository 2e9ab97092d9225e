// One memory measurement in a fresh process (started by semantic-bench.mjs with --expose-gc):
//   node --expose-gc bench/memory-child.mjs <layer dist dir> <entries> <base vectors .f32 file> <texts .json file>
// Stores <entries> chat-request entries in one partition through SemanticLayer.setMany (the
// layer's own path: embedding cache, then the index), with an embedder that hands out fresh
// vectors (mixes of real USE-lite vectors) as a real one would, and prints the growth of the
// process's memory per entry as JSON.
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { computeKey, computeSemantic, resolveScope } from '@strata-cache/core';
import { graphsSettled, mix, reseed, rand } from './lib.mjs';

const [dist, nArg, vecFile, textFile] = process.argv.slice(2);
const N = Number(nArg);
const DIMS = 512;
const gc = globalThis.gc ?? (() => {});
const { SemanticLayer } = await import(pathToFileURL(`${dist}/index.js`).href);
const buf = readFileSync(vecFile);
const floats = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
const base = Array.from({ length: floats.length / DIMS }, (_, i) => floats.subarray(i * DIMS, (i + 1) * DIMS));
const texts = JSON.parse(readFileSync(textFile, 'utf8'));
// Distinct questions, flat strings as a parsed request body holds them.
const textOf = (i) => (i < texts.length ? texts[i] : JSON.parse(JSON.stringify(`${texts[i % texts.length]} (${Math.floor(i / texts.length)})`)));

const embedder = {
  id: 'use-lite@bench/memory',
  dimensions: DIMS,
  async embed(batch) {
    // Fresh vectors per call, as a real embedder returns them.
    return batch.map(() => mix(base[Math.floor(rand() * base.length)], base[Math.floor(rand() * base.length)]));
  },
};
reseed(7);
const scope = resolveScope({ tenant: 'bench', namespace: 'memory' });
const system = { role: 'system', content: 'You are the support assistant of an online shop. Answer briefly.' };
const item = (i) => {
  const req = { model: 'gpt-4o-mini', temperature: 0, messages: [system, { role: 'user', content: textOf(i) }] };
  // A 100-character answer, parsed from JSON as a response body is (a flat string): the stored
  // value is part of what an entry costs.
  const value = JSON.parse(JSON.stringify(`Answer ${String(i).padStart(8, '0')}: ${'x'.repeat(82)}.`));
  return { key: computeKey(req, scope), entry: { value, createdAt: Date.now(), tags: [], semantic: computeSemantic(req, scope) } };
};
const settle = async () => {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 30));
  }
};

// Warm-up on a second layer that stays alive (so nothing it freed is reused by the measured
// one): compiles the code paths and lets V8 size its young generation before the baseline.
const warm = new SemanticLayer({ embedder: { ...embedder, id: 'use-lite@bench/warm-up' }, guards: [], selector: false, threshold: 0.9 });
await warm.ready();
for (let i = 0; i < 2_000; i += 500) await warm.setMany(Array.from({ length: 500 }, (_, k) => item(10_000_000 + i + k)));
// Its graph (2,000 entries cross flatLimit) is whole before the baseline: a build finishing inside
// the measured window would free its flat copy there and understate the measured layer's bytes.
await graphsSettled(warm);
const layer = new SemanticLayer({ embedder, guards: [], selector: false, threshold: 0.9, maxEntries: N + 1, ...JSON.parse(process.env.EXTRA ?? '{}') });
await layer.ready();
await settle();
const before = process.memoryUsage();
const t0 = performance.now();
for (let i = 0; i < N; i += 1_000) await layer.setMany(Array.from({ length: Math.min(1_000, N - i) }, (_, k) => item(i + k)));
await graphsSettled(layer);
const insertMs = performance.now() - t0;
await settle();
const after = process.memoryUsage();
const stats = layer.stats();
const per = (k) => Math.round((after[k] - before[k]) / N);
console.log(
  JSON.stringify({
    entries: stats.entries,
    indexed: stats.indexed,
    graphPartitions: stats.graphPartitions,
    embeddingCache: stats.embeddingCache,
    rssBytesPerEntry: per('rss'),
    heapBytesPerEntry: per('heapUsed'),
    heapTotalBytesPerEntry: per('heapTotal'),
    arrayBuffersBytesPerEntry: per('arrayBuffers'),
    externalBytesPerEntry: per('external'),
    indexBytesPerEntryEstimated: Math.round(stats.indexBytes / N),
    insertMsPerEntry: Math.round((insertMs / N) * 1e4) / 1e4,
  }),
);
await layer.close();
await warm.close();
