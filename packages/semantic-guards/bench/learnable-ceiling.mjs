// How much per-entry learning could gain in the calibrating mode's fixed protocol, at best: the
// BANKING77 test simulation (k = 5, seeds 77–79), each query's nearest stored question only.
// Per-entry rules are learned from the FIRST half's outcomes with the TRUE labels (a perfect judge)
// and applied to the second half; the best rule of a small grid is reported (chosen on the scored
// half: optimistic), beside the best static threshold at the same wrong rate.
//
//   node bench/learnable-ceiling.mjs      (needs the embedding cache: bench/embed-all.mjs)
import { join } from 'node:path';
import { buildSim } from './banking77-sim.mjs';
import { dataDir, pkgDir } from './data.mjs';
import { EmbeddingCache, dot } from './embedding-cache.mjs';

const root = dataDir();
const cache = new EmbeddingCache(join(pkgDir, 'bench', '.cache'), 'use-lite-512', 512);
const vec = (t) => {
  const v = cache.get(t);
  if (!v) throw new Error(`no vector for ${JSON.stringify(t.slice(0, 60))}: fill the cache with bench/embed-all.mjs`);
  return v;
};

for (const seed of [77, 78, 79]) {
  const sim = buildSim({ root, split: 'test', k: 5, seed });
  const ev = sim.entries.map((e) => vec(e.text));
  const half = Math.floor(sim.queries.length / 2);
  const nearest = (qs) =>
    qs.map((q) => {
      const u = vec(q.text);
      let bi = -1;
      let bs = -2;
      ev.forEach((v, i) => {
        const s = dot(u, v);
        if (s > bs) [bs, bi] = [s, i];
      });
      return { s: bs, ok: sim.entries[bi].intent === q.intent, e: bi };
    });
  const first = nearest(sim.queries.slice(0, half));
  const second = nearest(sim.queries.slice(half));
  const n = second.length;
  const staticAt = (maxWrong) => {
    let right = 0;
    let wrong = 0;
    let best = 0;
    for (const x of [...second].sort((a, b) => b.s - a.s)) {
      if (x.ok) right++;
      else wrong++;
      if (wrong > maxWrong) break;
      best = right;
    }
    return (100 * best) / n;
  };
  const seen = new Map();
  for (const x of first) seen.set(x.e, [...(seen.get(x.e) ?? []), x]);
  const points = [];
  // A match is served at or above the global threshold G, or from floor F when its entry had at least
  // m right answers at or below this similarity (+d) and no wrong one at or above it (−d).
  for (const G of [0.9, 0.92, 0.94, 0.96, 1.01])
    for (const d of [0, 0.02, 0.04, 0.06])
      for (const m of [1, 2, 3])
        for (const F of [0.7, 0.75, 0.8, 0.85]) {
          let right = 0;
          let wrong = 0;
          for (const x of second) {
            const obs = seen.get(x.e) ?? [];
            const rights = obs.filter((o) => o.ok && o.s <= x.s + d).length;
            const wrongAbove = obs.some((o) => !o.ok && o.s >= x.s - d);
            if (x.s >= G || (x.s >= F && rights >= m && !wrongAbove)) {
              if (x.ok) right++;
              else wrong++;
            }
          }
          points.push({ rule: { G, d, m, F }, right: (100 * right) / n, wrong: (100 * wrong) / n });
        }
  const at = (rate) => {
    const best = points.filter((p) => p.wrong <= rate).sort((a, b) => b.right - a.right)[0];
    const st = staticAt(Math.floor((rate * n) / 100));
    return `≤ ${rate} wrong: learned ${best.right.toFixed(2)} right (${best.wrong.toFixed(2)} wrong, ${JSON.stringify(best.rule)}), static ${st.toFixed(2)}, ${(best.right / st).toFixed(2)}×`;
  };
  console.log(`seed ${seed} (per 100 queries of the second half) — ${at(0.5)} | ${at(1)}`);
}
