// The calibrating mode on the BANKING77 support-bot simulation, through the real stack:
// MultiLayerCache (core) → SemanticLayer (hnswlib-node) with `calibration`, the layer's default
// answer judge, core's observe / shadow-check flow. Static settings run through the same stack.
//
//   node bench/support-bot.mjs [--split test|dev] [--seeds 77,78,79] [--protocols fixed,read-through]
//                              [--calibration '{"maxWrongRate":0.01}'] [--only calibrated] [--out DIR] [--no-write]
//                              [--diagnose] (dev: judge scores and estimate reliability against the labels)
//                              [--render] (rewrite the .md from the last run's .json)
//
// The simulation (packages/semantic-guards/bench/banking77-sim.mjs): k = 5 cached utterances per
// in-scope intent (10 intents left out: their queries are out of scope), each intent's answers
// written three ways with an assistant's openers and closers; the split's utterances as traffic in
// a seeded order. The cache holds answer TEXTS only; the judge sees texts and their embeddings.
// Intents only score the run: a hit is right when the entry that answered was stored for the
// query's intent.
//
// Protocols: `fixed` — only the seeded entries are stored (misses are not written: `noStore`);
// `read-through` — every upstream answer is stored, as core does by default. Warm on the first half
// of the queries, score the second. `dev` draws cache and queries from train.csv (for choosing
// settings); `test` draws the queries from test.csv (reported).
//
// Embeddings come from packages/semantic-guards/bench/.cache (USE-lite vectors of every text of the
// simulation); a text missing there is embedded with @strata-cache/embed-use and added.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const pkgDir = resolve(here, '..');
const packages = resolve(pkgDir, '..');
const repoDir = resolve(packages, '..');
const { MultiLayerCache } = await import(join(packages, 'core', 'dist', 'index.js'));
const { SemanticLayer } = await import(join(packages, 'layer-semantic', 'dist', 'index.js'));
const { defaultGuards, lexicalSelector, recommendedSetting } = await import(join(packages, 'semantic-guards', 'dist', 'index.js'));
const { clopperPearson, embeddingAnswerJudge } = await import(join(pkgDir, 'dist', 'index.js'));
const { buildSim, rng } = await import(join(packages, 'semantic-guards', 'bench', 'banking77-sim.mjs'));
const { EmbeddingCache } = await import(join(packages, 'semantic-guards', 'bench', 'embedding-cache.mjs'));
const { dataDir } = await import(join(packages, 'semantic-guards', 'bench', 'data.mjs'));

const arg = (name, def) => {
  const i = process.argv.indexOf('--' + name);
  return i >= 0 ? process.argv[i + 1] : def;
};
const split = arg('split', 'test');
const seeds = arg('seeds', '77,78,79').split(',').map(Number);
const protocols = arg('protocols', 'fixed,read-through').split(',');
const only = arg('only', 'all');
const write = !process.argv.includes('--no-write');
const outDir = arg('out', join(repoDir, 'bench', 'results'));
export const CALIBRATION = { maxWrongRate: 0.01, shadowRate: 0.1, ...JSON.parse(arg('calibration', '{}')) };
/** Options of the default judge, for experiments on the dev split (the reported runs use the layer's default judge). */
const JUDGE = JSON.parse(arg('judge', '{}'));
const STATIC_GRID = Array.from({ length: 19 }, (_, i) => Math.round((0.8 + i * 0.01) * 100) / 100);
const root = dataDir(arg('data-dir'));
const log = (...a) => console.error('[bench:calibration]', ...a);

// ------------------------------------------------------------------------------------------------
// Embeddings: the quality bench's cache, the real encoder for anything missing.

const vectors = new EmbeddingCache(join(packages, 'semantic-guards', 'bench', '.cache'), 'use-lite-512', 512);
let encoder;
async function encode(texts) {
  encoder ??= await (await import(join(packages, 'embed-use', 'dist', 'index.js'))).createUseEmbedder({
    modelDir: join(root, 'models', 'universal-sentence-encoder-lite'),
    workers: 1,
  });
  const out = await encoder.embed(texts);
  vectors.append(`calibration-${process.pid}`, texts, out);
  return out;
}
/** The embedder the layer gets: USE-lite vectors (cached), as `createUseEmbedder` would return them. */
const embedder = {
  id: 'use-lite-512',
  dimensions: 512,
  calls: 0,
  async embed(texts) {
    this.calls++;
    const missing = [...new Set(texts.filter((t) => !vectors.has(t)))];
    if (missing.length) await encode(missing);
    return texts.map((t) => Float32Array.from(vectors.get(t)));
  },
};

