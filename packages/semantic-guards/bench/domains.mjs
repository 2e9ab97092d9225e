// The kinds of traffic the quality benchmark scores settings on, each with a tuning split (where
// settings are chosen) and a held-out split (reported only), a false-hit measure with a budget and a
// recall measure:
//
//   qqp        QQP labelled pairs (insert text_a, query text_b): false hits = % of non-duplicates hit
//              (budget 1%), recall = % of duplicates hit. Tune: pairs 50,000–59,999 (the part of the
//              tuning split the verifier never trained on); held-out: 60,000–80,853.
//   banking77  the support-bot cache (k cached utterances per intent, out-of-scope intents left out):
//              false hits = wrong answers per 100 queries (budget 0.3), recall = right answers per 100.
//              Tune: the 'dev' simulation (train.csv only); held-out: 'test' (queries from test.csv).
//   arena      Arena-Hard prompts, every one a different question (traffic without repeats): false
//              hits = % of queries served another prompt's answer (budget 1%); no recall. Tune: v0.1
//              (two prompts per topic cluster); held-out: v2.0.
//   mock       GPTCache's mock_data protocol (insert every origin, query every paraphrase): false
//              hits = wrong share of hits (budget 2.5%), recall = % of queries answered with their own
//              origin. Tune: queries 0–498; held-out: 499–998.
//   lookalikes the project's look-alike set (data/lookalikes.jsonl: store a, ask b): false hits = % of
//              look-alike pairs served (budget 0: none), recall = % of paraphrase pairs hit (reported,
//              not chosen by). Tune / held-out: alternate pairs of each category.
//
// A setting is { threshold, config }: config 'none' (plain cosine), 'guards' (the rule-based guards),
// 'consensus' (the rule-based guards with consensusSelector(): a lone match needs the threshold, one
// in its reach below it needs neighbourhood evidence), or 'verifier@p' (guards + the learned verifier
// at probability cut-off p; '/trust' suffix: the embedding trusted without the verifier at or above
// that similarity). Every setting but 'consensus' uses lexicalSelector() in store protocols.
import { join } from 'node:path';
import { consensusSelector, defaultGuards, lexicalSelector, runGuards, sameText, useLiteVerifierModel } from '../dist/index.js';
import { pairProbability } from '../dist/training.js';
import { buildSim } from './banking77-sim.mjs';
import { QQP_TUNE, loadMock, pkgDir } from './data.mjs';
import { dot } from './embedding-cache.mjs';

// The semantic layer's own matching loop (threshold → guards → selector with the neighbourhood):
// every setting below is judged by the very function the layer serves with.
const { matchCandidates, AnswerGroupModel, answerGroupKey, answerGroupSetting, ANSWER_GROUP_DEFAULTS } = await import(
  join(pkgDir, '..', 'layer-semantic', 'dist', 'index.js')
);
export { ANSWER_GROUP_DEFAULTS };

/**
 * The answer-group rule (layer-semantic's AnswerGroupModel, the class the layer runs per
 * partition): shrinkage values its map is built with here; floor and margin are applied per setting.
 */
export const GROUP_SHRINKAGE = [...new Set([0.2, 0.5, ANSWER_GROUP_DEFAULTS.shrinkage])];

/**
 * The embedder's `represents(text)` (the layer serves a text it says no to by exact key only);
 * semantic-quality.mjs sets USE-lite's from the model's vocabulary. Memoised per text.
 */
let represents = (_text) => true;
const representsMemo = new Map();
export function setRepresents(fn) {
  represents = fn;
  representsMemo.clear();
}
function representable(text) {
  let r = representsMemo.get(text);
  if (r === undefined) representsMemo.set(text, (r = represents(text)));
  return r;
}

export const BUDGETS = { qqp: 1, banking77: 0.3, mock: 2.5, arena: 1, lookalikes: 0 };
/**
 * Domains whose recall settings are chosen by; 'arena' (traffic without repeats) has false hits
 * only, and 'lookalikes' (the project's look-alike set) is a constraint only: no look-alike served.
 */
