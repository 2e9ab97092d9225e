import { InvalidOptionError, type GuardInput, type GuardVerdict, type SemanticGuard } from '@strata-cache/core';
import { KNOWN_NAMES } from './gazetteer.js';
import { DIRECTION_GROUPS, OPPOSITE_GROUPS, PREFIX_EXCEPTIONS, REVERSING_PREFIXES, type PoleGroup } from './lexicon.js';
import { extractMentions, isQuantityWord, type Mention } from './quantities.js';
import { analyze, contentStems, fuzzyHas, multiset, STOPWORDS, stem, withinOneEdit, type Analysis, type Token } from './text.js';

const ACCEPT: GuardVerdict = Object.freeze({ accept: true });
const reject = (reason: string): GuardVerdict => ({ accept: false, reason });
const q = (s: string) => `"${s}"`;

// ---------------------------------------------------------------------------------------------
// numbers: numbers, amounts, ordinals, units, dates

export interface NumbersGuardOptions {
  /**
   * Reject when only one text mentions a quantity ("lose weight" vs "lose 10 kg"), not just when
   * both mention different ones.
   * @default true
   */
  rejectOneSided?: boolean | undefined;
}

/** Rejects when the two texts mention different numbers, ordinals, units, months, weekdays or relative days. */
export function numbersGuard(options: NumbersGuardOptions = {}): SemanticGuard {
  const rejectOneSided = options.rejectOneSided ?? true;
  const cache = new Map<string, Mention[]>();
  const mentions = (a: Analysis) => {
    let m = cache.get(a.text);
    if (!m) {
      m = extractMentions(a.tokens);
      if (cache.size > 256) cache.clear();
      cache.set(a.text, m);
    }
    return m;
  };
  return {
    name: 'numbers',
    check({ query, candidate }: GuardInput): GuardVerdict {
      const mq = mentions(analyze(query));
      const mc = mentions(analyze(candidate));
      if (mq.length === 0 && mc.length === 0) return ACCEPT;
      const onlyQ = unmatched(mq, mc);
      const onlyC = unmatched(mc, mq);
      if (onlyQ.length === 0 && onlyC.length === 0) return ACCEPT;
      if (onlyQ.length > 0 && onlyC.length > 0) {
        return reject(`different quantities: ${onlyQ.map((m) => q(m.text)).join(', ')} vs ${onlyC.map((m) => q(m.text)).join(', ')}`);
      }
      if (!rejectOneSided) return ACCEPT;
      // One-sided: a bare unit or relative day ("how many minutes", "today") is too often just wording.
      const strongQ = onlyQ.filter((m) => !m.bare);
      const strongC = onlyC.filter((m) => !m.bare);
      if (strongQ.length === 0 && strongC.length === 0) return ACCEPT;
      const [side, extra] = strongQ.length > 0 ? ['query', strongQ] : ['candidate', strongC];
      return reject(`only the ${side} mentions ${extra.map((m) => q(m.text)).join(', ')}`);
    },
  };
}

