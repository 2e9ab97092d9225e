// An experiment (the layer's answer-group rule grew out of it): how many more BANKING77 questions a support-bot cache
// could answer at the same error budget if matches were decided between ANSWER GROUPS (the stored
// prompts that hold one answer) instead of between single stored prompts.
//
// Three decision rules, each a floor and a margin, chosen on the 'dev' simulation and reported on
// the 'test' one (seeds pooled; same simulation as the quality benchmark: k cached utterances per
// intent, 10 intents left out of the cache whose queries are out of scope):
//   nearest          the nearest stored prompt's cosine ≥ floor (plain cosine; margin unused)
//   groups           each answer group's centroid; serve the best group's answer when its cosine
//                    ≥ floor and it leads the runner-up group by ≥ margin
//   groups-whitened  the same after a linear map learned from the cache itself: the spread of
//                    prompts WITHIN each answer group is whitened (within-class covariance
//                    normalisation, shrunk toward the identity by alpha, also chosen on 'dev'), so
//                    directions in which one answer's wordings differ count less than directions
//                    that separate answers. No label is used but which stored prompts share an answer.
// Groups: stored prompts whose answers are identical (answer = the intent's canned answer, the
// quality benchmark's main BANKING77 row), or, for the "worded afresh" row, prompts whose answer
// embeddings agree at cosine ≥ 0.9 (the calibrator's answer-agreement level).
//
//   node bench/embed-all.mjs --only banking77     (once: fills the vector cache)
//   node bench/answer-groups.mjs                  (≈ 3 min; writes bench/results/answer-groups.{json,md})
// Options: --data-dir (or $STRATA_DATA_DIR), --out DIR, STRATA_SIM_SEEDS=77,78,79; --render rewrites the .md from the .json.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSim } from './banking77-sim.mjs';
import { dataDir, pkgDir, repoDir } from './data.mjs';
import { EmbeddingCache, dot } from './embedding-cache.mjs';
import { loadUseLite } from './use-lite.mjs';

