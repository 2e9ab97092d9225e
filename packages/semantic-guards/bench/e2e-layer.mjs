// End-to-end check: the look-alike set through MultiLayerCache → SemanticLayer (hnswlib-node) with the
// real local embedder (@strata-cache/embed-use) and these guards. Each pair gets its own namespace:
// store text a, then ask text b. Reports hits / misses / rejections (with the guard named in the
// lookup's `rejected` metadata) per category, with and without guards.
//   node bench/e2e-layer.mjs [--threshold 0.8]   (needs the sibling packages built and hnswlib-node built)
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { MultiLayerCache, resolveScope } from '@strata-cache/core';
import { defaultGuards } from '../dist/index.js';
import { dataDir, loadLookalikes, repoDir, pkgDir } from './data.mjs';

const arg = (n, d) => {
  const i = process.argv.indexOf('--' + n);
  return i >= 0 ? process.argv[i + 1] : d;
};
const threshold = Number(arg('threshold', '0.8'));
const { SemanticLayer } = await import(join(pkgDir, '..', 'layer-semantic', 'dist', 'index.js'));
const { createUseEmbedder } = await import(join(pkgDir, '..', 'embed-use', 'dist', 'index.js'));
const embedder = await createUseEmbedder({ modelDir: join(dataDir(arg('data-dir')), 'models', 'universal-sentence-encoder-lite'), workers: 1 });
const chat = (text) => ({
  model: 'gpt-4o-mini',
  temperature: 0,
  messages: [
    { role: 'system', content: 'You are helpful.' },
    { role: 'user', content: text },
  ],
});

const pairs = loadLookalikes();
let defaultMatching;
const out = {};
// plain: threshold only; guards: the rule-based guards at the same threshold; default: the layer's
// own measured default (its threshold, guards + verifier, selector) — no options but the embedder.
for (const [label, options] of [
  ['plain', { threshold, guards: [], selector: false }],
  ['guards', { threshold, guards: defaultGuards(), selector: false }],
  ['default', {}],
]) {
  const layer = new SemanticLayer({ embedder, ...options });
  if (label === 'default') defaultMatching = layer.matching;
  const stats = {};
  let n = 0;
  for (const p of pairs) {
    const scope = resolveScope({ tenant: 'e2e', namespace: `${label}-${n++}` });
    const cache = new MultiLayerCache({ layers: [{ layer, budgetMs: 10_000 }], policy: 'always', scope });
    await cache.getOrLoad(chat(p.a), async () => `answer to ${p.a}`);
    await cache.flush();
    // On a miss, core reports turned-down candidates through the 'reject' event (a hit also carries them in `rejected`).
    const events = [];
    cache.on('reject', (e) => events.push(...e.rejected));
    const r = await cache.getOrLoad(chat(p.b), async () => `answer to ${p.b}`);
    const s = (stats[p.category] ??= { pairs: 0, hits: 0, rejectedBy: {} });
    s.pairs++;
    if (r.status === 'hit') s.hits++;
    for (const x of [...events, ...(r.rejected ?? [])]) s.rejectedBy[x.guard] = (s.rejectedBy[x.guard] ?? 0) + 1;
  }
  await layer.close();
  out[label] = stats;
}
await embedder.close?.();
const result = { name: 'semantic-guards-e2e', date: new Date().toISOString(), embedder: embedder.id, threshold, defaultMatching, byCategory: out };
mkdirSync(join(repoDir, 'bench', 'results'), { recursive: true });
writeFileSync(join(repoDir, 'bench', 'results', 'semantic-guards-e2e.json'), JSON.stringify(result, null, 2) + '\n');
const reasons = (x) =>
  Object.entries(x.rejectedBy)
    .map(([k, v]) => `${k}: ${v}`)
    .join(', ');
const lines = [
  `Look-alike set through MultiLayerCache → SemanticLayer (${embedder.id}). "no guards" and "guards": threshold ${threshold}; "default": the layer's default setting (threshold ${defaultMatching.threshold}, ${defaultMatching.guards.join(', ')}, selector ${defaultMatching.selector}).`,
  '',
  '| category | pairs | hits, no guards | hits, guards | rejections (guards) | hits, default | rejections (default) |',
  '|---|---:|---:|---:|---|---:|---|',
];
for (const cat of Object.keys(out.plain)) {
  const g = out.guards[cat];
  const d = out.default[cat];
  lines.push(`| ${cat} | ${g.pairs} | ${out.plain[cat].hits} | ${g.hits} | ${reasons(g)} | ${d.hits} | ${reasons(d)} |`);
}
writeFileSync(join(repoDir, 'bench', 'results', 'semantic-guards-e2e.md'), lines.join('\n') + '\n');
console.log(lines.join('\n'));
