// Fills the embedding cache. Usage: node bench/embed-all.mjs [--worker w --workers W] [--only mock|lookalikes|banking77|arena|qqp]
// Order: look-alike set, mock_data, banking77 (train + test), Arena-Hard prompts, then QQP pairs in a fixed permutation (both texts of a pair together),
// so if the run is cut short the cached QQP pairs are a deterministic prefix sample.
import { join } from 'node:path';
import { EmbeddingCache } from './embedding-cache.mjs';
import { dataDir, loadArena, loadBanking77, loadLookalikes, loadMock, loadQqp, permutation, pkgDir } from './data.mjs';
import { loadUseLite } from './use-lite.mjs';

const arg = (name, def) => {
  const i = process.argv.indexOf('--' + name);
  return i >= 0 ? process.argv[i + 1] : def;
};
const worker = Number(arg('worker', '0'));
const workers = Number(arg('workers', '1'));
const only = arg('only', 'all');
const root = dataDir(arg('data-dir'));

const texts = [];
const seen = new Set();
const push = (t) => {
  if (!seen.has(t)) {
    seen.add(t);
    texts.push(t);
  }
};
if (only === 'all' || only === 'lookalikes')
  for (const p of loadLookalikes()) {
    push(p.a);
    push(p.b);
  }
if (only === 'all' || only === 'mock')
  for (const p of loadMock(root)) {
    push(p.origin);
    push(p.similar);
  }
if (only === 'all' || only === 'banking77') {
  const b = loadBanking77(root);
  for (const r of [...b.train, ...b.test]) push(r.text);
}
if (only === 'all' || only === 'arena') {
  // Arena-Hard prompts the layer would match (≤ 1,000 characters).
  const a = loadArena(root);
  for (const r of [...a.v01, ...a.v2]) if (r.prompt.length <= 1_000) push(r.prompt);
}
if (only === 'all' || only === 'qqp') {
  const qqp = loadQqp(root);
  for (const i of permutation(qqp.length)) {
    push(qqp[i].text_a);
    push(qqp[i].text_b);
  }
}

const embedder = await loadUseLite(join(root, 'models', 'universal-sentence-encoder-lite'));
const cache = new EmbeddingCache(join(pkgDir, 'bench', '.cache'), embedder.id, embedder.dimensions);
const mine = texts.filter((_, i) => i % workers === worker && !cache.has(texts[i]));
console.error(`worker ${worker}/${workers}: backend ${embedder.backend}, ${texts.length} texts, ${mine.length} to embed`);
const CHUNK = 256,
  BATCH = 16;
const t0 = Date.now();
let done = 0;
for (let c = 0; c < mine.length; c += CHUNK) {
  // Length-sorted batches inside a chunk: padding in the sparse batch costs far less.
  const chunk = mine.slice(c, c + CHUNK).sort((x, y) => x.length - y.length);
  for (let b = 0; b < chunk.length; b += BATCH) {
    const batch = chunk.slice(b, b + BATCH);
    const vecs = await embedder.embed(batch);
    cache.append(`w${worker}`, batch, vecs);
    done += batch.length;
  }
  const s = (Date.now() - t0) / 1000;
  console.error(`worker ${worker}: ${done}/${mine.length} in ${s.toFixed(0)} s (${(done / s).toFixed(1)}/s)`);
}