// ------------------------------------------------------------------------------------------------
// One run: a fresh cache and layer, the seeded entries stored, the queries replayed in order.

const chat = (text) => ({ model: 'support-bot', temperature: 0, messages: [{ role: 'user', content: text }] });

function newHalf() {
  return { queries: 0, outOfScope: 0, right: 0, wrong: 0, wrongOutOfScope: 0, upstream: 0, shadowChecks: 0, exactHits: 0 };
}

/**
 * Diagnostics (dev only, `--diagnose`): the default judge wrapped to record its scores beside the
 * truth, and each decision's estimated wrong probability beside what serving it would have been.
 */
function diagnostics(sim) {
  const intentOfAnswer = new Map();
  for (const e of sim.entries) intentOfAnswer.set(e.answer, e.intent);
  for (const q of sim.queries) intentOfAnswer.set(q.fresh, q.intent);
  const inner = embeddingAnswerJudge({ embedder, ...JUDGE });
  const d = { scores: { right: new Array(20).fill(0), wrong: new Array(20).fill(0) }, reliability: [] };
  const judge = {
    name: 'embedding (recorded)',
    async judge(input) {
      const v = await inner.judge(input);
      const right = intentOfAnswer.get(input.cachedAnswer) === intentOfAnswer.get(input.freshAnswer);
      d.scores[right ? 'right' : 'wrong'][Math.min(19, Math.floor(v.score * 20))]++;
      d.last = { score: v.score, right, certain: v.certain === true };
      return v;
    },
  };
  return { d, judge };
}

export async function run(sim, { layerOptions, readThrough, seed, diagnose }) {
  const diag = diagnose ? diagnostics(sim) : undefined;
  const judge = diag
    ? { answerJudge: diag.judge }
    : layerOptions.calibration && Object.keys(JUDGE).length
      ? { answerJudge: embeddingAnswerJudge({ embedder, ...JUDGE }) }
      : {};
  const layer = new SemanticLayer({ embedder, maxEntries: 1_000_000, onWarning: (m) => log('warning:', m), ...layerOptions, ...judge });
  const cache = new MultiLayerCache({ layers: [{ layer, budgetMs: 60_000 }], policy: 'always', defaultTtlMs: null, budgetMs: 60_000 });
  const intentOf = new Map();
  for (const e of sim.entries) {
    await cache.store(chat(e.text), e.answer);
    intentOf.set(cache.keyFor(chat(e.text)).id, e.intent);
  }
  await cache.flush();
  await layer.embeddingIdle();
  const warm = Math.floor(sim.queries.length / 2);
  const halves = [newHalf(), newHalf()];
  const lookupMs = [];
  for (let j = 0; j < sim.queries.length; j++) {
    const q = sim.queries[j];
    const h = halves[j < warm ? 0 : 1];
    h.queries++;
    if (!q.inScope) h.outOfScope++;
    const t0 = performance.now();
    const r = await cache.getOrLoad(chat(q.text), async () => q.fresh, readThrough ? {} : { noStore: true });
    lookupMs.push(performance.now() - t0);
    if (diag && j >= warm && r.calibration?.pWrong !== undefined && r.calibration.token) {
      const id = r.calibration.token.d.id;
      diag.d.reliability.push([r.calibration.pWrong, intentOf.get(id) === q.intent ? 0 : 1, r.calibration.similarity, r.calibration.action]);
    }
    if (r.status === 'hit') {
      const servedIntent = intentOf.get((r.matchedKey ?? r.key).id);
      if (r.similarity === undefined) h.exactHits++;
      if (servedIntent === q.intent) h.right++;
      else {
        h.wrong++;
        if (!q.inScope) h.wrongOutOfScope++;
      }
    } else {
      h.upstream++;
      if (r.calibration?.action === 'shadow') h.shadowChecks++;
      if (readThrough && r.stored) intentOf.set(r.key.id, q.intent);
    }
    // Sequential traffic: the judgement of this answer lands before the next request.
    await cache.flush();
    await layer.embeddingIdle();
    if (diag?.d.last && r.calibration?.token) {
      const t = r.calibration.token.d;
      (diag.d.observations ??= []).push([
        j,
        t.similarity,
        t.context,
        diag.d.last.score,
        diag.d.last.right ? 1 : 0,
        diag.d.last.certain ? 1 : 0,
        r.calibration.action,
      ]);
    }
    if (diag) diag.d.last = undefined;
  }
  const out = {
    halves: halves.map(finish),
    stored: layer.size,
    core: cache.stats().calibration,
    layer: layer.stats().calibration ?? null,
    ...(diag ? { diagnostics: diag.d } : {}),
  };
  await cache.close();
  void seed;
  return out;
}

