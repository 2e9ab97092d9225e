// Paraphrase bursts: a support bot hears one question in several wordings within a second, while
// the first wording's answer is still on its way. Measures what core's `joinSimilar` (with the
// semantic layer's recent misses, `inFlight`) saves against the same stack with it off, in the
// same run: upstream calls, wrong answers, latency of the requests that waited.
//
//   node bench/bursts.mjs [--seeds 1,2,3] [--burst 4] [--upstream-ms 500] [--out DIR] [--no-write]
//
// Real text and the real stack: BANKING77 (test.csv) utterances, USE-lite (@strata-cache/embed-use),
// MultiLayerCache → SemanticLayer, with the layer's default setting and in the calibrating mode.
// Each run: a fresh cache is warmed read-through (no latency) on the train utterances of half the
// intents — partitions exist and calibrators have learned — then the other half of the intents
// (nothing stored for them) arrive in bursts: `--burst` test utterances of one intent 30 ms apart,
// a new burst every 150 ms (bursts overlap), each upstream call taking `--upstream-ms`. An answer
// is an answer text written for the query's intent; a hit is wrong when it was written for another.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const packages = resolve(here, '..', '..');
const repoDir = resolve(packages, '..');
const { MultiLayerCache } = await import(join(packages, 'core', 'dist', 'index.js'));
const { SemanticLayer } = await import(join(packages, 'layer-semantic', 'dist', 'index.js'));
const { createUseEmbedder } = await import(join(packages, 'embed-use', 'dist', 'index.js'));
const { answerFor, loadAnswers, rng, shuffle } = await import(join(packages, 'semantic-guards', 'bench', 'banking77-sim.mjs'));
const { dataDir, loadBanking77 } = await import(join(packages, 'semantic-guards', 'bench', 'data.mjs'));

const arg = (name, def) => {
  const i = process.argv.indexOf('--' + name);
  return i >= 0 ? process.argv[i + 1] : def;
};
const SEEDS = arg('seeds', '1,2,3').split(',').map(Number);
const BURST = Number(arg('burst', 4));
const UPSTREAM_MS = Number(arg('upstream-ms', 500));
const SPACING_MS = 30;
const BURST_EVERY_MS = 150;
const WARM_PER_INTENT = 20;
const write = !process.argv.includes('--no-write');
const outDir = arg('out', join(repoDir, 'bench', 'results'));
const log = (...a) => console.error('[bench:bursts]', ...a);

const root = dataDir(arg('data-dir'));
const data = loadBanking77(root);
const answers = loadAnswers();
const embedder = await createUseEmbedder({ modelDir: join(root, 'models', 'universal-sentence-encoder-lite') });
const intentOf = new Map(); // answer text → the intent it was written for
const SETTINGS = [
  { name: 'default setting', options: {} },
  { name: 'calibrating (maxWrongRate 0.01, shadowRate 0.1)', options: { calibration: { maxWrongRate: 0.01, shadowRate: 0.1 } } },
];

const chat = (text) => ({
  model: 'gpt-4o-mini',
  temperature: 0,
  messages: [
    { role: 'system', content: 'You are the support assistant of a bank.' },
    { role: 'user', content: text },
  ],
});
const pct = (xs, p) => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const r1 = (x) => (x === null ? null : Math.round(x * 10) / 10);

/** One run: warm, then the bursts; `join` on or off. */
async function run(setting, seed, join) {
  const rnd = rng(seed);
  const answerText = (intent) => {
    const t = answerFor(answers, intent, rnd);
    intentOf.set(t, intent);
    return t;
  };
  const layer = new SemanticLayer({ embedder, ...setting.options });
  const cache = new MultiLayerCache({ layers: [{ layer, budgetMs: 5_000 }], policy: 'always', ...(join ? {} : { joinSimilar: false }) });
  const intents = shuffle(data.intents, rng(seed * 31 + 7));
  const warm = intents.slice(0, Math.floor(intents.length / 2));
  const cold = intents.slice(warm.length);
  const trainBy = new Map(intents.map((i) => [i, []]));
  for (const r of data.train) trainBy.get(r.intent).push(r.text);
  const testBy = new Map(intents.map((i) => [i, []]));
  for (const r of data.test) testBy.get(r.intent).push(r.text);
  // Warm: read-through, one at a time, no upstream latency.
  const warmQueries = shuffle(
    warm.flatMap((i) =>
      shuffle(trainBy.get(i), rnd)
        .slice(0, WARM_PER_INTENT)
        .map((text) => ({ text, intent: i })),
    ),
    rnd,
  );
  for (const q of warmQueries) await cache.getOrLoad(chat(q.text), async () => answerText(q.intent));
  await cache.flush();
  await layer.embeddingIdle();
  const before = cache.stats();
  const cb = layer.stats().calibration?.clearBoundary;
  if (cb) log(`after warm-up: a clear match is served from ${cb.lowest ?? '–'}–${cb.highest ?? '–'}`);
  // Bursts of the cold intents.
  const out = { requests: 0, upstream: 0, wrong: 0, wrongAfterWait: 0, semanticHits: 0, clearLineAfterWarm: cb?.lowest ?? null, waitedMs: [], otherMs: [] };
  const t0 = performance.now();
  const pending = [];
  cold.forEach((intent, b) => {
    shuffle(testBy.get(intent), rnd)
      .slice(0, BURST)
      .forEach((text, j) => {
        const at = b * BURST_EVERY_MS + j * SPACING_MS;
        pending.push(
          new Promise((resolve) => setTimeout(resolve, at)).then(async () => {
            const started = performance.now();
            let called = false;
            const r = await cache.getOrLoad(chat(text), async () => {
              called = true;
              await new Promise((res) => setTimeout(res, UPSTREAM_MS));
              return answerText(intent);
            });
            const ms = performance.now() - started;
            out.requests++;
            if (called) out.upstream++;
            const wrong = r.status === 'hit' && intentOf.get(r.value) !== intent;
            if (r.status === 'hit' && r.similarity !== undefined) {
              out.semanticHits++;
              if (wrong) out.wrong++;
            }
            if (r.joinedSimilar && wrong) out.wrongAfterWait++;
            (r.joinedSimilar ? out.waitedMs : out.otherMs).push(ms);
          }),
        );
      });
  });
  await Promise.all(pending);
  const after = cache.stats();
  await cache.close();
  await layer.close();
  return {
    ...out,
    wallMs: Math.round(performance.now() - t0),
    waited: after.joinedSimilar.waited - before.joinedSimilar.waited,
    served: after.joinedSimilar.served - before.joinedSimilar.served,
    waitedMs: undefined,
    otherMs: undefined,
    p50ServedAfterWaitMs: r1(pct(out.waitedMs, 50)),
    p50OwnOrHitMs: r1(pct(out.otherMs, 50)),
  };
}