export const RECALL_DOMAINS = ['qqp', 'banking77', 'mock'];
export const DOMAINS = [...RECALL_DOMAINS, 'arena', 'lookalikes'];
const MIN_T = 0.6;
const GUARDS = defaultGuards();
const MODEL = useLiteVerifierModel();

/** Per-pair features every setting is decided from: similarity, guard verdict, verifier probability. */
function features(query, candidate, sim, qv, cv) {
  if (sim < MIN_T) return remember(query, candidate, { sim, g: false, p: 0 });
  const g = runGuards(GUARDS, { query, candidate, similarity: sim, threshold: MIN_T }).accept;
  const p = !g ? 0 : sameText(query, candidate) ? 1 : pairProbability(MODEL, query, candidate, qv, cv, sim);
  return remember(query, candidate, { sim, g, p });
}

export function parseConfig(config) {
  if (config === 'none' || config === 'guards') return { kind: config };
  if (config === 'consensus' || config === 'consensus+groups') return { kind: 'guards' };
  const m = /^verifier@([\d.]+)(?:\/trust([\d.]+))?$/.exec(config);
  if (!m) throw new Error(`unknown config ${config}`);
  return { kind: 'verifier', p: Number(m[1]), trust: m[2] ? Number(m[2]) : Infinity };
}

export function accepts(setting, f) {
  if (f.sim < setting.threshold) return false;
  const c = (setting.parsed ??= parseConfig(setting.config));
  if (c.kind === 'none') return true;
  if (!f.g) return false;
  if (c.kind === 'guards') return true;
  return f.sim >= c.trust || f.p >= c.p;
}

// ------------------------------------------------------------------------------------------------

/** QQP pairs with features, split by index. */
export function qqpDomain(qqp, vec) {
  const rows = [];
  for (const p of qqp) {
    const u = vec(p.text_b);
    const v = vec(p.text_a);
    const sim = dot(u, v);
    rows.push({ i: p.i, y: p.label, q: p.text_b, c: p.text_a, f: features(p.text_b, p.text_a, sim, u, v) });
  }
  const inSplit = (split, i) => (split === 'held-out' ? i >= QQP_TUNE : i >= 50_000 && i < QQP_TUNE);
  return {
    name: 'qqp',
    evaluate(setting, split) {
      let dup = 0,
        non = 0,
        dupHit = 0,
        falseHit = 0;
      for (const r of rows) {
        if (!inSplit(split, r.i)) continue;
        const hit = pairHit(setting, r.q, r.c, r.f);
        if (r.y === 1) {
          dup++;
          if (hit) dupHit++;
        } else {
          non++;
          if (hit) falseHit++;
        }
      }
      return { recall: pct(dupHit, dup), falseHits: pct(falseHit, non), duplicates: dup, nonDuplicates: non, duplicateHits: dupHit, falseHitCount: falseHit };
    },
  };
}

/** Per-pair features, found by the texts a guard sees. */
const FEATURES = new Map();
const pairKey = (query, candidate) => query + '\u0001' + candidate;
function remember(query, candidate, f) {
  FEATURES.set(pairKey(query, candidate), f);
  return f;
}

// A setting's guard verdict, as one guard over the precomputed features (the rule guards and the
// verifier are deterministic: computing them once per pair keeps hundreds of settings affordable).
const guardCache = new Map();
function settingGuards(config) {
  const c = parseConfig(config);
  if (c.kind === 'none') return [];
  let g = guardCache.get(config);
  if (!g) {
    g = {
      name: c.kind === 'verifier' ? 'guards+verifier' : 'guards',
      check: ({ query, candidate }) => {
        const f = FEATURES.get(pairKey(query, candidate));
        return f && accepts({ threshold: -1, config }, f) ? { accept: true } : { accept: false, reason: 'turned down' };
      },
    };
    guardCache.set(config, g);
  }
  return [g];
}
const LEXICAL = lexicalSelector();
const CONSENSUS = consensusSelector();
const settingSelector = (setting) => (setting.config === 'consensus' || setting.config === 'consensus+groups' ? CONSENSUS : LEXICAL);