function finish(h) {
  const per100 = (x) => Math.round((10000 * x) / Math.max(1, h.queries)) / 100;
  return { ...h, rightPer100: per100(h.right), wrongPer100: per100(h.wrong), shadowPer100: per100(h.shadowChecks), upstreamPer100: per100(h.upstream) };
}

// ------------------------------------------------------------------------------------------------
// Comparing with static settings at the same wrong-answer rate.

/** Right answers a static family reaches at `wrong` wrong answers per 100 (linear between grid points; its frontier's upper hull). */
export function rightAt(points, wrong) {
  const pts = [...points].sort((a, b) => a.wrong - b.wrong || b.right - a.right);
  let best = 0;
  for (const p of pts) if (p.wrong <= wrong) best = Math.max(best, p.right);
  for (let i = 0; i < pts.length; i++) {
    for (let j = 0; j < pts.length; j++) {
      const a = pts[i];
      const b = pts[j];
      if (a.wrong <= wrong && b.wrong > wrong && b.right > a.right) {
        const t = (wrong - a.wrong) / (b.wrong - a.wrong);
        best = Math.max(best, a.right + t * (b.right - a.right));
      }
    }
  }
  return Math.round(best * 100) / 100;
}

function printDiagnostics(d) {
  const f = (a) => a.map((x) => String(x).padStart(4)).join('');
  log('judge scores (bins of 0.05), right:', f(d.scores.right));
  log('judge scores (bins of 0.05), wrong:', f(d.scores.wrong));
  const edges = [0, 0.005, 0.01, 0.02, 0.04, 0.08, 0.15, 0.3, 0.6, 1.01];
  for (let i = 0; i + 1 < edges.length; i++) {
    const xs = d.reliability.filter((x) => x[0] >= edges[i] && x[0] < edges[i + 1]);
    if (!xs.length) continue;
    const served = xs.filter((x) => x[3] === 'serve');
    const sw = served.reduce((a, x) => a + x[1], 0);
    log(
      `pWrong [${edges[i]}, ${edges[i + 1]}): n ${xs.length}, mean est ${(xs.reduce((a, x) => a + x[0], 0) / xs.length).toFixed(3)}, actual wrong ${(xs.reduce((a, x) => a + x[1], 0) / xs.length).toFixed(3)}; served ${served.length} (wrong ${sw}); mean similarity ${(xs.reduce((a, x) => a + x[2], 0) / xs.length).toFixed(3)}`,
    );
  }
}

const mean = (xs) => Math.round((100 * xs.reduce((a, b) => a + b, 0)) / Math.max(1, xs.length)) / 100;

// ------------------------------------------------------------------------------------------------