const results = [];
for (const setting of SETTINGS) {
  const rows = [];
  for (const seed of SEEDS) {
    for (const join of [false, true]) {
      const r = await run(setting, seed, join);
      log(
        `${setting.name}, seed ${seed}, joinSimilar ${join ? 'on' : 'off'}: ${r.upstream} upstream calls of ${r.requests}, ${r.semanticHits} semantic hits, ${r.wrong} wrong, waited ${r.waited}, served ${r.served}`,
      );
      rows.push({ seed, joinSimilar: join, ...r });
    }
  }
  const sum = (join, f) => rows.filter((r) => r.joinSimilar === join).reduce((a, r) => a + f(r), 0);
  const totals = {
    requests: sum(true, (r) => r.requests),
    upstreamOff: sum(false, (r) => r.upstream),
    upstreamOn: sum(true, (r) => r.upstream),
    wrongOff: sum(false, (r) => r.wrong),
    wrongOn: sum(true, (r) => r.wrong),
    waited: sum(true, (r) => r.waited),
    served: sum(true, (r) => r.served),
    wrongAfterWait: sum(true, (r) => r.wrongAfterWait),
  };
  results.push({ setting: setting.name, rows, totals, upstreamRatio: Math.round((totals.upstreamOn / totals.upstreamOff) * 1000) / 1000 });
}
await embedder.close?.();

const result = {
  benchmark: 'semantic-bursts',
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, node: process.version },
  settings: {
    seeds: SEEDS,
    burst: BURST,
    spacingMs: SPACING_MS,
    burstEveryMs: BURST_EVERY_MS,
    upstreamMs: UPSTREAM_MS,
    warmPerIntent: WARM_PER_INTENT,
    embedder: embedder.id,
  },
  results,
};
const md = [
  '# Paraphrase bursts: joining a similar load in flight',
  '',
  `\`node packages/semantic-calibration/bench/bursts.mjs\` — ${result.date}, Node ${process.version}, ${cpus().length} CPUs. Embedder ${embedder.id}.`,
  '',
  `BANKING77: a fresh cache per run is warmed read-through on ${WARM_PER_INTENT} train utterances of each of half the intents; then the other half (nothing stored for them) arrive in bursts of ${BURST} test utterances of one intent, ${SPACING_MS} ms apart, a new burst every ${BURST_EVERY_MS} ms, each upstream call taking ${UPSTREAM_MS} ms. Each run twice, \`joinSimilar\` off and on (same seed, same traffic); seeds ${SEEDS.join(', ')}. A hit is wrong when its answer was written for another intent. Bursts overlap, so a query may wait for another intent's question in flight; when the layer then serves that match, the wrong answer is the one the same match would have given had that answer been stored already (counted in brackets).`,
  '',
  '| setting | requests | upstream calls, off | upstream calls, on | on ÷ off | waits (served) | wrong answers, off | wrong answers, on (of them served after a wait) |',
  '|---|---:|---:|---:|---:|---:|---:|---:|',
  ...results.map(
    (r) =>
      `| ${r.setting} | ${r.totals.requests} | ${r.totals.upstreamOff} | ${r.totals.upstreamOn} | ${r.upstreamRatio}× | ${r.totals.waited} (${r.totals.served}) | ${r.totals.wrongOff} | ${r.totals.wrongOn} (${r.totals.wrongAfterWait}) |`,
  ),
  '',
  'Per run (with calibration, the similarity from which the calibrator served a clear match after the warm-up — the line a similar load in flight must reach to be waited for; without, the threshold; latency p50 of the requests served after a wait, and of the others, ms):',
  '',
  '| setting | seed | joinSimilar | clear match served from (after warm-up) | upstream calls | semantic hits | wrong (after a wait) | waited (served) | p50 served after a wait | p50 others |',
  '|---|---:|---|---:|---:|---:|---:|---:|---:|---:|',
  ...results.flatMap((r) =>
    r.rows.map(
      (x) =>
        `| ${r.setting} | ${x.seed} | ${x.joinSimilar ? 'on' : 'off'} | ${x.clearLineAfterWarm ?? '–'} | ${x.upstream} | ${x.semanticHits} | ${x.wrong} (${x.wrongAfterWait}) | ${x.waited} (${x.served}) | ${x.p50ServedAfterWaitMs ?? '–'} | ${x.p50OwnOrHitMs ?? '–'} |`,
    ),
  ),
  '',
].join('\n');
if (write) {
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'semantic-bursts.json'), JSON.stringify(result, null, 2) + '\n');
  writeFileSync(join(outDir, 'semantic-bursts.md'), md);
  log(`wrote ${join(outDir, 'semantic-bursts.md')}`);
} else console.log(md);
