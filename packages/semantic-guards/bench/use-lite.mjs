// A USE-lite embedder for the benchmark, loaded from a model directory (model.json, shards, vocab.json)
// through @energetic-ai (TF.js 4.5 wasm backend). Used until/unless @strata-cache/embed-use is
// available; its id names the model so cached vectors are never mixed across models.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export async function loadUseLite(modelDir) {
  const core = await import('@energetic-ai/core');
  const { initModel } = await import('@energetic-ai/embeddings');
  const model = await initModel(async () => ({
    model: await core.loadGraphModel('file://' + join(modelDir, 'model.json')),
    vocabulary: JSON.parse(readFileSync(join(modelDir, 'vocab.json'), 'utf8')),
  }));
  const backend = core.getBackend ? core.getBackend() : 'unknown';
  return {
    id: 'use-lite-512',
    dimensions: 512,
    backend,
    async embed(texts) {
      const out = await model.embed([...texts]);
      return out.map((v) => Float32Array.from(v));
    },
  };
}