const isMain = process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain && process.argv.includes('--render')) {
  // Re-render the markdown from the JSON of the last run (no measuring).
  const { readFileSync } = await import('node:fs');
  const name = split === 'test' ? 'semantic-calibration' : `semantic-calibration-${split}`;
  const { markdown } = await import('./report.mjs');
  writeFileSync(join(outDir, `${name}.md`), markdown(JSON.parse(readFileSync(join(outDir, `${name}.json`), 'utf8'))));
} else if (isMain) {
  const sims = seeds.map((seed) => buildSim({ root, split, k: 5, seed }));
  const started = Date.now();
  const runs = [];
  for (const protocol of protocols) {
    const readThrough = protocol === 'read-through';
    for (const [i, sim] of sims.entries()) {
      const seed = seeds[i];
      const t = performance.now();
      const calibrated = await run(sim, {
        readThrough,
        seed,
        diagnose: process.argv.includes('--diagnose'),
        layerOptions: { calibration: { ...CALIBRATION, random: rng(seed * 31 + 7) } },
      });
      if (calibrated.diagnostics) {
        printDiagnostics(calibrated.diagnostics);
        if (arg('dump-observations'))
          writeFileSync(`${arg('dump-observations')}-${protocol}-${seed}.json`, JSON.stringify(calibrated.diagnostics.observations));
      }
      log(
        `${split} ${protocol} seed ${seed}: calibrated ${calibrated.halves[1].rightPer100} right / ${calibrated.halves[1].wrongPer100} wrong per 100, shadow ${calibrated.halves[1].shadowPer100} (${((performance.now() - t) / 1000).toFixed(0)} s)`,
      );
      const statics = [];
      if (only !== 'calibrated') {
        const g = defaultGuards();
        const sel = lexicalSelector();
        for (const threshold of STATIC_GRID) {
          for (const [family, options] of [
            ['plain cosine', { threshold, guards: [], selector: false }],
            ['guards + selector', { threshold, guards: g, selector: sel }],
          ]) {
            const r = await run(sim, { readThrough, seed, layerOptions: options });
            statics.push({ family, threshold, second: r.halves[1], first: r.halves[0] });
          }
        }
        const d = await run(sim, { readThrough, seed, layerOptions: {} });
        statics.push({ family: 'default', threshold: recommendedSetting(embedder).threshold, second: d.halves[1], first: d.halves[0] });
        log(`  statics done (${((performance.now() - t) / 1000).toFixed(0)} s)`);
      }
      runs.push({ protocol, seed, calibrated, statics });
    }
  }
  const summary = {};
  for (const protocol of protocols) {
    const rs = runs.filter((r) => r.protocol === protocol);
    const sec = rs.map((r) => r.calibrated.halves[1]);
    const wrong = sec.reduce((a, h) => a + h.wrong, 0);
    const n = sec.reduce((a, h) => a + h.queries, 0);
    const ci = clopperPearson(wrong, n);
    const perSeed = rs.map((r) => {
      const c = r.calibrated.halves[1];
      const fam = {};
      for (const s of r.statics.filter((x) => x.family !== 'default'))
        (fam[s.family] ??= []).push({ wrong: s.second.wrongPer100, right: s.second.rightPer100, threshold: s.threshold });
      const best = Object.entries(fam)
        .map(([family, pts]) => ({ family, right: rightAt(pts, c.wrongPer100) }))
        .sort((a, b) => b.right - a.right)[0];
      const dflt = r.statics.find((x) => x.family === 'default');
      return {
        seed: r.seed,
        right: c.rightPer100,
        wrong: c.wrongPer100,
        shadowPer100: c.shadowPer100,
        bestStatic: best ?? null,
        ratio: best && best.right > 0 ? Math.round((100 * c.rightPer100) / best.right) / 100 : null,
        default: dflt ? { right: dflt.second.rightPer100, wrong: dflt.second.wrongPer100 } : null,
      };
    });
    summary[protocol] = {
      right: mean(perSeed.map((p) => p.right)),
      wrong: mean(perSeed.map((p) => p.wrong)),
      wrongInterval: { wrong, queries: n, low: Math.round(ci.low * 10000) / 100, high: Math.round(ci.high * 10000) / 100 },
      shadowPer100: mean(perSeed.map((p) => p.shadowPer100)),
      bestStaticAtSameWrong: perSeed[0]?.bestStatic ? mean(perSeed.map((p) => p.bestStatic?.right ?? 0)) : null,
      ratio: perSeed[0]?.ratio !== null && perSeed[0]?.ratio !== undefined ? mean(perSeed.map((p) => p.ratio ?? 0)) : null,
      perSeed,
    };
    log(protocol, JSON.stringify({ ...summary[protocol], perSeed: undefined }));
  }
  const result = {
    name: 'semantic-calibration',
    date: new Date().toISOString(),
    split,
    seeds,
    calibration: CALIBRATION,
    staticGrid: STATIC_GRID,
    seconds: Math.round((Date.now() - started) / 1000),
    summary,
    runs,
  };
  if (arg('dump')) writeFileSync(arg('dump'), JSON.stringify(result, null, 2) + '\n');
  if (write && only !== 'calibrated') {
    mkdirSync(outDir, { recursive: true });
    const name = split === 'test' ? 'semantic-calibration' : `semantic-calibration-${split}`;
    writeFileSync(join(outDir, `${name}.json`), JSON.stringify(result, null, 2) + '\n');
    const { markdown } = await import('./report.mjs');
    writeFileSync(join(outDir, `${name}.md`), markdown(result));
    log(`wrote ${join(outDir, name)}.{json,md}`);
  }
  await encoder?.close?.();
}