/**
 * One lookup through the layer's loop: candidates most similar first (each { text, value, f }).
 * Returns the served candidate, or undefined. `groups` (store protocols with repeated answers):
 * per shrinkage, the answer-group model's decision for this query ({ score, runnerUp, similarity of the
 * prompt served through, cand, guardOk }), applied first when the setting has `groups` ({ floor,
 * margin, minSimilarity, shrinkage }), as the layer does.
 */
function lookup(setting, query, cands, groups) {
  // As the layer does: a text the embedder cannot represent is neither looked up nor indexed.
  if (!representable(query)) return undefined;
  if (setting.groups && groups) {
    const g = groups.get(setting.groups.shrinkage);
    if (
      g &&
      g.score >= setting.groups.floor &&
      g.score - g.runnerUp >= setting.groups.margin &&
      g.similarity >= setting.groups.minSimilarity &&
      g.guardOk &&
      representable(g.cand.text)
    )
      return g.cand;
  }
  if (cands.some((c) => !representable(c.text))) cands = cands.filter((c) => representable(c.text));
  const r = matchCandidates(
    { text: query },
    cands.map((c) => ({ text: c.text, similarity: c.f.sim, value: c.value })),
    { threshold: setting.threshold, guards: settingGuards(setting.config), selector: settingSelector(setting) },
  );
  return r.pick === undefined ? undefined : cands[r.pick];
}
const storeLookup = (setting, q, cands, groups) => lookup(setting, q, cands, groups);

/** The layer's loop with a real setting ({ threshold, guards, selector }), for the listed cases. */
export const lookupWith = (query, candidates, setting) => matchCandidates(query, candidates, setting);

/** A pair (store `candidate`, ask `query`) through the layer's loop: the only stored prompt in its partition. */
export function pairHit(setting, query, candidate, f) {
  return lookup(setting, query, [{ text: candidate, value: candidate, f }]) !== undefined;
}

/**
 * The BANKING77 support-bot cache (static: the k cached utterances only). `values`: what each
 * cached entry holds — 'intent' (one answer per intent, as a support bot with one written answer per
 * intent has, and as the project's held-out protocol stores it) or 'answer' (an answer worded afresh
 * for every cached utterance, as an LLM would: same-intent entries then hold different texts).
 */
export function banking77Domain(root, vec, k, values = 'intent', seeds = [77]) {
  // One simulation per seed (the seed draws the cached utterances, the out-of-scope intents and
  // the answers' wording); a split's figures pool every seed's queries.
  const runs = seeds.map((seed) => banking77Run(root, vec, k, values, seed));
  return {
    name: 'banking77',
    seeds: [...seeds],
    splits: runs[0].splits,
    evaluate(setting, split) {
      let right = 0,
        wrong = 0,
        wrongOos = 0,
        n = 0,
        oos = 0;
      for (const run of runs) {
        for (const { q, cands, groups } of run.splits[split].queries) {
          n++;
          if (!q.inScope) oos++;
          const hit = storeLookup(setting, q.text, cands, groups);
          if (!hit) continue;
          if (hit.intent === q.intent) right++;
          else {
            wrong++;
            if (!q.inScope) wrongOos++;
          }
        }
      }
      return {
        recall: per100(right, n),
        falseHits: per100(wrong, n),
        queries: n,
        outOfScope: oos,
        right,
        wrong,
        wrongOutOfScope: wrongOos,
        seeds: runs.length,
      };
    },
  };
}

