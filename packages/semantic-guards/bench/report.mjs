// Markdown (with inline SVG frontiers) for the quality benchmark's two result files.
import { join } from 'node:path';
import { pkgDir } from './data.mjs';
import { frontierSvg } from './svg.mjs';

const { clopperPearson } = await import(join(pkgDir, '..', 'semantic-calibration', 'dist', 'index.js'));

const LABELS = {
  qqp: { title: 'QQP held-out pairs', x: 'non-duplicates hit (%)', y: 'duplicates hit (%)' },
  banking77: { title: 'BANKING77 support bot, k = 5 (test)', x: 'wrong answers per 100 queries', y: 'right answers per 100 queries' },
  mock: { title: 'GPTCache mock_data (held-out half)', x: 'wrong share of hits (%)', y: 'queries answered right (%)' },
};

export function markdownQuality(r) {
  const d = r.default;
  const p = r.previousDefault;
  const L = [];
  L.push(`# Semantic quality (${r.embedder.id}${r.data.sampled ? `, sample of ${r.data.qqpPairs} QQP pairs` : ''})`, '');
  L.push(
    `Measured by \`pnpm bench:semantic\` on ${r.date.slice(0, 10)}. Budgets: QQP ≤ ${r.protocol.budgets.qqp}% of non-duplicates hit; BANKING77 ≤ ${r.protocol.budgets.banking77} wrong answers per 100 queries (out-of-scope queries included); mock_data ≤ ${r.protocol.budgets.mock}% of hits wrong${r.protocol.budgets.arena !== undefined ? `; Arena-Hard prompts (traffic without repeats) ≤ ${r.protocol.budgets.arena}% of queries served another prompt's answer` : ''}${r.protocol.budgets.lookalikes !== undefined ? `; the project's look-alike set: ${r.protocol.budgets.lookalikes === 0 ? 'no' : `≤ ${r.protocol.budgets.lookalikes}% of`} look-alikes served` : ''}. ${r.protocol.represents ? `As in the layer, ${r.protocol.represents}. ` : ''}Settings are chosen on tuning splits only (${Object.entries(
      r.protocol.splits,
    )
      .map(([k, v]) => `${k}: ${v}`)
      .join('; ')}); choice rule: ${r.protocol.choice}.`,
    '',
  );
  L.push(
    `**Chosen on all tuning splits: ${r.chosen.name}** (${r.chosen.shippedAsRecommended ? (r.chosen.setting.config === 'consensus+groups' ? "this is `@strata-cache/layer-semantic`'s default for USE-lite: `recommendedSetting(embedder)` with the layer's answer-group rule in front" : 'this is what `recommendedSetting(embedder)` returns for USE-lite') : `NOTE: \`recommendedSetting\` returns threshold ${r.chosen.recommended.threshold} with ${r.chosen.recommended.guards.join(', ')}`}).`,
    '',
  );
  if (r.answerGroups?.chosenOnDev) {
    const g = r.answerGroups;
    const c = g.chosenOnDev;
    L.push(
      `**Answer groups** (\`@strata-cache/layer-semantic\`'s answer-group rule, in front of guards + consensus; its own per-partition model class runs here): ${g.protocol} Chosen on dev: floor ${c.floor}, margin ${c.margin}, shrinkage ${c.shrinkage}, minSimilarity ${c.minSimilarity} (dev k = 5: ${c.k5.recall} right / ${c.k5.falseHits} wrong per 100; k = 20: ${c.k20.recall} / ${c.k20.falseHits}); the layer ships floor ${g.shipped.floor}, margin ${g.shipped.margin}, shrinkage ${g.shipped.shrinkage}, minSimilarity ${g.shipped.minSimilarity}, the ${g.shippedAsTuned ? 'same' : '**different** — the figures below are for the values chosen here'}; the ${g.neighbours} nearest stored prompts are compared.`,
      '',
    );
  }
  L.push("| held-out | default | previous default (verifier trusted from 0.975) | plain cosine at the default's false-hit level |", '|---|---:|---:|---:|');
  L.push(
    `| QQP: duplicates hit / non-duplicates hit | **${d.qqp.recall}% / ${d.qqp.falseHits}%** | ${p.qqp.recall}% / ${p.qqp.falseHits}% | ${r.plainAtDefaultRate.qqp}% |`,
  );
  L.push(
    `| BANKING77 k = 5: right / wrong per 100 queries | **${d.banking77.recall} / ${d.banking77.falseHits}** | ${p.banking77.recall} / ${p.banking77.falseHits} | ${r.plainAtDefaultRate.banking77} |`,
  );
  L.push(
    `| BANKING77 k = 20: right / wrong per 100 queries | ${d.banking77k20.recall} / ${d.banking77k20.falseHits} | ${p.banking77k20.recall} / ${p.banking77k20.falseHits} | |`,
  );
  if (d.banking77varied) {
    L.push(
      `| BANKING77 k = 5, every cached answer worded afresh: right / wrong per 100 | ${d.banking77varied.recall} / ${d.banking77varied.falseHits} | ${p.banking77varied.recall} / ${p.banking77varied.falseHits} | |`,
    );
    L.push(
      `| BANKING77 k = 20, every cached answer worded afresh: right / wrong per 100 | ${d.banking77k20varied.recall} / ${d.banking77k20varied.falseHits} | ${p.banking77k20varied.recall} / ${p.banking77k20varied.falseHits} | |`,
    );
  }
  L.push(
    `| mock_data held-out half: answered right / wrong share of hits | **${d.mock.recall}% / ${d.mock.falseHits}%** | ${p.mock.recall}% / ${p.mock.falseHits}% | ${r.plainAtDefaultRate.mock}% |`,
  );
  if (d.arena)
    L.push(
      `| Arena-Hard v2.0 prompts, none repeated: queries served another prompt's answer | **${d.arena.falseHits}%** (${d.arena.falseHitCount} of ${d.arena.queries}) | ${p.arena.falseHits}% (${p.arena.falseHitCount}) | |`,
    );
  L.push(
    `| look-alike set: look-alikes served / paraphrases hit | **${d.lookalikes.lookalikesServed} of ${d.lookalikes.lookalikes} / ${d.lookalikes.paraphrasesHit} of ${d.lookalikes.paraphrases}** | ${p.lookalikes.lookalikesServed} / ${p.lookalikes.paraphrasesHit} | |`,
    '',
  );
  {
    // The issue's targets, checked against this run.
    const plainB77 = r.frontiers.banking77['plain cosine'];
    const bestStaticB77 = Math.max(
      0,
      ...Object.values(r.frontiers.banking77)
        .flat()
        .filter((x) => x.falseHits <= r.protocol.budgets.banking77)
        .map((x) => x.recall),
    );
    const tenX = Math.round(10 * p.banking77.recall * 100) / 100;
    const lodoOk = r.leaveOneDomainOut.filter((x) => x.withinOneAndAHalf).length;
    const yes = (b) => (b ? 'met' : '**not met**');
    L.push('### Targets', '', '| target | measured | |', '|---|---|---|');
    L.push(
      `| BANKING77 k = 5: right answers ≥ plain cosine's at the default's own wrong rate | ${d.banking77.recall} vs ${r.plainAtDefaultRate.banking77} | ${yes(d.banking77.recall >= r.plainAtDefaultRate.banking77)} |`,
    );
    L.push(
      `| BANKING77 k = 5: ≥ 10 × the previous default's right answers (${p.banking77.recall} → ${tenX}) | ${d.banking77.recall} | ${yes(d.banking77.recall >= tenX)} (the most right answers of any setting measured at ≤ ${r.protocol.budgets.banking77} wrong per 100: ${bestStaticB77}; plain cosine's: ${plainB77.filter((x) => x.falseHits <= r.protocol.budgets.banking77).sort((a, b) => b.recall - a.recall)[0]?.recall ?? 0}) |`,
    );
    L.push(
      `| BANKING77 k = 5: wrong answers ≤ ${r.protocol.budgets.banking77} per 100 queries | ${d.banking77.falseHits} | ${yes(d.banking77.falseHits <= r.protocol.budgets.banking77)} |`,
    );
    L.push(
      `| QQP held-out: false hits ≤ 1% (duplicates hit reported beside the previous default's 17.99%) | ${d.qqp.falseHits}% (duplicates ${d.qqp.recall}%) | ${yes(d.qqp.falseHits <= 1)} |`,
    );
    L.push(
      `| look-alike set: 0 look-alikes served | ${d.lookalikes.lookalikesServed} (paraphrases hit ${d.lookalikes.paraphrasesHit} of ${d.lookalikes.paraphrases}) | ${yes(d.lookalikes.lookalikesServed === 0)} |`,
    );
    L.push(
      `| leave one domain out: false hits ≤ 1.5 × budget on each held-out domain | ${lodoOk} of ${r.leaveOneDomainOut.length} | ${yes(lodoOk === r.leaveOneDomainOut.length)} |`,
      '',
    );
  }
  if (r.guardsAtQqpBudget) {
    const g = r.guardsAtQqpBudget.heldOut;
    L.push(
      `The rule-based guards alone at QQP's budget (threshold ${r.guardsAtQqpBudget.threshold}, what an embedder other than USE-lite gets): QQP ${g.qqp.recall}% / ${g.qqp.falseHits}%, BANKING77 ${g.banking77.recall} / ${g.banking77.falseHits}, mock ${g.mock.recall}% / ${g.mock.falseHits}%, look-alikes served ${g.lookalikes.lookalikesServed}, paraphrases ${g.lookalikes.paraphrasesHit}.`,
      '',
    );
  }
  L.push(
    '## Leave one domain out',
    '',
    "The setting chosen on the other domains' tuning splits, scored on the held-out domain's held-out split (target: false hits ≤ 1.5 × budget).",
    '',
  );
  L.push('| held-out domain | setting chosen without it | false hits | budget | ratio | ≤ 1.5 × budget | recall |', '|---|---|---:|---:|---:|---|---:|');
  for (const x of r.leaveOneDomainOut)
    L.push(
      `| ${x.heldOut} | ${x.setting} | ${x.falseHits} | ${x.budget} | ${x.ratio ?? '–'} | ${x.withinOneAndAHalf ? 'yes' : '**no**'} | ${x.recall ?? '–'} |`,
    );
  if (r.arena) {
    const ths = r.arena.byThreshold[0].points.map((x) => x.threshold).filter((t) => t >= 0.85);
    L.push(
      '',
      '## Traffic without repeats (Arena-Hard prompts)',
      '',
      `Every prompt stored, each asked with the others as candidates: any hit serves another question's answer (% of queries; tune = v0.1, ${r.arena.prompts.tune} prompts, ${r.arena.unrepresentable.tune} of them not representable by USE-lite; held-out = v2.0, ${r.arena.prompts['held-out']} prompts, ${r.arena.unrepresentable.heldOut} not representable, served by exact key only). Without that check, unrelated questions in scripts the model never learned (Russian, Chinese, Korean) score 0.93–0.98 with each other${r.arena.defaultWithoutCheck ? `: the default would have served another question's answer to ${r.arena.defaultWithoutCheck.falseHits}% of the held-out prompts (${r.arena.defaultWithoutCheck.falseHitCount} of ${r.arena.defaultWithoutCheck.queries})` : ''}.`,
      '',
      `| threshold | ${r.arena.byThreshold.map((f) => `${f.family} (tune / held-out)`).join(' | ')} |`,
      `|---:|${r.arena.byThreshold.map(() => '---:').join('|')}|`,
    );
    for (const t of ths)
      L.push(
        `| ${t} | ${r.arena.byThreshold
          .map((f) => {
            const x = f.points.find((q) => q.threshold === t);
            return `${x.tune} / ${x.heldOut}`;
          })
          .join(' | ')} |`,
      );
  }
  L.push('', '## Frontiers (held-out splits)', '');
  for (const dom of Object.keys(r.frontiers)) {
    const f = r.frontiers[dom];
    const lab = LABELS[dom];
    const series = Object.entries(f).map(([n, pts]) => ({ name: n, points: pts.map((x) => [x.falseHits, x.recall]) }));
    series.push({ name: 'default', points: [[d[dom].falseHits, d[dom].recall]], marker: true });
    if (dom === 'banking77' && r.calibratedPoint)
      series.push({ name: 'calibrated (2nd half)', points: [[r.calibratedPoint.wrong, r.calibratedPoint.right]], marker: true });
    const xMax = { qqp: 10, banking77: 3, mock: 12 }[dom];
    L.push(
      `<details open><summary>${lab.title}</summary>`,
      '',
      frontierSvg({ title: lab.title, xLabel: lab.x, yLabel: lab.y, series, xMax, budget: r.protocol.budgets[dom] }),
      '',
      '</details>',
      '',
    );
  }
  L.push(
    'Calibration needs answers to learn from, so it has a point only where the traffic has answers (BANKING77; see semantic-calibration.md for its runs).',
    '',
  );
  L.push('## The listed cases through the default', '', '| stored | asked | similarity | kind | served | turned down by |', '|---|---|---:|---|---|---|');
  for (const x of r.listed)
    L.push(
      `| ${x.stored} | ${x.asked} | ${x.similarity} | ${x.label} | ${x.hit ? 'yes' : 'no'} | ${x.guard ? `${x.guard}: ${x.reason}` : x.hit ? '' : 'threshold'} |`,
    );
  L.push('', '## Look-alike set by category (default)', '', '| category | pairs | served |', '|---|---:|---:|');
  for (const c of d.lookalikes.byCategory) L.push(`| ${c.category} (${c.label}) | ${c.pairs} | ${c.hit} |`);
  const g = r.gptcache;
  L.push(
    '',
    "## GPTCache's protocol on all of mock_data",
    '',
    `Published: ${g.published.map((x) => `${x.setting} ${x.correct} / ${x.wrong}`).join(', ')}. Default: ${g.default.right} / ${g.default.wrong}; plain cosine + selector at 0.7: ${g.plainSelector07.right} / ${g.plainSelector07.wrong}; previous default: ${g.previousDefault.right} / ${g.previousDefault.wrong}.`,
    '',
  );
  return L.join('\n') + '\n';
}