const arg = (name) => {
  const i = process.argv.indexOf('--' + name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const root = dataDir(arg('data-dir'));
const outDir = arg('out') ?? join(repoDir, 'bench', 'results');
const SEEDS = (process.env.STRATA_SIM_SEEDS ?? '77,78,79,80,81').split(',').map(Number);
const BUDGET = 0.3; // wrong answers per 100 queries, out-of-scope queries included
const ALPHAS = [0.05, 0.2, 0.5];
const ANSWER_AGREEMENT = 0.9;
const D = 512;

const cache = new EmbeddingCache(join(pkgDir, 'bench', '.cache'), 'use-lite-512', D);
const vec = (t) => {
  const v = cache.get(t);
  if (!v) throw new Error(`no vector for ${JSON.stringify(t.slice(0, 60))}: run node bench/embed-all.mjs --only banking77 first`);
  return v;
};
const unit = (a) => {
  const n = Math.sqrt(dot(a, a)) || 1;
  return Float64Array.from(a, (x) => x / n);
};

/** x ↦ L⁻¹x with L Lᵀ = (1 − alpha)·Sw + alpha·(trace(Sw)/D)·I: within-group whitening, shrunk. Identity without groups of two or more. */
function whitener(vectors, groups, alpha) {
  const sw = new Float64Array(D * D);
  let n = 0;
  for (const members of groups.values()) {
    if (members.length < 2) continue;
    const mu = new Float64Array(D);
    for (const i of members) for (let d = 0; d < D; d++) mu[d] += vectors[i][d] / members.length;
    for (const i of members) {
      const x = Float64Array.from(mu, (m, d) => vectors[i][d] - m);
      for (let a = 0; a < D; a++) for (let b = 0; b <= a; b++) sw[a * D + b] += x[a] * x[b];
      n++;
    }
  }
  if (n === 0) return unit;
  let trace = 0;
  for (let a = 0; a < D; a++) trace += sw[a * D + a] / n;
  const A = new Float64Array(D * D);
  for (let a = 0; a < D; a++)
    for (let b = 0; b <= a; b++) {
      const v = (1 - alpha) * (sw[a * D + b] / n) + (a === b ? alpha * (trace / D) + 1e-9 : 0);
      A[a * D + b] = v;
      A[b * D + a] = v;
    }
  const L = new Float64Array(D * D); // Cholesky
  for (let i = 0; i < D; i++)
    for (let j = 0; j <= i; j++) {
      let s = A[i * D + j];
      for (let k = 0; k < j; k++) s -= L[i * D + k] * L[j * D + k];
      L[i * D + j] = i === j ? Math.sqrt(s) : s / L[j * D + j];
    }
  return (v) => {
    const y = new Float64Array(D);
    for (let i = 0; i < D; i++) {
      let s = v[i];
      for (let k = 0; k < i; k++) s -= L[i * D + k] * y[k];
      y[i] = s / L[i * D + i];
    }
    return unit(y);
  };
}

/** Answer groups of a simulation's stored prompts: identical answers, or answer embeddings that agree. */
function groupsOf(sim, answerVectors) {
  const groups = new Map();
  if (!answerVectors) {
    sim.entries.forEach((e, i) => (groups.get(e.intent) ?? groups.set(e.intent, []).get(e.intent)).push(i));
    return groups;
  }
  const av = sim.entries.map((e) => answerVectors.get(e.answer));
  const parent = av.map((_, i) => i);
  const find = (i) => (parent[i] === i ? i : (parent[i] = find(parent[i])));
  for (let i = 0; i < av.length; i++) for (let j = i + 1; j < av.length; j++) if (dot(av[i], av[j]) >= ANSWER_AGREEMENT) parent[find(i)] = find(j);
  sim.entries.forEach((_, i) => (groups.get(find(i)) ?? groups.set(find(i), []).get(find(i))).push(i));
  return groups;
}

/** Per query and rule: the score the floor applies to, the margin, and whether the answer served would be right. */
function scoreSim(sim, answerVectors) {
  const ev = sim.entries.map((e) => vec(e.text));
  const qv = sim.queries.map((q) => vec(q.text));
  const groups = groupsOf(sim, answerVectors);
  // A group answers right when most of its prompts are the query's intent (groups by answer
  // agreement may mix intents: then its answer is wrong for some of them).
  const intentOf = new Map();
  for (const [g, members] of groups) {
    const count = new Map();
    for (const i of members) count.set(sim.entries[i].intent, (count.get(sim.entries[i].intent) ?? 0) + 1);
    intentOf.set(g, [...count].sort((a, b) => b[1] - a[1])[0][0]);
  }
  const out = { nearest: [], groups: [] };
  for (const alpha of ALPHAS) out[`groups-whitened@${alpha}`] = [];
  sim.queries.forEach((q, k) => {
    let best = -2;
    let at = -1;
    for (let i = 0; i < ev.length; i++) {
      const s = dot(qv[k], ev[i]);
      if (s > best) [best, at] = [s, i];
    }
    out.nearest.push({ s: best, m: 1, ok: q.inScope && sim.entries[at].intent === q.intent });
  });
  const byGroups = (name, map) => {
    const mapped = ev.map(map);
    const centroids = [...groups].map(([g, members]) => {
      const c = new Float64Array(D);
      for (const i of members) for (let d = 0; d < D; d++) c[d] += mapped[i][d];
      return { g, c: unit(c) };
    });
    sim.queries.forEach((q, k) => {
      const u = map(qv[k]);
      let b1 = -2;
      let b2 = -2;
      let g1;
      for (const { g, c } of centroids) {
        const s = dot(u, c);
        if (s > b1) [b2, b1, g1] = [b1, s, g];
        else if (s > b2) b2 = s;
      }
      out[name].push({ s: b1, m: b1 - b2, ok: q.inScope && intentOf.get(g1) === q.intent });
    });
  };
  byGroups('groups', unit);
  for (const alpha of ALPHAS) byGroups(`groups-whitened@${alpha}`, whitener(ev, groups, alpha));
  return out;
}

function pooled(split, k, answerVectors) {
  const all = {};
  for (const seed of SEEDS) {
    const r = scoreSim(buildSim({ root, split, k, seed }), answerVectors);
    for (const [name, rows] of Object.entries(r)) (all[name] ??= []).push(...rows);
  }
  return all;
}

const at = (rows, floor, margin) => {
  let right = 0;
  let wrong = 0;
  for (const r of rows) if (r.s >= floor && r.m >= margin) r.ok ? right++ : wrong++;
  return { right: round((100 * right) / rows.length), wrong: round((100 * wrong) / rows.length), queries: rows.length };
};
const round = (x) => Math.round(x * 100) / 100;
const FLOORS = Array.from({ length: 51 }, (_, i) => round(0.5 + i * 0.01));
const MARGINS = Array.from({ length: 61 }, (_, i) => Math.round(i * 5) / 1000);

/** The (floor, margin) with the most right answers within the budget on `rows`. */
function bestWithin(rows, margins) {
  let best;
  for (const floor of FLOORS)
    for (const margin of margins) {
      const r = at(rows, floor, margin);
      if (r.wrong <= BUDGET && (!best || r.right > best.right)) best = { floor, margin, ...r };
    }
  return best;
}

async function answerVectorsFor(k) {
  const texts = new Set();
  for (const split of ['dev', 'test']) for (const seed of SEEDS) for (const e of buildSim({ root, split, k, seed }).entries) texts.add(e.answer);
  const model = await loadUseLite(join(root, 'models', 'universal-sentence-encoder-lite'));
  const list = [...texts];
  const map = new Map();
  for (let i = 0; i < list.length; i += 64) (await model.embed(list.slice(i, i + 64))).forEach((v, j) => map.set(list[i + j], unit(v)));
  return map;
}

function markdown(result) {
  const { rows, reference } = result;
  const pick = (k, worded, rule) => rows.find((r) => r.k === k && r.worded === worded && r.rule === rule);
  const vs = (k, ref) => {
    const w = pick(k, false, 'groups-whitened');
    if (!w || !ref) return '';
    return `k = ${k}: ${w.test.right} right / ${w.test.wrong} wrong per 100 (${w.test.wrong <= BUDGET ? 'within' : 'over'} the budget), ${round(w.test.right / ref.recall)}× the default's ${ref.recall} right (${ref.falseHits} wrong)`;
  };
  return [
    '# Answer groups (an experiment on BANKING77)',
    '',
    `\`node packages/semantic-guards/bench/answer-groups.mjs\` — ${result.date}, USE-lite, seeds ${result.seeds.join(', ')} pooled. The experiment that led to \`@strata-cache/layer-semantic\`'s answer-group rule: a measurement of what deciding between answer groups gains, each rule alone (see the script's header). The layer runs a variant of \`groups-whitened\` (the whitened centroid of the raw vectors, the answers among the 16 nearest prompts, a bound on the plain similarity of the prompt served through) in front of guards + consensus, with floor and margin chosen at 0.8 × the budget: its figures are in \`semantic-quality.md\`.`,
    '',
    `Budget: ${result.budget}. ${result.protocol}`,
    '',
    '| simulation | rule | chosen on dev | dev right / wrong | **test right / wrong** per 100 queries | best on test within budget |',
    '|---|---|---|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.simulation} | ${r.rule} | floor ${r.floor}${r.margin !== undefined ? `, margin ${r.margin}` : ''}${r.alpha !== undefined ? `, alpha ${r.alpha}` : ''} | ${r.dev.right} / ${r.dev.wrong} | **${r.test.right} / ${r.test.wrong}** | ${r.testBestWithinBudget ? `${r.testBestWithinBudget.right} / ${r.testBestWithinBudget.wrong}` : '–'} |`,
    ),
    '',
    reference
      ? `For comparison, the layer's default in \`semantic-quality.json\` (${reference.date}): k = 5 ${reference.default?.recall} right / ${reference.default?.falseHits} wrong; k = 20 ${reference.defaultK20?.recall} / ${reference.defaultK20?.falseHits}; k = 5 worded afresh ${reference.defaultWorded?.recall} / ${reference.defaultWorded?.falseHits}; the previous default (issue 12's baseline) k = 5 ${reference.previousDefault?.recall} / ${reference.previousDefault?.falseHits}.`
      : '',
    '',
    reference ? `Whitened answer groups against the default: ${vs(5, reference.default)}; ${vs(20, reference.defaultK20)}.` : '',
    '',
    'Reading: the gain depends on knowing which stored prompts share an answer. With identical stored answers (a canned answer per intent) the groups are exact; with every answer worded afresh, grouping by answer-embedding agreement splits and mixes them and the gain is gone. The rule needs groups of two or more prompts: on traffic whose answers never repeat it has nothing to learn from and would have to leave the decision to the default.',
    '',
  ].join('\n');
}

if (process.argv.includes('--render')) {
  const result = JSON.parse(readFileSync(join(outDir, 'answer-groups.json'), 'utf8'));
  writeFileSync(join(outDir, 'answer-groups.md'), markdown(result));
  console.log(`rewrote ${join(outDir, 'answer-groups.md')}`);
} else {
  await measure();
}

async function measure() {
  const rows = [];
  for (const { k, worded } of [
    { k: 5, worded: false },
    { k: 20, worded: false },
    { k: 5, worded: true },
  ]) {
    const answerVectors = worded ? await answerVectorsFor(k) : undefined;
    const dev = pooled('dev', k, answerVectors);
    const test = pooled('test', k, answerVectors);
    const sim = `k = ${k}${worded ? ', answers worded afresh (groups by answer agreement ≥ 0.9)' : ', identical answers per intent'}`;
    for (const rule of ['nearest', 'groups', 'groups-whitened']) {
      const names = rule === 'groups-whitened' ? ALPHAS.map((a) => `groups-whitened@${a}`) : [rule];
      let chosen;
      for (const name of names) {
        const b = bestWithin(dev[name], rule === 'nearest' ? [0] : MARGINS);
        if (b && (!chosen || b.right > chosen.dev.right)) chosen = { name, dev: b };
      }
      const held = at(test[chosen.name], chosen.dev.floor, chosen.dev.margin);
      const oracle = bestWithin(test[chosen.name], rule === 'nearest' ? [0] : MARGINS);
      rows.push({
        simulation: sim,
        k,
        worded,
        rule,
        alpha: rule === 'groups-whitened' ? Number(chosen.name.split('@')[1]) : undefined,
        floor: chosen.dev.floor,
        margin: rule === 'nearest' ? undefined : chosen.dev.margin,
        dev: { right: chosen.dev.right, wrong: chosen.dev.wrong },
        test: held,
        testBestWithinBudget: oracle ? { right: oracle.right, wrong: oracle.wrong } : undefined,
      });
      console.log(
        `${sim} | ${rule}: test ${held.right} right / ${held.wrong} wrong per 100 (chosen on dev: floor ${chosen.dev.floor}, margin ${chosen.dev.margin})`,
      );
    }
  }

  let reference;
  try {
    const q = JSON.parse(readFileSync(join(outDir, 'semantic-quality.json'), 'utf8'));
    reference = {
      date: q.date,
      default: q.default?.banking77,
      defaultK20: q.default?.banking77k20,
      defaultWorded: q.default?.banking77varied,
      previousDefault: q.previousDefault?.banking77,
    };
  } catch {
    reference = undefined;
  }

  const result = {
    name: 'answer-groups',
    date: new Date().toISOString(),
    embedder: 'use-lite-512',
    seeds: SEEDS,
    budget: `${BUDGET} wrong answers per 100 queries (out-of-scope included)`,
    protocol:
      'floor, margin (and alpha for the whitened rule, from ' +
      ALPHAS.join(', ') +
      ') chosen on the dev simulation (cache and queries from train.csv) as the most right answers within the budget; reported on the test simulation (queries from test.csv). testBestWithinBudget: the best setting chosen on test itself (optimistic, for reference).',
    rows,
    reference,
  };
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'answer-groups.json'), JSON.stringify(result, null, 2) + '\n');

  writeFileSync(join(outDir, 'answer-groups.md'), markdown(result));
  console.log(`wrote ${join(outDir, 'answer-groups.{json,md}')}`);
}