function banking77Run(root, vec, k, values, seed) {
  const splits = {};
  for (const [name, simSplit] of [
    ['tune', 'dev'],
    ['held-out', 'test'],
  ]) {
    const sim = buildSim({ root, split: simSplit, k, seed });
    const ev = sim.entries.map((e) => vec(e.text));
    const answerOf = (e) => (values === 'intent' ? `answer for ${e.intent}` : e.answer);
    // The partition's answer-group models, as the layer keeps them (answers keyed by their text;
    // a text USE-lite cannot represent is not indexed); floor -1 and margin 0 so every decision is
    // recorded and each setting applies its own floor and margin.
    const models = new Map(
      GROUP_SHRINKAGE.map((shrinkage) => {
        const m = new AnswerGroupModel(ev[0].length, answerGroupSetting({ floor: -1, margin: 0, shrinkage }), (i) => ev[i]);
        sim.entries.forEach((e, i) => representable(e.text) && m.add(i, ev[i], answerGroupKey(answerOf(e))));
        m.rebuild();
        return [shrinkage, m];
      }),
    );
    const N = ANSWER_GROUP_DEFAULTS.neighbours;
    const queries = sim.queries.map((q) => {
      const u = vec(q.text);
      const ranked = ev
        .map((v, i) => ({ i, s: dot(u, v) }))
        .filter((c) => representable(sim.entries[c.i].text))
        .sort((a, b) => b.s - a.s);
      const top = ranked.slice(0, 8);
      const near = ranked.slice(0, N);
      const groups = new Map();
      for (const [shrinkage, m] of models) {
        const d = m.decide(
          u,
          near.map((c) => c.i),
        );
        if (!d) continue;
        const c = near.find((x) => m.keyOf(x.i) === d.key);
        const e = sim.entries[c.i];
        groups.set(shrinkage, {
          score: d.score,
          runnerUp: d.runnerUp,
          similarity: c.s,
          guardOk: runGuards(GUARDS, { query: q.text, candidate: e.text, similarity: c.s, threshold: 0, queryVector: u, candidateVector: ev[c.i] }).accept,
          cand: { text: e.text, value: answerOf(e), intent: e.intent },
        });
      }
      return {
        q,
        groups,
        cands: top.map((c) => {
          const e = sim.entries[c.i];
          return {
            text: e.text,
            value: answerOf(e),
            intent: e.intent,
            f: features(q.text, e.text, c.s, u, ev[c.i]),
          };
        }),
      };
    });
    splits[name] = { sim, queries };
  }
  return { splits };
}

/** GPTCache's mock_data protocol: every distinct origin stored, each paraphrase asked. */
export function mockDomain(root, vec) {
  const mock = loadMock(root);
  const origins = [...new Set(mock.map((m) => m.origin))];
  const ov = origins.map(vec);
  const queries = mock.map((m, idx) => {
    const u = vec(m.similar);
    const top = ov
      .map((v, i) => ({ i, s: dot(u, v) }))
      .sort((a, b) => b.s - a.s)
      .slice(0, 8);
    return {
      idx,
      q: m.similar,
      own: origins.indexOf(m.origin),
      cands: top.map((c) => ({ i: c.i, text: origins[c.i], value: origins[c.i], f: features(m.similar, origins[c.i], c.s, u, ov[c.i]) })),
    };
  });
  const HALF = Math.ceil(mock.length / 2);
  return {
    name: 'mock',
    origins: origins.length,
    evaluate(setting, split) {
      let right = 0,
        wrong = 0,
        n = 0;
      for (const x of queries) {
        if (split === 'tune' ? x.idx >= HALF : split === 'held-out' ? x.idx < HALF : false) continue;
        n++;
        const hit = storeLookup(setting, x.q, x.cands);
        if (!hit) continue;
        if (hit.i === x.own) right++;
        else wrong++;
      }
      return { recall: pct(right, n), falseHits: pct(wrong, right + wrong), queries: n, right, wrong };
    },
  };
}

