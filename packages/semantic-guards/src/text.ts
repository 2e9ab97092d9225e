/**
 * Tokenising and light normalisation shared by every guard. Deliberately small: guards run on
 * a handful of candidates per lookup, so clarity beats speed here, but nothing is worse than O(n²)
 * in the number of tokens.
 */

export interface Token {
  /** As written (hyphens removed inside words). */
  readonly raw: string;
  /** Lower-cased. */
  readonly lower: string;
  /** Crude stem of `lower`, used for matching across the pair. */
  readonly stem: string;
  /** Position in the token list. */
  readonly index: number;
  /** First token of a sentence (its capital letter says nothing). */
  readonly sentenceStart: boolean;
  readonly kind: 'word' | 'number' | 'symbol';
}

const CONTRACTIONS: Record<string, readonly string[]> = {
  "can't": ['can', 'not'],
  cannot: ['can', 'not'],
  "won't": ['will', 'not'],
  "shan't": ['shall', 'not'],
  "ain't": ['is', 'not'],
  "n't": ['not'],
};

// Words, numbers (with separators, decimals and attached suffixes like 3rd, 10k, 5km), currency/percent symbols.
const TOKEN_RE =
  /\d{1,3}(?:,\d{3})+(?:\.\d+)?[A-Za-z°]*|\d+(?:\.\d+)*[A-Za-z°]*|[A-Za-z][A-Za-z0-9]*(?:['’][A-Za-z]+)?(?:[-+#][A-Za-z0-9+#]+)*[+#]*|[$€£¥%]|[.?!;]/g;

const NUMBER_PARTS =
  /^(?:\d.*|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred|thousand|half|third|quarter|first|second|fourth|fifth|year|years|day|days|month|months|week|weeks)$/i;

/** Splits into tokens; expands negative contractions so `doesn't` → `does not`. */
export function tokenize(text: string): Token[] {
  const out: Token[] = [];
  let sentenceStart = true;
  // "No, it doesn't exist." — an answer particle before a comma negates nothing by itself.
  const s = text
    .normalize('NFKC')
    .replace(/[’‘]/g, "'")
    .replace(/(^|[.!?]\s+)(?:no|yes)\s*,/gi, '$1');
  for (const m of s.matchAll(TOKEN_RE)) {
    let w = m[0];
    if (w === '.' || w === '?' || w === '!' || w === ';') {
      sentenceStart = true;
      continue;
    }
    const pieces: string[] = [];
    const lw = w.toLowerCase();
    if (Object.hasOwn(CONTRACTIONS, lw)) pieces.push(...CONTRACTIONS[lw]!);
    else if (lw.endsWith("n't")) {
      pieces.push(w.slice(0, -3), 'not');
    } else {
      // Drop possessive / clitic endings: "Paris's" → "Paris", "I'm" → "I".
      const apo = w.indexOf("'");
      if (apo > 0) w = w.slice(0, apo);
      // "e-mail" → "email", but "one-third" / "18-year-old" → separate words; "c++" / "c#" stay.
      if (/[A-Za-z0-9]-[A-Za-z0-9]/.test(w)) {
        const parts = w.split('-').filter(Boolean);
        if (parts.some((x) => NUMBER_PARTS.test(x))) pieces.push(...parts);
        else pieces.push(parts.join(''));
      } else pieces.push(w);
    }
    for (const p of pieces) {
      if (!p) continue;
      const lower = p.toLowerCase();
      const kind: Token['kind'] = /^\d/.test(p) ? 'number' : /^[$€£¥%]$/.test(p) ? 'symbol' : 'word';
      // Acronyms are not inflected: "HTTPS" is not the plural of "HTTP".
      const acronym = /^[A-Z][A-Z0-9]{1,4}$/.test(p);
      out.push({ raw: p, lower, stem: acronym ? lower : stem(lower), index: out.length, sentenceStart, kind });
      sentenceStart = false;
    }
  }
  return out;
}

/**
 * A crude suffix-stripping stem. It only has to map inflections of one word to the same string
 * on both sides of a pair (locks/locked/locking → lock), not to produce dictionary forms.
 */
export function stem(w: string): string {
  if (w.length <= 3 || /\d/.test(w)) return w;
  let s = w;
  if (s.endsWith('ies') && s.length > 4) s = s.slice(0, -3) + 'i';
  else if (s.endsWith('ied') && s.length > 4) s = s.slice(0, -3) + 'i';
  else if (/(?:ss|sh|ch|x|z)es$/.test(s)) s = s.slice(0, -2);
  else if (s.endsWith('s') && !/(?:ss|us|is)$/.test(s)) s = s.slice(0, -1);
  if (s.endsWith('ing') && s.length > 5) s = s.slice(0, -3);
  else if (s.endsWith('ed') && s.length > 4) s = s.slice(0, -2);
  else if (s.endsWith('ly') && s.length > 5) s = s.slice(0, -2);
  if (/([bdfgmnprt])\1$/.test(s)) s = s.slice(0, -1);
  if (s.endsWith('e') && s.length > 3) s = s.slice(0, -1);
  if (s.endsWith('y') && s.length > 3) s = s.slice(0, -1) + 'i';
  return s;
}

/** Function words: ignored when comparing content. */
export const STOPWORDS: ReadonlySet<string> = new Set(
  (
    'a an the and or but if then else of at by for with about against between into through during before after above below ' +
    'to from up down in out on off over under again further once here there all any both each few more most other some such ' +
    'nor only own same so than too very s t can will just don should now i me my myself we our ours ourselves you your yours ' +
    'yourself yourselves he him his himself she her hers herself it its itself they them their theirs themselves what which who ' +
    'whom this that these those am is are was were be been being have has had having do does did doing would could might must ' +
    'shall may how why when where whether also get got go going make one ones way ways much many thing things anyone someone ' +
    'something anything people person use using used like want need know possible best good really actually even still ever ' +
    'via per etc as not no never'
  ).split(' '),
);

/** Levenshtein distance ≤ 1 (typos in names: "Pyhton" / "Python" count as the same word). */
export function withinOneEdit(a: string, b: string): boolean {
  if (a === b) return true;
  const la = a.length;
  const lb = b.length;
  if (Math.abs(la - lb) > 1) return false;
  let i = 0;
  while (i < la && i < lb && a[i] === b[i]) i++;
  if (la === lb) {
    // substitution or adjacent transposition
    if (a.slice(i + 1) === b.slice(i + 1)) return true;
    return a[i] === b[i + 1] && a[i + 1] === b[i] && a.slice(i + 2) === b.slice(i + 2);
  }
  return la > lb ? a.slice(i + 1) === b.slice(i) : a.slice(i) === b.slice(i + 1);
}

/** Stems of the content words (no function words, no one-letter words) of a text. */
export function contentStems(a: Analysis): Set<string> {
  const out = new Set<string>();
  for (const t of a.tokens) if ((t.kind === 'word' || t.kind === 'number') && t.lower.length > 1 && !STOPWORDS.has(t.lower)) out.add(t.stem);
  return out;
}

/** `set` has `s`, or (for words of 5+ letters) a word one edit away from it. */
export function fuzzyHas(set: ReadonlySet<string>, s: string): boolean {
  if (set.has(s)) return true;
  if (s.length < 5) return false;
  for (const x of set) if (x.length >= 5 && withinOneEdit(x, s)) return true;
  return false;
}

/** Analysis of one text, memoised because every guard looks at the same two texts. */
export interface Analysis {
  readonly text: string;
  readonly tokens: readonly Token[];
  readonly stems: ReadonlySet<string>;
  readonly lowers: ReadonlySet<string>;
}

const memo = new Map<string, Analysis>();
const MEMO_MAX = 512;

export function analyze(text: string): Analysis {
  const hit = memo.get(text);
  if (hit) return hit;
  const tokens = tokenize(text);
  const a: Analysis = { text, tokens, stems: new Set(tokens.map((t) => t.stem)), lowers: new Set(tokens.map((t) => t.lower)) };
  if (memo.size >= MEMO_MAX) memo.delete(memo.keys().next().value as string);
  memo.set(text, a);
  return a;
}

/** Counts of each element (multiset). */
export function multiset<T>(items: Iterable<T>): Map<T, number> {
  const m = new Map<T, number>();
  for (const x of items) m.set(x, (m.get(x) ?? 0) + 1);
  return m;
}

/** Elements of a that b lacks, counting multiplicity. */
export function multisetMinus<T>(a: Map<T, number>, b: Map<T, number>): T[] {
  const out: T[] = [];
  for (const [k, n] of a) for (let i = b.get(k) ?? 0; i < n; i++) out.push(k);
  return out;
}
