// The support-bot cache, replayed: a read-through semantic cache over the BANKING77 simulation
// (banking77-sim.mjs). Each query is looked up; a hit serves the stored answer, a miss asks
// "upstream" (the query's own intent's answer, worded afresh) and stores the query with that answer,
// as core's read-through does. Policies: a static setting (threshold + guards + selector) or the
// calibrator from @strata-cache/semantic-calibration with the default answer judge.
//
// What each policy sees is what production would: similarities, texts, guard verdicts, stored and
// fresh answer texts (and their embeddings), the judge's scores. The intents only score the run.
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import { defaultGuards, lexicalSelector, runGuards, sameQuestion } from '../dist/index.js';
import { pkgDir } from './data.mjs';
import { rng } from './banking77-sim.mjs';

const calibrationDist = join(pkgDir, '..', 'semantic-calibration', 'dist', 'index.js');
const { matchCandidates } = await import(join(pkgDir, '..', 'layer-semantic', 'dist', 'index.js'));
export const loadCalibration = () => import(calibrationDist);

/** A growing exact-search store of entries { text, intent, answer } with their vectors. */
class Store {
  constructor(dim) {
    this.dim = dim;
    this.cap = 1024;
    this.matrix = new Float32Array(this.cap * dim);
    this.items = [];
  }
  add(item, vec) {
    if (this.items.length === this.cap) {
      this.cap *= 2;
      const m = new Float32Array(this.cap * this.dim);
      m.set(this.matrix);
      this.matrix = m;
    }
    this.matrix.set(vec, this.items.length * this.dim);
    this.items.push({ ...item, id: `e${this.items.length}`, vec });
  }
  /** Top `k` entries with similarity ≥ floor, most similar first. */
  search(v, k, floor) {
    const top = [];
    const d = this.dim;
    for (let i = 0; i < this.items.length; i++) {
      let s = 0;
      const off = i * d;
      for (let j = 0; j < d; j++) s += v[j] * this.matrix[off + j];
      if (s < floor) continue;
      if (top.length < k) {
        top.push({ i, sim: s });
        top.sort((a, b) => b.sim - a.sim);
      } else if (s > top[k - 1].sim) {
        top[k - 1] = { i, sim: s };
        top.sort((a, b) => b.sim - a.sim);
      }
    }
    return top;
  }
}

/**
 * Replays `sim` (from buildSim) under a policy.
 * @param {object} o
 * @param {object} o.sim
 * @param {(t: string) => Float32Array} o.vec  vector of any text (queries, prompts, answers)
 * @param {object} o.policy  { kind: 'static', threshold, guards, selector } | { kind: 'calibrated', options }
 * @param {number} [o.warm]  queries in the warm-up half (scored separately)
 * @param {boolean} [o.readThrough] store misses (default true)
 */