/** Per-protocol summary of the calibration runs (means over seeds, pooled interval for the wrong rate). */
export function summariseCalibration(c) {
  const out = {};
  for (const rt of [false, true]) {
    const runs = c.runs.filter((x) => x.readThrough === rt);
    if (!runs.length) continue;
    const mean = (f) => Math.round((100 * runs.reduce((a, x) => a + f(x), 0)) / runs.length) / 100;
    const h2 = (x) => x.calibrated.halves[1];
    const wrongTotal = runs.reduce((a, x) => a + h2(x).wrong, 0);
    const queries = runs.reduce((a, x) => a + h2(x).queries, 0);
    const ci = clopperPearson(wrongTotal, queries, 0.95);
    // Static points: mean over seeds per (name, threshold).
    const keys = [...new Set(runs.flatMap((x) => x.statics.map((s) => `${s.name}|${s.threshold ?? ''}`)))];
    const statics = keys.map((k) => {
      const [n, t] = k.split('|');
      const pts = runs.map((x) => x.statics.find((s) => `${s.name}|${s.threshold ?? ''}` === k).halves[1]);
      return { name: n, threshold: t === '' ? undefined : Number(t), right: avg(pts.map((p) => p.correctPer100)), wrong: avg(pts.map((p) => p.wrongPer100)) };
    });
    const cal = {
      right: mean((x) => h2(x).correctPer100),
      wrong: mean((x) => h2(x).wrongPer100),
      shadows: mean((x) => h2(x).shadowPer100),
      upstream: mean((x) => h2(x).upstream),
    };
    // Best static at (or under) the calibrated wrong rate; a straight line between the two static
    // points around it (plain cosine and guards curves), so a static setting gets credit for any mix.
    const bestStatic = bestAt(
      statics.filter((s) => s.name !== 'default'),
      cal.wrong,
    );
    const strictRuns = runs.filter((x) => x.atSupportBudget);
    const strict = strictRuns.length
      ? { right: avg(strictRuns.map((x) => x.atSupportBudget[1].correctPer100)), wrong: avg(strictRuns.map((x) => x.atSupportBudget[1].wrongPer100)) }
      : undefined;
    out[rt ? 'readThrough' : 'fixed'] = {
      atSupportBudget: strict,
      calibrated: cal,
      wrongRateInterval95: { low: round2(100 * ci.low), high: round2(100 * ci.high), wrong: wrongTotal, queries },
      bestStaticAtSameWrongRate: bestStatic,
      ratio: bestStatic.right > 0 ? round2(cal.right / bestStatic.right) : null,
      defaultStatic: statics.find((s) => s.name === 'default'),
      statics,
      shadowShare: mean((x) => x.calibrated.calibration.shadowShare),
      judgeAuc: mean((x) => x.calibrated.judge.auc ?? 0),
      cutoff: mean((x) => x.calibrated.calibration.cutoff),
    };
  }
  return out;
}