/** Mentions of `a` with no counterpart in `b`; a lone weak "one"/"first" never counts on its own. */
function unmatched(a: readonly Mention[], b: readonly Mention[]): Mention[] {
  const left = multiset(b.map((m) => m.key));
  const out: Mention[] = [];
  for (const m of a) {
    const n = left.get(m.key) ?? 0;
    if (n > 0) left.set(m.key, n - 1);
    else if (!m.weak) out.push(m);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// negation

const NEGATORS = new Set(['not', 'no', 'never', 'none', 'nobody', 'nothing', 'nowhere', 'neither', 'nor', 'without', 'cannot', 'noone']);

/** Negations in `tokens`, each with the content words it negates (skipping "not only", "no matter", "why or why not"). */
export function negations(tokens: readonly Token[]): Array<{ cue: string; scope: string[] }> {
  const out: Array<{ cue: string; scope: string[] }> = [];
  for (let i = 0; i < tokens.length; i++) {
    const w = tokens[i]!.lower;
    if (!NEGATORS.has(w)) continue;
    const next = tokens[i + 1]?.lower;
    const prev = tokens[i - 1]?.lower;
    const prev2 = tokens[i - 2]?.lower;
    if (w === 'not' && (next === 'only' || prev === 'or' || prev === 'if' || (prev === 'why' && prev2 === 'or'))) continue;
    if (w === 'no' && (next === 'matter' || next === 'doubt' || prev === 'or' || prev === 'yes')) continue;
    if (w === 'nor' && tokens.slice(0, i).some((t) => t.lower === 'neither')) continue;
    // A negated verb of knowing ("I don't know how…", "can't remember my password", "not sure
    // why…", "no idea"): what it negates is the knowing, not what is known. Only that word is its
    // scope, so the other text flips it only by saying "know" / "remember" / "sure" itself.
    const known = askerDoesNotKnow(tokens, i);
    if (known !== undefined) {
      out.push({ cue: w, scope: [known.stem] });
      continue;
    }
    // What it negates: the next few content words ("not able to sleep" → able, sleep).
    const scope: string[] = [];
    for (let j = i + 1; j < Math.min(tokens.length, i + 5); j++) {
      const t = tokens[j]!;
      if (NEGATORS.has(t.lower)) break;
      if ((t.kind === 'word' || t.kind === 'number') && !STOPWORDS.has(t.lower)) scope.push(t.stem);
    }
    out.push({ cue: w, scope });
    if (w === 'no' && next === 'one') i++;
  }
  return out;
}

/** Verbs (and adjectives, "idea") of knowing: negated, they say what the asker does not know, not what is not so. */
const COGNITION = new Set([
  'know',
  'knew',
  'known',
  'remember',
  'recall',
  'recollect',
  'understand',
  'understood',
  'sure',
  'certain',
  'idea',
  'figure',
  'figured',
]);
/** Hedges between a negation and its verb: "not really sure", "don't quite understand", "not the slightest idea". */
const HEDGES = new Set([
  'really',
  'quite',
  'even',
  'exactly',
  'actually',
  'fully',
  'totally',
  'completely',
  'entirely',
  'too',
  'so',
  'very',
  'the',
  'slightest',
  'clear',
]);

/** Words between the asker and a negation: "I can't", "I really don't", "we still have no". */
const AUXILIARIES = new Set([
  'do',
  'did',
  'can',
  'could',
  'will',
  'would',
  'am',
  'are',
  'was',
  'were',
  'have',
  'had',
  'really',
  'just',
  'still',
  'honestly',
  'simply',
  'truly',
  'genuinely',
]);
const ASKER = new Set(['i', 'we', 'im', 'ive', 'id']);
/** "I don't know them": knowing someone, not something. */
const PEOPLE = new Set(['him', 'them', 'you', 'anyone', 'anybody', 'someone', 'somebody', 'each', 'people', 'nobody']);

/**
 * The verb of knowing that the negation at `at` applies to, when the asker says they do not
 * know: "I don't know how…", "we can't remember…", "Not sure why…" (no subject: the asker's).
 * Someone else's not knowing ("most people don't know about…"), a verb that ends its sentence
 * ("a girl I don't know?") and knowing a person ("I don't know them") are ordinary negations.
 */
function askerDoesNotKnow(tokens: readonly Token[], at: number): Token | undefined {
  let j = at;
  while (!tokens[j]!.sentenceStart && AUXILIARIES.has(tokens[j - 1]!.lower)) j--;
  const asker = tokens[j]!.sentenceStart || ASKER.has(tokens[j - 1]!.lower);
  if (!asker) return undefined;
  for (let k = at + 1; k < Math.min(tokens.length, at + 4); k++) {
    const t = tokens[k]!;
    if (t.sentenceStart) return undefined;
    if (COGNITION.has(t.lower)) {
      // Something must follow in its sentence — what the asker does not know — and not a person.
      const next = tokens[k + 1];
      return next !== undefined && !next.sentenceStart && !PEOPLE.has(next.lower) ? t : undefined;
    }
    if (!HEDGES.has(t.lower)) return undefined;
  }
  return undefined;
}

/** Number of negations in `tokens`. */
export function negationCount(tokens: readonly Token[]): number {
  return negations(tokens).length;
}

// ---------------------------------------------------------------------------------------------
// symbols: emoji, pictographs and operators

/** Emoji and pictographs (™, ©, ® and other letter-like signs left out: they decorate a name). */
const PICTOGRAPH = /\p{Extended_Pictographic}/gu;
/** Runs of operator characters: `>`, `-=`, `!=`, `===`, `??`, `&&`, `++`, `@`, `%`, … */
const OPERATOR_RUN = /[=<>!+\-*/%^&|~?:@#\\]+/g;
const ALL_ASCII = /^[\x20-\x7e\t\n\r]*$/;

/**
 * What an encoder does not see: emoji and pictographs, and runs of operator characters. Sentence
 * punctuation is left out: a lone `?`, `!` or `:` before a space or the end, a lone hyphen or dash,
 * a lone slash ("and/or", "km/h").
 */
function unseenSymbols(text: string): Set<string> {
  const out = new Set<string>();
  if (!ALL_ASCII.test(text)) for (const m of text.matchAll(PICTOGRAPH)) if (m[0].codePointAt(0)! >= 0x2190) out.add(m[0]);
  for (const m of text.matchAll(OPERATOR_RUN)) {
    let run = m[0];
    let at = m.index;
    // "C#", "F#": a sign right after a letter is part of the name.
    if (run[0] === '#' && at > 0 && /[A-Za-z]/.test(text[at - 1]!)) {
      out.add(text[at - 1]! + '#');
      run = run.slice(1);
      at++;
      if (run === '') continue;
    }
    const next = text[at + run.length];
    const prev = at > 0 ? text[at - 1]! : '';
    const rest = text.slice(at + run.length);
    const ends = next === undefined || /[\s"'),.\]]/.test(next);
    // Sentence punctuation ("?", "!", "??", "?!") ending a run ("C++?" → "++"), or the whole run
    // when it is not asked about: after a word ("CSV??", "help?."), at the end ("children ?"), or
    // before a new sentence ("wrong ? I …", "correct?I"). Standing alone before a lower-case word
    // ("what does ? mean", "the ?? operator") it is what the question is about.
    if (ends || /^[A-Z]/.test(rest)) {
      const body = run.replace(/[?!]+$/, '');
      if (body !== run) {
        const alone = prev === '' || /[\s("']/.test(prev);
        if (body !== '') run = body;
        else if (!alone || /^\s*$/.test(rest) || /^\s*[A-Z]/.test(rest)) continue;
      }
    }
    // Prose, not operators: dashes ("yet--how"), a lone slash ("and/or"), colon ("Note:", ":(")
    // or ampersand ("Q&A", "card & PIN"), a percent sign after a number ("5%": the numbers guard
    // compares those), a number sign before one ("task #820"), a stray key at either end ("…card>").
    if (/^-+$/.test(run) || run === '/' || run === ':' || run === '&') continue;
    if (run === '%' && /\d/.test(prev)) continue;
    if (run === '#' && (ends || /\d/.test(next ?? ''))) continue;
    if (run.length === 1 && (at === 0 || /^\s*$/.test(rest)) && /[|<>]/.test(run)) continue;
    out.add(run);
  }
  return out;
}

/**
 * Rejects when the texts hold different emoji, pictographs or operators ("What does 🙃 mean?" /
 * "What does 🫠 mean?", "Is x > 5?" / "Is x < 5?", "a += b" / "a -= b", "== vs ===" / "= vs =="). An
 * encoder often has no word for them (USE-lite reads every emoji as the same unknown token, and
 * scores "Is x > 5 in this loop?" / "Is x < 5 in this loop?" 0.98), so the embeddings cannot tell
 * such questions apart. The same symbols on both sides, in any order or number, pass; so does
 * ordinary punctuation.
 */
export function symbolsGuard(): SemanticGuard {
  return {
    name: 'symbols',
    check({ query, candidate }: GuardInput): GuardVerdict {
      const a = unseenSymbols(query);
      const b = unseenSymbols(candidate);
      if (a.size === b.size && [...a].every((x) => b.has(x))) return ACCEPT;
      const show = (set: Set<string>) => (set.size === 0 ? 'none' : [...set].join(' '));
      return reject(`different symbols: ${show(a)} vs ${show(b)}`);
    },
  };
}

/**
 * Rejects when one text is negated and the other is not at all ("does it" / "doesn't it", "with" / "without").
 * A negation counts when what it negates also appears in the other text: that is a flipped statement.
 * A negated clause about something the other text never mentions ("… without investment") is added
 * detail, left to the other guards.
 */
export function negationGuard(): SemanticGuard {
  return {
    name: 'negation',
    check({ query, candidate }: GuardInput): GuardVerdict {
      const aq = analyze(query);
      const ac = analyze(candidate);
      const negQ = negations(aq.tokens);
      const negC = negations(ac.tokens);
      // A negation whose scope the other text also talks about (or that has none) is a flip of it.
      const flips = (negs: ReturnType<typeof negations>, other: Analysis) =>
        negs.filter((n) => n.scope.length === 0 || n.scope.some((w) => other.stems.has(w)));
      // Both negated (even differently worded: "does not have" / "doesn't exist") is not a flip.
      const nq = negC.length === 0 ? flips(negQ, ac) : [];
      const nc = negQ.length === 0 ? flips(negC, aq) : [];
      if (nq.length > 0) return reject(`the query is negated ("${nq[0]!.cue}") and the candidate is not`);
      if (nc.length > 0) return reject(`the candidate is negated ("${nc[0]!.cue}") and the query is not`);
      return ACCEPT;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// direction / opposite actions: pole groups + reversing prefixes

export interface LexiconGuardOptions {
  /**
   * More groups of opposite words for your domain, e.g. `[[['long'], ['short']]]` (a group is a list
   * of poles; a pole is a list of words with the same meaning). Added to the built-in groups.
   * @default []
   */
  extraGroups?: readonly PoleGroup[] | undefined;
}

interface PoleHit {
  readonly group: number;
  readonly pole: number;
  readonly word: string;
}

function poleIndex(groups: readonly PoleGroup[]): Map<string, Array<{ group: number; pole: number }>> {
  const index = new Map<string, Array<{ group: number; pole: number }>>();
  groups.forEach((poles, g) =>
    poles.forEach((words, p) => {
      for (const w of words) {
        const s = stem(w.toLowerCase());
        const list = index.get(s) ?? [];
        if (!list.some((x) => x.group === g && x.pole === p)) list.push({ group: g, pole: p });
        index.set(s, list);
      }
    }),
  );
  return index;
}

function poleHits(a: Analysis, index: Map<string, Array<{ group: number; pole: number }>>): PoleHit[] {
  const out: PoleHit[] = [];
  for (const t of a.tokens) for (const x of index.get(t.stem) ?? []) out.push({ ...x, word: t.raw });
  return out;
}

/**
 * A pole one side uses and the other does not, while the other uses a different pole of the same
 * group: "import" / "export". The first side may use the other pole too, in another form only —
 * "restore an archived project" / "archive a project" asks for the reverse of what the other side
 * does, while "before and after the war" / "before the war" only adds to it.
 */
function poleSubstitution(hq: readonly PoleHit[], hc: readonly PoleHit[]): [PoleHit, PoleHit] | undefined {
  return oneWay(hq, hc) ?? flip(oneWay(hc, hq));
}

function oneWay(ha: readonly PoleHit[], hb: readonly PoleHit[]): [PoleHit, PoleHit] | undefined {
  const has = (hits: readonly PoleHit[], g: number, p: number) => hits.some((h) => h.group === g && h.pole === p);
  for (const a of ha) {
    if (has(hb, a.group, a.pole)) continue;
    for (const b of hb) {
      if (b.group !== a.group || b.pole === a.pole) continue;
      const form = b.word.toLowerCase();
      if (!ha.some((h) => h.group === b.group && h.pole === b.pole && h.word.toLowerCase() === form)) return [a, b];
    }
  }
  return undefined;
}

const flip = (x: [PoleHit, PoleHit] | undefined): [PoleHit, PoleHit] | undefined => (x ? [x[1], x[0]] : undefined);

function validateGroups(groups: unknown, option: string): readonly PoleGroup[] {
  if (groups === undefined) return [];
  const ok =
    Array.isArray(groups) &&
    groups.every(
      (g) => Array.isArray(g) && g.length >= 2 && g.every((p) => Array.isArray(p) && p.length > 0 && p.every((w) => typeof w === 'string' && w.trim() !== '')),
    );
  if (!ok) {
    throw new InvalidOptionError(
      `@strata-cache/semantic-guards: ${option} must be an array of groups, each an array of ≥2 poles, each a non-empty array of words`,
      { field: option },
    );
  }
  return groups as PoleGroup[];
}

/** Rejects "import"/"export", "more than"/"less than", "since"/"until", "buy"/"sell" and the like. */
export function directionGuard(options: LexiconGuardOptions = {}): SemanticGuard {
  const index = poleIndex([...DIRECTION_GROUPS, ...validateGroups(options.extraGroups, 'direction.extraGroups')]);
  return {
    name: 'direction',
    check({ query, candidate }: GuardInput): GuardVerdict {
      const sub = poleSubstitution(poleHits(analyze(query), index), poleHits(analyze(candidate), index));
      return sub ? reject(`opposite direction: ${q(sub[0].word)} vs ${q(sub[1].word)}`) : ACCEPT;
    },
  };
}

export interface OppositesGuardOptions extends LexiconGuardOptions {
  /**
   * Also treat reversing prefixes as opposites: "lock"/"unlock", "connect"/"disconnect", "install"/"reinstall",
   * "possible"/"impossible" — for any word, not only listed ones.
   * @default true
   */
  prefixes?: boolean | undefined;
}

/** Rejects opposite actions and states ("start"/"stop", "accept"/"decline", "lock"/"unlock"). */
export function oppositesGuard(options: OppositesGuardOptions = {}): SemanticGuard {
  const index = poleIndex([...OPPOSITE_GROUPS, ...validateGroups(options.extraGroups, 'opposites.extraGroups')]);
  const prefixes = options.prefixes ?? true;
  return {
    name: 'opposites',
    check({ query, candidate }: GuardInput): GuardVerdict {
      const aq = analyze(query);
      const ac = analyze(candidate);
      const sub = poleSubstitution(poleHits(aq, index), poleHits(ac, index));
      if (sub) return reject(`opposite meaning: ${q(sub[0].word)} vs ${q(sub[1].word)}`);
      if (prefixes) {
        const p = prefixPair(aq, ac) ?? prefixPair(ac, aq);
        if (p) return reject(`opposite meaning: ${q(p[0])} vs ${q(p[1])}`);
      }
      return ACCEPT;
    },
  };
}

/** A word of `a` (absent from `b`) whose prefixed form appears only in `b`: lock → unlock. */
function prefixPair(a: Analysis, b: Analysis): [string, string] | undefined {
  // Index b's prefixed words by what remains after the prefix: one pass over b, one lookup per word of a.
  const roots = new Map<string, string>();
  for (const u of b.tokens) {
    if (u.kind !== 'word' || a.stems.has(u.stem) || PREFIX_EXCEPTIONS.has(u.lower) || PREFIX_EXCEPTIONS.has(u.stem)) continue;
    for (const p of REVERSING_PREFIXES) {
      if (!u.lower.startsWith(p)) continue;
      const rest = u.lower.slice(p.length);
      if (rest.length < (p.length <= 2 ? 4 : 3)) continue;
      if (!roots.has(rest)) roots.set(rest, u.raw);
      const rs = stem(rest);
      if (!roots.has(rs)) roots.set(rs, u.raw);
    }
  }
  if (roots.size === 0) return undefined;
  for (const t of a.tokens) {
    if (t.kind !== 'word' || t.lower.length < 3 || b.stems.has(t.stem)) continue;
    const hit = roots.get(t.stem) ?? roots.get(t.lower);
    if (hit !== undefined) return [t.raw, hit];
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// argument order

// Words that make a relation symmetric: swapping around them keeps the question.
const SYMMETRIC = new Set(['and', 'or', 'vs', 'versus', 'v', 'between', 'with', 'both', 'either', 'neither', 'nor', 'plus', 'also', 'as', 'same', 'equal']);
const SYMMETRIC_CUES = new Set([
  'vs',
  'versus',
  'between',
  'difference',
  'differences',
  'compare',
  'compared',
  'comparison',
  'similarity',
  'similarities',
  'similar',
  'equal',
  'same',
  'better',
]);

/**
 * Rejects swapped arguments: "Does A beat B?" / "Does B beat A?", "convert USD to EUR" / "EUR to USD".
 * Two content words that appear once in each text, in opposite orders, with the same relation word
 * between them in both texts. Symmetric relations ("A and B", "A vs B", "difference between") pass.
 */
export function argumentOrderGuard(): SemanticGuard {
  return {
    name: 'argument-order',
    check({ query, candidate }: GuardInput): GuardVerdict {
      const aq = analyze(query);
      const ac = analyze(candidate);
      const pq = singlePositions(aq.tokens);
      const pc = singlePositions(ac.tokens);
      const cueQ = aq.tokens.some((t) => SYMMETRIC_CUES.has(t.lower));
      const cueC = ac.tokens.some((t) => SYMMETRIC_CUES.has(t.lower));
      if (cueQ && cueC) return ACCEPT;
      // A swap keeps the words and changes their order; a rewrite changes the words.
      if (contentJaccard(aq, ac) < 0.75) return ACCEPT;
      const shared = [...pq.keys()].filter((k) => pc.has(k));
      const lowerQ = (k: string) => aq.tokens[pq.get(k)!]!.lower;
      const lowerC = (k: string) => ac.tokens[pc.get(k)!]!.lower;
      const args = shared.filter((k) => !STOPWORDS.has(lowerQ(k)) && !SYMMETRIC.has(lowerQ(k)));
      // Same order, swapped roles: "flight to Tokyo from London" / "flight from Tokyo to London".
      for (const x of args) {
        const rq = roleMarker(aq.tokens, pq.get(x)!);
        const rc = roleMarker(ac.tokens, pc.get(x)!);
        if (rq && rc && rq !== rc && ac.lowers.has(rq) && aq.lowers.has(rc)) {
          return reject(`swapped roles: ${q(rq + ' ' + aq.tokens[pq.get(x)!]!.raw)} vs ${q(rc + ' ' + ac.tokens[pc.get(x)!]!.raw)}`);
        }
      }
      for (let i = 0; i < args.length; i++) {
        for (let j = i + 1; j < args.length; j++) {
          const x = args[i]!;
          const y = args[j]!;
          const qx = pq.get(x)!;
          const qy = pq.get(y)!;
          const cx = pc.get(x)!;
          const cy = pc.get(y)!;
          if (qx < qy === cx < cy) continue;
          const [qlo, qhi] = qx < qy ? [qx, qy] : [qy, qx];
          const [clo, chi] = cx < cy ? [cx, cy] : [cy, cx];
          const between = (p: number, lo: number, hi: number) => p > lo && p < hi;
          if (aq.tokens.slice(qlo + 1, qhi).some((t) => SYMMETRIC.has(t.lower))) continue;
          if (ac.tokens.slice(clo + 1, chi).some((t) => SYMMETRIC.has(t.lower))) continue;
          for (const r of shared) {
            if (r === x || r === y) continue;
            const w = lowerQ(r);
            // A copula between the two is a relation too: "students are athletes" / "athletes are students".
            if (SYMMETRIC.has(w) || (STOPWORDS.has(w) && !PIVOT_PREPOSITIONS.has(w) && !BE.has(w))) continue;
            // A pivot that changes form or voice ("load" / "can be loaded", "covers" / "covered") marks a
            // restructured sentence, where word order says nothing about roles.
            if (w !== lowerC(r)) continue;
            if (BE.has(aq.tokens[pq.get(r)! - 1]?.lower ?? '') !== BE.has(ac.tokens[pc.get(r)! - 1]?.lower ?? '')) continue;
            // A copula only relates the words right beside it ("students are athletes"), not a
            // reordered clause ("cars are the best in winter" / "in winter, which are the best cars").
            if (BE.has(w) && !(flanks(aq.tokens, pq.get(r)!, qlo, qhi) && flanks(ac.tokens, pc.get(r)!, clo, chi))) continue;
            if (between(pq.get(r)!, qlo, qhi) && between(pc.get(r)!, clo, chi)) {
              const word = aq.tokens[pq.get(r)!]!.raw;
              return reject(
                `swapped arguments around ${q(word)}: ${q(aq.tokens[qlo]!.raw)} … ${q(aq.tokens[qhi]!.raw)} vs ${q(ac.tokens[clo]!.raw)} … ${q(ac.tokens[chi]!.raw)}`,
              );
            }
          }
        }
      }
      return ACCEPT;
    },
  };
}

// Function words that can carry a relation between two arguments ("A to B", "A of B", "A over B").
const PIVOT_PREPOSITIONS = new Set([
  'to',
  'from',
  'than',
  'into',
  'onto',
  'over',
  'under',
  'against',
  'for',
  'of',
  'in',
  'on',
  'after',
  'before',
  'by',
  'at',
  'own',
  'but',
  'not',
  'instead',
  'rather',
]);
const BE = new Set(['be', 'is', 'are', 'was', 'were', 'been', 'being']);

/** The pivot at `p` sits right between `lo` and `hi` (determiners after it allowed): "A are (the) B". */
function flanks(tokens: readonly Token[], p: number, lo: number, hi: number): boolean {
  if (p - 1 !== lo) return false;
  let j = p + 1;
  while (j < hi && DETERMINERS.has(tokens[j]!.lower)) j++;
  return j === hi;
}

function contentJaccard(a: Analysis, b: Analysis): number {
  const sa = contentStems(a);
  const sb = contentStems(b);
  let shared = 0;
  for (const x of sa) if (sb.has(x)) shared++;
  const union = sa.size + sb.size - shared;
  return union === 0 ? 1 : shared / union;
}

const ROLE_MARKERS = new Set(['to', 'from', 'into', 'onto', 'than', 'towards', 'toward', 'via']);
const DETERMINERS = new Set(['the', 'a', 'an', 'my', 'your', 'our', 'their', 'his', 'her', 'its', 'this', 'that']);

/** The directional preposition governing the word at `i` ("to" in "to the USA"), if any. */
function roleMarker(tokens: readonly Token[], i: number): string | undefined {
  let j = i - 1;
  while (j >= 0 && DETERMINERS.has(tokens[j]!.lower)) j--;
  const w = tokens[j]?.lower;
  return w !== undefined && ROLE_MARKERS.has(w) ? w : undefined;
}

/** Stem → position, for stems that occur exactly once. */
function singlePositions(tokens: readonly Token[]): Map<string, number> {
  const pos = new Map<string, number>();
  const dup = new Set<string>();
  for (const t of tokens) {
    if (pos.has(t.stem)) dup.add(t.stem);
    else pos.set(t.stem, t.index);
  }
  for (const d of dup) pos.delete(d);
  return pos;
}

// ---------------------------------------------------------------------------------------------
// entities

export interface EntitiesGuardOptions {
  /**
   * Also reject when only one text names an entity ("learn programming" vs "learn programming in Rust").
   * Off by default: added detail is often a harmless rewording; a swapped name is not.
   * @default false
   */
  rejectAdded?: boolean | undefined;
  /**
   * A swap changes a few names; when more than this many differ on each side the pair is treated as a
   * rewrite (lists of capitalised headings, title-cased text) and left to the embedding.
   * @default 3
   */
  maxSwapped?: number | undefined;
}

// Function words that are also names when capitalised mid-sentence ("learn Go", "Will Smith").
const NAME_LIKE_STOPWORDS = new Set(['go', 'will', 'may']);

/** Words that look like names: capitalised mid-sentence, ALL-CAPS, mixed case, letters+digits, or well-known names. */
export function entityTokens(a: Analysis): Token[] {
  const words = a.tokens.filter((t) => t.kind === 'word');
  // In Title Case Text every word is capitalised, so capitals say nothing there.
  // Title Case shows in function words too ("How To Learn Python"); capitalised names alone do not make it.
  const mid = words.filter((t) => !t.sentenceStart);
  const capitalised = mid.filter((t) => /^[A-Z]/.test(t.raw)).length;
  const capitalisedFunctionWord = mid.some((t) => STOPWORDS.has(t.lower) && t.raw !== 'I' && /^[A-Z][a-z]/.test(t.raw));
  const titleCase = mid.length >= 3 && capitalised / mid.length > 0.6 && capitalisedFunctionWord;
  return words.filter((t) => {
    const w = t.raw;
    // A function word only counts when written as a name mid-sentence ("learn Go"); never "I".
    if (STOPWORDS.has(t.lower) && !KNOWN_NAMES.has(t.lower) && !(NAME_LIKE_STOPWORDS.has(t.lower) && !titleCase && !t.sentenceStart && /^[A-Z][a-z]/.test(w)))
      return false;
    if (isQuantityWord(t.lower)) return false; // the numbers guard owns units, months, weekdays
    if (KNOWN_NAMES.has(t.lower)) return true;
    if (/\d/.test(w) && /[A-Za-z]/.test(w)) return true; // iPhone7, mp3, GPT-4
    if (w.length >= 2 && /^[A-Z0-9+#]+$/.test(w) && /[A-Z]{2}/.test(w)) return true; // USA, AWS
    if (/^[a-z]+[A-Z]/.test(w) || /^[A-Z][a-z]+[A-Z]/.test(w)) return true; // iPhone, JavaScript
    if (/[+#]$/.test(w)) return true; // C++, C#
    return !titleCase && !t.sentenceStart && /^[A-Z][a-z]/.test(w);
  });
}

/** Is entity token `e` (from one text) present in the other text (same stem, a typo away, or joined/split)? */
function entityPresent(e: Token, own: Analysis, other: Analysis): boolean {
  if (other.stems.has(e.stem) || other.lowers.has(e.lower)) return true;
  // Written as one word on one side and two on the other: "TimesNow" / "Times Now".
  const prev = own.tokens[e.index - 1];
  const next = own.tokens[e.index + 1];
  if ((next && other.lowers.has(e.lower + next.lower)) || (prev && other.lowers.has(prev.lower + e.lower))) return true;
  const toks = other.tokens;
  const eHumps = humps(e.raw);
  for (let i = 0; i < toks.length; i++) {
    const t = toks[i]!;
    if (e.lower.length >= 5 && t.lower.length >= 5 && withinOneEdit(t.lower, e.lower)) return true;
    if (toks[i + 1] && t.lower + toks[i + 1]!.lower === e.lower) return true;
    // "Python" / "Pythonic", "Iterable" / "IterableDataset", "JavaScript" / "JS".
    if (e.lower.length >= 4 && DERIVED.some((suffix) => t.lower === e.lower + suffix || e.lower === t.lower + suffix)) return true;
    if (humps(t.raw).some((h) => h === e.lower) || eHumps.some((h) => h === t.lower)) return true;
    const initials = (raw: string) => (raw.match(/[A-Z]?[a-z]+|[A-Z]+(?![a-z])/g) ?? []).map((h) => h[0]!.toUpperCase()).join('');
    if (eHumps.length >= 2 && t.raw.length >= 2 && t.raw === initials(e.raw)) return true;
  }
  return false;
}

const DERIVED = ['ic', 'ian', 'ish', 'ese', 'ist', 'ism', 'ists', 'isms', 'ians', 'an', 'ans', 'i', 'is'];

/** Parts of a CamelCase word: "IterableDataset" → iterable, dataset (empty for plain words). */
function humps(raw: string): string[] {
  const parts = raw.match(/[A-Z]?[a-z]+|[A-Z]+(?![a-z])/g) ?? [];
  return parts.length >= 2 ? parts.map((x) => x.toLowerCase()).filter((x) => x.length >= 3) : [];
}

const ACRONYM = /^[A-Z]{2,6}$/;
const LINKERS = new Set(['of', 'the', 'and', 'for', '&']);

/**
 * Token indices of `a` spelled out by an acronym of `b` (and the acronyms of `a` spelled out in `b`):
 * "United States" / "US", "New York City" / "NYC".
 */
function acronymCovered(a: Analysis, b: Analysis): Set<number> {
  const covered = new Set<number>();
  const caps = a.tokens.filter((t) => /^[A-Z]/.test(t.raw) && !LINKERS.has(t.lower));
  for (const x of b.tokens) {
    if (!ACRONYM.test(x.raw)) continue;
    for (let i = 0; i + x.raw.length <= caps.length; i++) {
      const run = caps.slice(i, i + x.raw.length);
      if (run.map((t) => t.raw[0]).join('') !== x.raw) continue;
      // The run must be consecutive apart from linking words.
      const span = a.tokens.slice(run[0]!.index, run[run.length - 1]!.index + 1);
      if (span.every((t) => run.includes(t) || LINKERS.has(t.lower))) run.forEach((t) => covered.add(t.index));
    }
  }
  for (const t of a.tokens) {
    if (!ACRONYM.test(t.raw)) continue;
    const capsB = b.tokens
      .filter((u) => /^[A-Z]/.test(u.raw) && !LINKERS.has(u.lower))
      .map((u) => u.raw[0])
      .join('');
    if (capsB.includes(t.raw)) covered.add(t.index);
  }
  return covered;
}

/**
 * A name of `own` (absent from `other`) whose slot holds a different word in `other`: the same
 * word before and after it on both sides, a content word in between ("the Team plan" / "the pro
 * plan"). Returns [name, the other word].
 */
function slotSwap(names: readonly Token[], own: Analysis, other: Analysis): [string, string] | undefined {
  const ot = other.tokens;
  // A name of the other side in the slot is the same name written another way ("JavaScript" / "JS"),
  // or it would have been a swap of two names already.
  const otherNames = new Set(entityTokens(other).map((t) => t.index));
  for (const e of names) {
    const prev = own.tokens[e.index - 1];
    const next = own.tokens[e.index + 1];
    if (!prev || !next || prev.kind !== 'word' || next.kind !== 'word') continue;
    for (let i = 1; i + 1 < ot.length; i++) {
      const t = ot[i]!;
      if (t.kind !== 'word' || STOPWORDS.has(t.lower) || own.stems.has(t.stem) || t.stem === e.stem || otherNames.has(t.index)) continue;
      if (ot[i - 1]!.lower === prev.lower && ot[i + 1]!.lower === next.lower) return [e.raw, t.raw];
    }
  }
  return undefined;
}

/** Rejects a swapped name or entity: Springfield, Illinois / Springfield, Missouri; Rust / Go; Visa / Mastercard. */
export function entitiesGuard(options: EntitiesGuardOptions = {}): SemanticGuard {
  const rejectAdded = options.rejectAdded ?? false;
  const maxSwap = options.maxSwapped ?? 3;
  return {
    name: 'entities',
    check({ query, candidate }: GuardInput): GuardVerdict {
      const aq = analyze(query);
      const ac = analyze(candidate);
      const coveredQ = acronymCovered(aq, ac);
      const coveredC = acronymCovered(ac, aq);
      const onlyQ = entityTokens(aq).filter((e) => !coveredQ.has(e.index) && !entityPresent(e, aq, ac));
      const onlyC = entityTokens(ac).filter((e) => !coveredC.has(e.index) && !entityPresent(e, ac, aq));
      // A swap changes a name or two; many differing capitalised words is a rewrite, not a swap.
      if (onlyQ.length > 0 && onlyC.length > 0 && onlyQ.length <= maxSwap && onlyC.length <= maxSwap) {
        return reject(`different names: ${onlyQ.map((t) => q(t.raw)).join(', ')} vs ${onlyC.map((t) => q(t.raw)).join(', ')}`);
      }
      // A name on one side written in its slot as another word on the other ("the Team plan" /
      // "the pro plan"): a swap too, whatever the other word's capitals say.
      const slot = onlyQ.length > 0 ? slotSwap(onlyQ, aq, ac) : onlyC.length > 0 ? slotSwap(onlyC, ac, aq) : undefined;
      if (slot && onlyQ.length + onlyC.length <= maxSwap) {
        const [e, w] = onlyQ.length > 0 ? slot : [slot[1], slot[0]];
        return reject(`different names: ${q(e)} vs ${q(w)}`);
      }
      if (rejectAdded && onlyQ.length + onlyC.length > 0) {
        const [side, extra] = onlyQ.length > 0 ? ['query', onlyQ] : ['candidate', onlyC];
        return reject(`only the ${side} names ${extra.map((t) => q(t.raw)).join(', ')}`);
      }
      return ACCEPT;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// content overlap: an optional second opinion

export interface ContentOverlapOptions {
  /**
   * Reject when both texts have at least this many content words the other lacks (a substituted topic).
   * @default 2
   */
  maxSubstitutions?: number | undefined;
  /**
   * Reject when the Jaccard overlap of content words is below this (0 disables).
   * @default 0.2
   */
  minJaccard?: number | undefined;
  /**
   * Above this similarity the second opinion is skipped: the embedding is sure enough on its own.
   * @default 1
   */
  trustAbove?: number | undefined;
}

/** Rejects when the pair shares too few content words (different topic words in the same frame). */
export function contentOverlapGuard(options: ContentOverlapOptions = {}): SemanticGuard {
  const maxSubstitutions = options.maxSubstitutions ?? 2;
  const minJaccard = options.minJaccard ?? 0.2;
  const trustAbove = options.trustAbove ?? 1;
  return {
    name: 'content-overlap',
    check({ query, candidate, similarity }: GuardInput): GuardVerdict {
      if (similarity >= trustAbove) return ACCEPT;
      const sq = contentStems(analyze(query));
      const sc = contentStems(analyze(candidate));
      if (sq.size === 0 || sc.size === 0) return ACCEPT;
      const onlyQ = [...sq].filter((s) => !fuzzyHas(sc, s));
      const onlyC = [...sc].filter((s) => !fuzzyHas(sq, s));
      const shared = sq.size - onlyQ.length;
      const jaccard = shared / (sq.size + onlyC.length);
      if (maxSubstitutions > 0 && onlyQ.length >= maxSubstitutions && onlyC.length >= maxSubstitutions) {
        return reject(`different content words: ${onlyQ.slice(0, 4).map(q).join(', ')} vs ${onlyC.slice(0, 4).map(q).join(', ')}`);
      }
      if (jaccard < minJaccard) return reject(`content-word overlap ${jaccard.toFixed(2)} is below ${minJaccard}`);
      return ACCEPT;
    },
  };
}