export async function replay({ sim, vec, policy, warm = Math.floor(sim.queries.length / 2), readThrough = true, topK = 8, seed = 1 }) {
  const dim = vec(sim.entries[0].text).length;
  const store = new Store(dim);
  for (const e of sim.entries) store.add(e, vec(e.text));
  const guards = policy.guards === undefined ? defaultGuards() : policy.guards;
  let calibrator, judge;
  if (policy.kind === 'calibrated') {
    const cal = await loadCalibration();
    calibrator = new cal.SemanticCalibrator({ random: rng(seed * 31 + 7), ...policy.options });
    // The default judge; the sim hands it the answers' embeddings it already has.
    judge = cal.embeddingAnswerJudge({ embedder: { id: 'sim', dimensions: dim, embed: async (ts) => ts.map(vec) } });
  }
  const halves = [newCounts(), newCounts()];
  const judgeConfusion = { rightAgreeScore: [], wrongAgreeScore: [] };
  const decideTimes = [];
  for (let j = 0; j < sim.queries.length; j++) {
    const q = sim.queries[j];
    const h = halves[j < warm ? 0 : 1];
    h.queries++;
    if (!q.inScope) h.outOfScope++;
    const qv = vec(q.text);
    const found = store.search(qv, topK, 0.3);
    const cands = found.map((c) => {
      const e = store.items[c.i];
      const accepted =
        !guards ||
        guards.length === 0 ||
        runGuards(guards, { query: q.text, candidate: e.text, similarity: c.sim, threshold: 0, queryVector: qv, candidateVector: e.vec }).accept;
      return { e, sim: c.sim, accepted };
    });
    let served;
    let upstream = true;
    if (policy.kind === 'static') {
      // The layer's own loop, over the guard verdicts computed above.
      const verdict = new Map(cands.map((c) => [c.e.text, c.accepted]));
      const r = matchCandidates(
        { text: q.text },
        cands.map((c) => ({ text: c.e.text, similarity: c.sim, value: c.e.answer })),
        {
          threshold: policy.threshold,
          guards: [{ name: 'guards', check: ({ candidate }) => (verdict.get(candidate) ? { accept: true } : { accept: false, reason: 'turned down' }) }],
          selector: policy.selector || undefined,
        },
      );
      served = r.pick === undefined ? undefined : cands[r.pick];
      if (served) upstream = false;
    } else {
      const input = {
        candidates: cands.map((c) => ({
          id: c.e.id,
          similarity: c.sim,
          accepted: c.accepted,
          answerVector: vec(c.e.answer),
          sameText: sameQuestion(q.text, c.e.text),
        })),
      };
      const t0 = performance.now();
      const d = calibrator.decide(input);
      decideTimes.push(performance.now() - t0);
      if (policy.diagnose && d.token) {
        const key = `${d.token.context}:${Math.floor(d.token.similarity * 50) / 50}`;
        const cell = (policy.diagnose[key] ??= { n: 0, right: 0, pw: 0 });
        cell.n++;
        cell.pw += d.pWrong ?? 0;
        if (cands[d.candidate].e.intent === q.intent) cell.right++;
        if (j >= warm) (policy.diagnose._ranked ??= []).push([d.pWrong ?? 1, cands[d.candidate].e.intent === q.intent ? 1 : 0, d.token.similarity]);
      }
      if (d.action === 'serve') {
        served = cands[d.candidate];
        upstream = false;
      } else if (d.token) {
        const c = cands[d.candidate];
        const v = await judge.judge({
          query: q.text,
          cachedAnswer: c.e.answer,
          freshAnswer: q.fresh,
          cachedAnswerVector: vec(c.e.answer),
          freshAnswerVector: vec(q.fresh),
        });
        calibrator.observe(d.token, v, d.action === 'shadow' ? 'shadow' : 'miss');
        if (policy.diagnose)
          (policy.diagnose._scores ??= { R: new Array(20).fill(0), W: new Array(20).fill(0) })[c.e.intent === q.intent ? 'R' : 'W'][
            Math.min(19, Math.floor(v.score * 20))
          ]++;
        (c.e.intent === q.intent ? judgeConfusion.rightAgreeScore : judgeConfusion.wrongAgreeScore).push(v.score);
        if (d.action === 'shadow') h.shadows++;
      }
    }
    if (served) {
      if (served.e.intent === q.intent) h.correct++;
      else {
        h.wrong++;
        if (!q.inScope) h.wrongOutOfScope++;
      }
    }
    if (upstream) {
      h.upstream++;
      if (readThrough) store.add({ text: q.text, intent: q.intent, answer: q.fresh }, qv);
    }
  }
  const out = { halves: halves.map(finish), stored: store.items.length };
  if (calibrator) {
    const st = calibrator.stats();
    out.calibration = {
      cutoff: st.cutoff,
      expectedWrongRate: st.expectedWrongRate,
      shadowShare: st.shadowShare,
      counters: st.counters,
      auditedWrongShareOfHits: st.auditedWrongShareOfHits,
      curve: st.curve,
      entriesWithEvidence: st.entriesWithEvidence,
    };
    out.judge = judgeSummary(judgeConfusion);
    const t = [...decideTimes].sort((a, b) => a - b);
    out.decideMicros = { p50: Math.round(t[Math.floor(t.length / 2)] * 1e4) / 10, p99: Math.round(t[Math.floor(t.length * 0.99)] * 1e4) / 10 };
    out.snapshotBytes = JSON.stringify(calibrator.snapshot()).length;
    out.model = calibrator.model();
  }
  return out;
}

function newCounts() {
  return { queries: 0, outOfScope: 0, correct: 0, wrong: 0, wrongOutOfScope: 0, upstream: 0, shadows: 0 };
}
function finish(c) {
  const per100 = (x) => Math.round((10000 * x) / Math.max(1, c.queries)) / 100;
  return { ...c, correctPer100: per100(c.correct), wrongPer100: per100(c.wrong), shadowPer100: per100(c.shadows) };
}
function judgeSummary({ rightAgreeScore, wrongAgreeScore }) {
  // How well the judge's score separates right from wrong stored answers (by label, for the report only).
  const r = [...rightAgreeScore].sort((a, b) => a - b);
  const w = [...wrongAgreeScore].sort((a, b) => a - b);
  let auc = 0;
  let k = 0;
  for (const x of r) {
    while (k < w.length && w[k] < x) k++;
    auc += k;
  }
  const q = (a, p) => (a.length ? Math.round(a[Math.floor(p * (a.length - 1))] * 1000) / 1000 : null);
  return {
    judged: r.length + w.length,
    rightPairs: r.length,
    wrongPairs: w.length,
    auc: r.length && w.length ? Math.round((1000 * auc) / (r.length * w.length)) / 1000 : null,
    rightMedian: q(r, 0.5),
    wrongMedian: q(w, 0.5),
    wrong95th: q(w, 0.95),
  };
}

/** Static policies over a threshold grid (plain cosine, guards, guards + selector). */
export function staticPolicies(thresholds) {
  const g = defaultGuards();
  const sel = lexicalSelector();
  const out = [];
  for (const t of thresholds) {
    out.push({ name: 'plain cosine', kind: 'static', threshold: t, guards: [], selector: undefined });
    out.push({ name: 'guards + selector', kind: 'static', threshold: t, guards: g, selector: sel });
  }
  return out;
}
