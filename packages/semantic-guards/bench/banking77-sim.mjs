// The BANKING77 support-bot cache simulation: k cached utterances per intent (answer = an answer
// text written for the intent), the other split's utterances as queries, plus the utterances of
// intents left out of the cache as out-of-scope queries (any hit on them is wrong).
//
// Two splits never mix: 'dev' draws cache and queries from train.csv (for choosing settings),
// 'test' draws the cache from train.csv and the queries from test.csv (for reporting only).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadBanking77, pkgDir, rng } from './data.mjs';

export { rng };

/** A shuffled copy of `arr` (Fisher–Yates with `rnd`). */
export function shuffle(arr, rnd) {
  const a = [...arr];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

export function loadAnswers() {
  const all = JSON.parse(readFileSync(join(pkgDir, 'bench', 'data', 'banking77-answers.json'), 'utf8'));
  delete all._about;
  return all;
}

// What an assistant adds around the substance of an answer, at random.
const OPENERS = ['', '', 'Sure! ', 'Thanks for reaching out. ', 'Happy to help. ', 'Good question. ', 'I understand. '];
const CLOSERS = ['', '', ' Let me know if there is anything else I can help with.', ' I hope this helps!', ' Is there anything else you would like to know?'];

/** One answer text for an intent, as a fresh model call might word it. */
export function answerFor(answers, intent, rnd) {
  const vs = answers[intent];
  return OPENERS[Math.floor(rnd() * OPENERS.length)] + vs[Math.floor(rnd() * vs.length)] + CLOSERS[Math.floor(rnd() * CLOSERS.length)];
}

/**
 * @param {object} o
 * @param {string} o.root data dir
 * @param {'dev'|'test'} o.split
 * @param {number} o.k cached utterances per in-scope intent
 * @param {number} [o.oosIntents] intents left out of the cache (their queries are out of scope)
 * @param {number} [o.seed]
 * @param {number} [o.queriesPerIntent] dev split: train utterances per intent used as queries (default 40, like test)
 */
export function buildSim({ root, split, k, oosIntents = 10, seed = 77, queriesPerIntent = 40 }) {
  const b = loadBanking77(root);
  const answers = loadAnswers();
  const rnd = rng(seed * 7919 + (split === 'dev' ? 1 : 2) * 104729 + k);
  // The out-of-scope intents differ between dev and test, so a setting cannot learn them.
  const order = shuffle(b.intents, rng(seed + (split === 'dev' ? 11 : 23)));
  const oos = new Set(order.slice(0, oosIntents));
  const byIntent = new Map(b.intents.map((i) => [i, []]));
  for (const r of b.train) byIntent.get(r.intent).push(r.text);
  const entries = [];
  const devQueries = [];
  for (const intent of b.intents) {
    const utts = shuffle(byIntent.get(intent), rnd);
    if (!oos.has(intent)) {
      for (const text of utts.slice(0, k)) entries.push({ text, intent, answer: answerFor(answers, intent, rnd) });
    }
    if (split === 'dev') for (const text of utts.slice(Math.max(k, 20), Math.max(k, 20) + queriesPerIntent)) devQueries.push({ text, intent });
  }
  const raw = split === 'dev' ? devQueries : b.test;
  const queries = shuffle(raw, rnd).map((q) => ({ ...q, inScope: !oos.has(q.intent), fresh: answerFor(answers, q.intent, rnd) }));
  return { split, k, entries, queries, oos: [...oos], answers, intents: b.intents };
}
