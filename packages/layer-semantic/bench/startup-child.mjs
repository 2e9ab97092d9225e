// Start-up of the semantic stack in a fresh process (started by semantic-bench.mjs):
//   node bench/startup-child.mjs <workers>
// From process start: importing the packages, loading the model in its worker threads, the
// layer's ready() (hnswlib-node), and the first query answered. Prints JSON.
const t0 = performance.now(); // ms since the process started (node's own boot included)
const { createUseEmbedder } = await import('@strata-cache/embed-use');
const { SemanticLayer } = await import('../dist/index.js');
const { computeSemantic, computeKey, resolveScope } = await import('@strata-cache/core');
const tImport = performance.now();
const embedder = await createUseEmbedder({ workers: Number(process.argv[2] ?? 2) });
const tEmbedder = performance.now();
const layer = new SemanticLayer({ embedder });
await layer.ready();
const tLayer = performance.now();
const scope = resolveScope('startup');
const req = (text) => ({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: text }] });
await layer.set(computeKey(req('How do I reset my password?'), scope), {
  value: 'a',
  createdAt: Date.now(),
  tags: [],
  semantic: computeSemantic(req('How do I reset my password?'), scope),
});
await layer.search({ ...computeSemantic(req('I forgot my password, how can I change it?'), scope), scope });
const tFirst = performance.now();
const m = process.memoryUsage();
console.log(
  JSON.stringify({
    processStartToImportedMs: Math.round(t0),
    importMs: Math.round(tImport - t0),
    embedderReadyMs: Math.round(tEmbedder - tImport),
    layerReadyMs: Math.round(tLayer - tEmbedder),
    firstWriteAndQueryMs: Math.round(tFirst - tLayer),
    totalMs: Math.round(tFirst),
    rssMiB: Math.round(m.rss / 2 ** 20),
    heapUsedMiB: Math.round(m.heapUsed / 2 ** 20),
    externalMiB: Math.round(m.external / 2 ** 20),
  }),
);
await layer.close();
await embedder.close();
