// Markdown for bench/results/semantic-calibration.md (from support-bot.mjs's result object).
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const packages = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { frontierSvg } = await import(join(packages, 'semantic-guards', 'bench', 'svg.mjs'));

const mean = (xs) => Math.round((100 * xs.reduce((a, b) => a + b, 0)) / Math.max(1, xs.length)) / 100;

export function markdown(r) {
  const L = [];
  L.push(`# Calibrating mode: the support-bot simulation, through MultiLayerCache and SemanticLayer`, '');
  L.push(
    `Measured by \`pnpm --filter @strata-cache/semantic-calibration bench\` on ${r.date.slice(0, 10)} (${r.seconds} s). ` +
      `BANKING77 ${r.split} simulation (packages/semantic-guards/bench/banking77-sim.mjs): 5 cached utterances per in-scope intent (67 intents; 10 left out, their queries out of scope), ` +
      `each intent's answers written three ways with an assistant's openers and closers; the queries in a seeded order; the first half warms, the second half is scored. ` +
      `Every request goes through \`MultiLayerCache.getOrLoad\` → \`SemanticLayer\` (hnswlib-node, USE-lite vectors) → the upstream stub, which returns the query's own intent's answer worded afresh. ` +
      `Calibrated: \`new SemanticLayer({ embedder, calibration: ${JSON.stringify(r.calibration)} })\` with the layer's default answer judge — it sees answer texts and their embeddings only; intents only score the run. ` +
      `Static settings: the same stack at each threshold of ${r.staticGrid[0]}–${r.staticGrid.at(-1)} (step 0.01), plain cosine and guards + selector, and the layer's default. Seeds ${r.seeds.join(', ')}; figures per 100 queries of the second half, means over seeds.`,
    '',
  );
  L.push(
    "Protocols: **fixed** — the cache holds only the seeded utterances (misses are not stored: `noStore`), the issue's k = 5 cache; **read-through** — every upstream answer is stored, as core does by default.",
    '',
  );
  L.push(
    '| protocol | calibrated: right / wrong per 100 | wrong rate, 95% interval (pooled) | best static at the same wrong rate | ratio | the default (static) | shadow checks per 100 | would-be hits shadowed |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const [p, s] of Object.entries(r.summary)) {
    const d = s.perSeed.filter((x) => x.default);
    const runs = r.runs.filter((x) => x.protocol === p);
    const share = mean(runs.map((x) => 100 * (x.calibrated.layer?.shadowShare ?? 0)));
    L.push(
      `| ${p} | **${s.right} / ${s.wrong}** | ${s.wrongInterval.low}–${s.wrongInterval.high}% (${s.wrongInterval.wrong} of ${s.wrongInterval.queries}) | ${s.bestStaticAtSameWrong ?? '—'} | **${s.ratio ?? '—'}×** | ${d.length ? `${mean(d.map((x) => x.default.right))} / ${mean(d.map((x) => x.default.wrong))}` : '—'} | ${s.shadowPer100} | ${share}% |`,
    );
  }
  L.push(
    '',
    "Ratio: per seed, the calibrated mode's right answers over the most right answers a static family reaches at the calibrated run's own wrong rate (linear between grid points), then the mean over seeds.",
    '',
  );
  {
    const budget = r.calibration.maxWrongRate * 100;
    const yes = (b) => (b ? 'met' : '**not met**');
    L.push('### Targets (issue 12)', '', '| target | measured | |', '|---|---|---|');
    for (const [p, s] of Object.entries(r.summary)) {
      if (s.ratio !== null)
        L.push(
          `| ${p}: ≥ 2× the right answers of the best static setting at the same wrong rate | ${s.ratio}× (${s.right} vs ${s.bestStaticAtSameWrong}) | ${yes(s.ratio >= 2)} |`,
        );
      L.push(
        `| ${p}: wrong answers within the budget (${budget} per 100) | ${s.wrong} per 100, 95% interval ${s.wrongInterval.low}–${s.wrongInterval.high} | ${yes(s.wrongInterval.high <= budget)}${s.wrongInterval.high > budget && s.wrong <= budget ? ' (point estimate within, interval not)' : ''} |`,
      );
      const share = r.runs.filter((x) => x.protocol === p).map((x) => x.calibrated.layer?.shadowShare ?? 0);
      L.push(
        `| ${p}: shadow checks ≤ ${r.calibration.shadowRate * 100}% of would-be hits | at most ${(100 * Math.max(...share)).toFixed(1)}% in a run | ${yes(Math.max(...share) <= r.calibration.shadowRate + 0.01)} |`,
      );
    }
    L.push('');
  }
  for (const p of Object.keys(r.summary)) {
    const runs = r.runs.filter((x) => x.protocol === p);
    const fam = {};
    for (const run of runs)
      for (const s of run.statics) if (s.family !== 'default') ((fam[s.family] ??= {})[s.threshold] ??= []).push([s.second.wrongPer100, s.second.rightPer100]);
    const series = Object.entries(fam).map(([name, byT]) => ({
      name,
      points: Object.keys(byT)
        .sort()
        .map((t) => [mean(byT[t].map((x) => x[0])), mean(byT[t].map((x) => x[1]))]),
    }));
    const s = r.summary[p];
    const d = s.perSeed.filter((x) => x.default);
    if (d.length) series.push({ name: 'default', points: [[mean(d.map((x) => x.default.wrong)), mean(d.map((x) => x.default.right))]], marker: true });
    series.push({ name: 'calibrated', points: [[s.wrong, s.right]], marker: true });
    if (series.length > 1)
      L.push(
        frontierSvg({
          title: `${p}: second half`,
          xLabel: 'wrong answers per 100 queries',
          yLabel: 'right answers per 100 queries',
          series,
          xMax: 3,
          budget: r.calibration.maxWrongRate * 100,
        }),
        '',
      );
  }
  L.push(
    '## Per run',
    '',
    '| protocol | seed | 1st half (warm-up) right / wrong | 2nd half right / wrong | shadow checks per 100 (2nd half) | best static at that wrong rate | ratio | near misses judged | shadow checks judged | boundaries learned | audited wrong share of shadowed hits (95%) | dropped judgements |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const run of r.runs) {
    const c = run.calibrated;
    const ps = r.summary[run.protocol].perSeed.find((x) => x.seed === run.seed);
    const l = c.layer ?? {};
    const a = l.auditedWrongShare;
    L.push(
      `| ${run.protocol} | ${run.seed} | ${c.halves[0].rightPer100} / ${c.halves[0].wrongPer100} | ${c.halves[1].rightPer100} / ${c.halves[1].wrongPer100} | ${c.halves[1].shadowPer100} | ${ps?.bestStatic ? `${ps.bestStatic.right} (${ps.bestStatic.family})` : '—'} | ${ps?.ratio ?? '—'} | ${l.nearMissesJudged ?? '—'} | ${l.shadowsJudged ?? '—'} | ${l.boundariesLearned ?? '—'} | ${a ? `${(100 * a.estimate).toFixed(1)}% (${(100 * a.low).toFixed(1)}–${(100 * a.high).toFixed(1)})` : '—'} | ${l.dropped ?? '—'} |`,
    );
  }
  L.push(
    '',
    '## Static settings (second half, means over seeds)',
    '',
    '| protocol | threshold | plain cosine: right / wrong | guards + selector: right / wrong |',
    '|---|---:|---:|---:|',
  );
  for (const p of Object.keys(r.summary)) {
    const runs = r.runs.filter((x) => x.protocol === p);
    for (const t of r.staticGrid) {
      const at = (family) => {
        const xs = runs.map((x) => x.statics.find((s) => s.family === family && s.threshold === t)).filter(Boolean);
        return xs.length ? `${mean(xs.map((x) => x.second.rightPer100))} / ${mean(xs.map((x) => x.second.wrongPer100))}` : '—';
      };
      L.push(`| ${p} | ${t} | ${at('plain cosine')} | ${at('guards + selector')} |`);
    }
  }
  return L.join('\n') + '\n';
}
