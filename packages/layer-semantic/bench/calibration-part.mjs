// What calibration adds to a lookup, embedding excluded: the same entries and queries through a
// layer with the default (static) setting and one with `calibration` (warmed: its calibrator has
// evidence, its entries have answer vectors), A/B interleaved, with a table embedder that answers
// from precomputed USE-lite vectors (so the embedding costs nothing in either).
import { MultiLayerCache, computeSemantic, resolveScope } from '@strata-cache/core';
import { SemanticLayer } from '../dist/index.js';
import { graphsSettled, log, pct, round } from './lib.mjs';

class TableEmbedder {
  constructor(table) {
    this.id = 'bench-table';
    this.dimensions = 512;
    this.table = table;
  }
  async embed(texts) {
    return texts.map((t) => this.table.get(t));
  }
}

const dot = (a, b) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

/**
 * @param {{ embed(texts: string[]): Promise<Float32Array[]> }} embedder  the real encoder (vectors are computed once, up front)
 * @param {string[]} texts  distinct short questions: entries, warm-up traffic, measured queries
 */
export async function benchCalibration(embedder, texts, { entries = 1_200, warm = 800, queries = 400, answers = 40 } = {}) {
  const answerTexts = Array.from(
    { length: answers },
    (_, i) => `Answer ${i}: here is what you need to know about topic ${i}, step by step, with the details that matter.`,
  );
  const all = [...texts.slice(0, entries + warm + queries), ...answerTexts];
  log(`calibration part: embedding ${all.length} texts once`);
  const vecs = await embedder.embed(all);
  const table = new Map(all.map((t, i) => [t, vecs[i]]));
  // Each question's answer: the answer of the nearest of the first `answers` questions (similar questions share answers).
  const centres = texts.slice(0, answers).map((t) => table.get(t));
  const answerOf = (t) => {
    const v = table.get(t);
    let best = 0;
    for (let i = 1; i < centres.length; i++) if (dot(v, centres[i]) > dot(v, centres[best])) best = i;
    return answerTexts[best];
  };
  const chat = (t) => ({
    model: 'gpt-4o-mini',
    temperature: 0,
    messages: [
      { role: 'system', content: 'You answer support questions.' },
      { role: 'user', content: t },
    ],
  });
  const make = (options) => {
    const layer = new SemanticLayer({ embedder: new TableEmbedder(table), maxEntries: 100_000, ...options });
    return { layer, cache: new MultiLayerCache({ layers: [{ layer, budgetMs: 10_000 }], policy: 'always' }) };
  };
  const staticStack = make({});
  const calibrated = make({ calibration: { maxWrongRate: 0.01, shadowRate: 0.1, random: () => 0.99 } });
  for (const s of [staticStack, calibrated]) {
    for (const t of texts.slice(0, entries)) await s.cache.store(chat(t), answerOf(t));
    await s.cache.flush();
    await s.layer.embeddingIdle();
  }
  // Warm the calibrator: read-through traffic whose upstream answers it judges.
  for (const t of texts.slice(entries, entries + warm)) {
    await calibrated.cache.getOrLoad(chat(t), async () => answerOf(t));
    await calibrated.cache.flush();
    await calibrated.layer.embeddingIdle();
  }
  // Both partitions hold more than flatLimit entries: their graphs are built in background turns,
  // which the measured loop below (awaits that never yield to the event loop) would starve — every
  // lookup would scan the partition exactly, as only a layer that has just crossed flatLimit does.
  for (const s of [staticStack, calibrated]) await graphsSettled(s.layer);
  const cal = calibrated.layer.stats().calibration;
  const scope = resolveScope(undefined);
  const measured = texts.slice(entries + warm, entries + warm + queries);
  const search = { static: [], calibrated: [] };
  const lookup = { static: [], calibrated: [] };
  // Three rounds, A/B alternating per query, the first round a warm-up (JIT, caches).
  for (let round = 0; round < 3; round++) {
    for (const t of measured) {
      const q = { ...computeSemantic(chat(t), scope), scope };
      for (const [name, s] of [
        ['static', staticStack],
        ['calibrated', calibrated],
      ]) {
        const t0 = performance.now();
        await s.layer.search(q);
        const t1 = performance.now();
        await s.cache.lookup(chat(t), { noStore: true });
        const t2 = performance.now();
        if (round > 0) {
          search[name].push(t1 - t0);
          lookup[name].push(t2 - t1);
        }
      }
    }
  }
  for (const s of [staticStack, calibrated]) await s.cache.close();
  const summary = (xs) => ({ p50: round(pct(xs, 50), 3), p90: round(pct(xs, 90), 3), p99: round(pct(xs, 99), 3) });
  const out = {
    method: `${entries} entries (short questions, real USE-lite vectors; answers shared by similar questions), ${warm} read-through requests to warm the calibrator, then ${queries} other questions × 2 rounds, A/B interleaved per query: layer.search() and cache.lookup() (core + the layer). Embedding excluded: a table embedder returns precomputed vectors. Static: the layer's default setting (topK 8, guards, selector); calibrated: calibration { maxWrongRate: 0.01, shadowRate: 0.1 } (topK 8, guards on each candidate, answer vectors, the calibrator's decision and the served neighbourhood's boundary).`,
    warmedCalibrator: {
      lookups: cal.lookups,
      nearMissesJudged: cal.nearMissesJudged,
      boundariesLearned: cal.boundariesLearned,
      answerVectors: cal.answerVectors,
    },
    search: { static: summary(search.static), calibrated: summary(search.calibrated) },
    lookup: { static: summary(lookup.static), calibrated: summary(lookup.calibrated) },
  };
  out.addedP50Ms = { search: round(out.search.calibrated.p50 - out.search.static.p50, 3), lookup: round(out.lookup.calibrated.p50 - out.lookup.static.p50, 3) };
  out.targets = { 'calibration adds <= 1 ms p50 to a lookup (embedding excluded)': out.addedP50Ms.lookup <= 1 };
  log('calibration part', JSON.stringify(out.search), JSON.stringify(out.lookup));
  return out;
}