function bestAt(points, level) {
  let best = { right: 0, wrong: 0, setting: 'none' };
  for (const name of [...new Set(points.map((p) => p.name))]) {
    const curve = points.filter((p) => p.name === name).sort((a, b) => a.wrong - b.wrong || a.right - b.right);
    for (const p of curve) if (p.wrong <= level && p.right > best.right) best = { right: p.right, wrong: p.wrong, setting: `${name} @ ${p.threshold}` };
    for (let i = 0; i + 1 < curve.length; i++) {
      const a = curve[i],
        b = curve[i + 1];
      if (a.wrong <= level && b.wrong > level && b.wrong > a.wrong) {
        const right = a.right + ((b.right - a.right) * (level - a.wrong)) / (b.wrong - a.wrong);
        if (right > best.right) best = { right: round2(right), wrong: level, setting: `${name} between ${a.threshold} and ${b.threshold}` };
      }
    }
  }
  return best;
}

export function markdownCalibration(c) {
  const s = summariseCalibration(c);
  const L = [];
  L.push('# Calibrating mode: the support-bot simulation', '');
  L.push(
    `Measured by \`pnpm bench:semantic\` on ${c.date.slice(0, 10)}. ${c.setup.data}. Budget \`maxWrongRate: ${c.setup.options.maxWrongRate}\` (wrong cached answers per lookup), \`shadowRate: ${c.setup.options.shadowRate}\`. Judge: ${c.setup.judge}. Seeds ${c.setup.seeds.join(', ')} (query order, answer wording, out-of-scope intents, shadow sampling); figures are means over seeds, second half only. Static settings run the same protocol (same store behaviour) at thresholds ${c.setup.staticGrid.join(', ')}.`,
    '',
  );
  L.push(
    '| protocol | calibrated: right / wrong per 100 | wrong rate, 95% interval (pooled) | best static at the same wrong rate | ratio | default (static) | shadow checks per 100 / share of would-be hits | judge AUC |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const [k, v] of Object.entries(s)) {
    L.push(
      `| ${k === 'fixed' ? 'fixed cache (k = 5 only)' : 'read-through (misses stored)'} | **${v.calibrated.right} / ${v.calibrated.wrong}** | ${v.wrongRateInterval95.low}–${v.wrongRateInterval95.high}% (${v.wrongRateInterval95.wrong} of ${v.wrongRateInterval95.queries}) | ${v.bestStaticAtSameWrongRate.right} (${v.bestStaticAtSameWrongRate.setting}) | **${v.ratio}×** | ${v.defaultStatic.right} / ${v.defaultStatic.wrong} | ${v.calibrated.shadows} / ${round2(100 * v.shadowShare)}% | ${v.judgeAuc} |`,
    );
  }
  L.push('');
  for (const [k, v] of Object.entries(s)) {
    if (!v.atSupportBudget) continue;
    const st = bestAt(
      v.statics.filter((x) => x.name !== 'default'),
      0.3,
    );
    L.push(
      `At the support bot's static budget instead (\`maxWrongRate: 0.003\`), ${k === 'fixed' ? 'fixed cache' : 'read-through'}: calibrated **${v.atSupportBudget.right} right / ${v.atSupportBudget.wrong} wrong** per 100 on the second half; the best static setting at ≤ 0.3 wrong: ${st.right} (${st.setting}).`,
    );
  }
  L.push('');
  for (const [k, v] of Object.entries(s)) {
    const series = [];
    for (const name of [...new Set(v.statics.filter((x) => x.name !== 'default').map((x) => x.name))])
      series.push({ name, points: v.statics.filter((x) => x.name === name).map((x) => [x.wrong, x.right]) });
    series.push({ name: 'default', points: [[v.defaultStatic.wrong, v.defaultStatic.right]], marker: true });
    series.push({ name: 'calibrated', points: [[v.calibrated.wrong, v.calibrated.right]], marker: true });
    L.push(
      frontierSvg({
        title: `${k === 'fixed' ? 'Fixed cache' : 'Read-through'}: second half`,
        xLabel: 'wrong answers per 100 queries',
        yLabel: 'right answers per 100 queries',
        series,
        xMax: 3,
        budget: 100 * c.setup.options.maxWrongRate,
      }),
      '',
    );
  }
  L.push(
    '## Per run',
    '',
    '| protocol | seed | calibrated 1st half (warm-up) | calibrated 2nd half | cut-off | expected wrong rate (model) | audited wrong share of shadowed hits | judged pairs (right/wrong, by label) | decide p50 / p99 µs | snapshot bytes |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const r of c.runs) {
    const k = r.calibrated;
    const a = k.calibration.auditedWrongShareOfHits;
    L.push(
      `| ${r.readThrough ? 'read-through' : 'fixed'} | ${r.seed} | ${k.halves[0].correctPer100} / ${k.halves[0].wrongPer100} | ${k.halves[1].correctPer100} / ${k.halves[1].wrongPer100} | ${round3(k.calibration.cutoff)} | ${round2(100 * k.calibration.expectedWrongRate)}% | ${round2(100 * a.estimate)}% (${round2(100 * a.low)}–${round2(100 * a.high)}) | ${k.judge.rightPairs}/${k.judge.wrongPairs} | ${k.decideMicros.p50} / ${k.decideMicros.p99} | ${k.snapshotBytes} |`,
    );
  }
  L.push(
    '',
    `Decide path alone (warmed calibrator, ${c.decideCost.candidates} candidates with answer vectors): p50 ${c.decideCost.p50Micros} µs, p99 ${c.decideCost.p99Micros} µs over ${c.decideCost.lookups} lookups.`,
    '',
  );
  return L.join('\n') + '\n';
}

const avg = (xs) => Math.round((100 * xs.reduce((a, b) => a + b, 0)) / xs.length) / 100;
const round2 = (x) => Math.round(x * 100) / 100;
const round3 = (x) => Math.round(x * 1000) / 1000;