/**
 * Traffic without repeats: real Arena-Hard prompts, every one a different question (v0.1 holds two
 * per topic cluster: related, not the same). Every prompt of a split is stored; each is asked with
 * the others as the only candidates, so any hit serves another question's answer: false hits = % of
 * queries hit (budget 1%, as QQP's non-duplicates); there is no recall. Only prompts the layer
 * matches at all (≤ 1,000 characters, its default maxTextLength). Tune: v0.1; held-out: v2.0.
 */
export function arenaDomain(arena, vec) {
  const MAX_TEXT = 1_000;
  const build = (rows) => {
    const texts = [...new Set(rows.map((r) => r.prompt).filter((t) => t.length <= MAX_TEXT))];
    const vs = texts.map(vec);
    return texts.map((q, qi) => {
      const u = vs[qi];
      const top = vs
        .map((v, i) => ({ i, s: i === qi ? -2 : dot(u, v) }))
        .sort((a, b) => b.s - a.s)
        .slice(0, 8);
      return { q, cands: top.map((c) => ({ text: texts[c.i], value: `answer ${c.i}`, f: features(q, texts[c.i], c.s, u, vs[c.i]) })) };
    });
  };
  const splits = { tune: build(arena.v01), 'held-out': build(arena.v2) };
  return {
    name: 'arena',
    prompts: { tune: splits.tune.length, 'held-out': splits['held-out'].length },
    /** Prompts of each split the embedder cannot represent (never matched, as in the layer). */
    get unrepresentable() {
      const n = (xs) => xs.filter((x) => !representable(x.q)).length;
      return { tune: n(splits.tune), 'held-out': n(splits['held-out']) };
    },
    evaluate(setting, split) {
      let hit = 0;
      const queries = splits[split];
      for (const x of queries) if (storeLookup(setting, x.q, x.cands)) hit++;
      return { recall: null, falseHits: pct(hit, queries.length), queries: queries.length, falseHitCount: hit };
    },
  };
}

/** The project's look-alike set: pairs (store a, ask b); per category. */
export function lookalikeDomain(looks, vec) {
  // Splits alternate within each category (in file order), so both halves hold every kind of
  // look-alike: tune = 1st, 3rd, 5th… pair of a category; held-out = 2nd, 4th, 6th…
  const seen = {};
  const rows = looks.map((r) => {
    const u = vec(r.b);
    const v = vec(r.a);
    const nth = (seen[r.category] = (seen[r.category] ?? 0) + 1);
    return { ...r, split: nth % 2 === 1 ? 'tune' : 'held-out', f: features(r.b, r.a, dot(u, v), u, v) };
  });
  return {
    name: 'lookalikes',
    rows,
    /**
     * Without a split, the whole set (what the report lists per category). With one, as a domain
     * settings are chosen on: false hits = % of its look-alike pairs served (budget 0), recall = %
     * of its paraphrase pairs hit (reported, not scored: 30 pairs are too few to choose by).
     */
    evaluate(setting, split) {
      const byCat = {};
      for (const r of rows) {
        if (split !== undefined && r.split !== split) continue;
        const c = (byCat[r.category] ??= { category: r.category, label: r.label, pairs: 0, hit: 0 });
        c.pairs++;
        if (pairHit(setting, r.b, r.a, r.f)) c.hit++;
      }
      const cats = Object.values(byCat);
      const looksServed = cats.filter((c) => c.label === 'lookalike').reduce((a, c) => a + c.hit, 0);
      const para = cats.find((c) => c.label === 'paraphrase');
      const lookalikes = cats.filter((c) => c.label === 'lookalike').reduce((a, c) => a + c.pairs, 0);
      return {
        falseHits: pct(looksServed, lookalikes),
        recall: pct(para?.hit ?? 0, para?.pairs ?? 0),
        lookalikesServed: looksServed,
        lookalikes,
        paraphrasesHit: para?.hit ?? 0,
        paraphrases: para?.pairs ?? 0,
        byCategory: cats,
      };
    },
  };
}

const pct = (n, d) => (d === 0 ? 0 : Math.round((10000 * n) / d) / 100);
const per100 = pct;
