import type { Token } from './text.js';

/** A number, ordinal, date part or unit mentioned in a text, in canonical form (`n:5`, `ord:2`, `unit:km`). */
export interface Mention {
  readonly key: string;
  /** As written, for rejection reasons. */
  readonly text: string;
  /** "one"/"first" as words: too common as plain words to count at all unless matched. */
  readonly weak?: boolean;
  /** A unit or relative day ("in km", "5 km", "today"): counts against a different one, not on its own. */
  readonly bare?: boolean;
}

/**
 * Units of measure a quantity can be restated in, as (dimension, factor to a base unit): "8,000
 * hectares (20,000 acres)" restates one area, "5 km (3.1 miles)" one length.
 */
const CONVERSIONS: Record<string, readonly [string, number]> = Object.assign(Object.create(null), {
  km: ['length', 1000],
  mile: ['length', 1609.344],
  meter: ['length', 1],
  cm: ['length', 0.01],
  mm: ['length', 0.001],
  foot: ['length', 0.3048],
  inch: ['length', 0.0254],
  yard: ['length', 0.9144],
  hectare: ['area', 1e4],
  acre: ['area', 4046.856],
  km2: ['area', 1e6],
  kg: ['mass', 1],
  gram: ['mass', 0.001],
  mg: ['mass', 1e-6],
  pound: ['mass', 0.45359237],
  ounce: ['mass', 0.028349523],
  stone: ['mass', 6.350293],
  ton: ['mass', 1000],
  liter: ['volume', 1],
  ml: ['volume', 0.001],
  gallon: ['volume', 3.785412],
  mph: ['speed', 0.44704],
  kph: ['speed', 1 / 3.6],
  celsius: ['temperature', 1],
  fahrenheit: ['temperature', 1],
  kelvin: ['temperature', 1],
});

/** A value in a dimension's base unit (temperatures in kelvin). */
function toBase(value: number, unit: string): [string, number] | undefined {
  const c = CONVERSIONS[unit];
  if (!c) return undefined;
  if (c[0] === 'temperature') return ['temperature', unit === 'celsius' ? value + 273.15 : unit === 'fahrenheit' ? ((value - 32) * 5) / 9 + 273.15 : value];
  return [c[0], value * c[1]];
}

/**
 * Drops restatements: a quantity written right after another of the same dimension that converts
 * to about the same amount (within 10%) says nothing new — "8,000 hectares (20,000 acres)",
 * "5 km (3.1 miles)", "100°F / 38°C". Two different amounts ("3 km 5 miles") both stay.
 */
function dropRestatements(out: Array<Mention & { at?: number; end?: number }>): Mention[] {
  const drop = new Set<number>();
  for (let i = 0; i + 3 < out.length; i++) {
    const [n1, u1, n2, u2] = [out[i]!, out[i + 1]!, out[i + 2]!, out[i + 3]!];
    if (!n1.key.startsWith('n:') || !u1.key.startsWith('unit:') || !n2.key.startsWith('n:') || !u2.key.startsWith('unit:')) continue;
    // Adjacent: the second quantity starts where the first one's unit ends.
    if (u1.end === undefined || n2.at === undefined || n2.at !== u1.end) continue;
    const a = toBase(Number(n1.key.slice(2)), u1.key.slice(5));
    const b = toBase(Number(n2.key.slice(2)), u2.key.slice(5));
    if (!a || !b || a[0] !== b[0] || u1.key === u2.key || !(a[1] > 0) || !(b[1] > 0)) continue;
    if (Math.abs(a[1] - b[1]) <= 0.1 * Math.max(a[1], b[1])) {
      drop.add(i + 2);
      drop.add(i + 3);
      i += 3;
    }
  }
  return out.filter((_, i) => !drop.has(i)).map(({ at: _at, end: _end, ...m }) => m);
}

const SMALL: Record<string, number> = Object.assign(Object.create(null), {
  zero: 0,
  one: 1,
  two: 2,
  three: 3,
  four: 4,
  five: 5,
  six: 6,
  seven: 7,
  eight: 8,
  nine: 9,
  ten: 10,
  eleven: 11,
  twelve: 12,
  thirteen: 13,
  fourteen: 14,
  fifteen: 15,
  sixteen: 16,
  seventeen: 17,
  eighteen: 18,
  nineteen: 19,
  twenty: 20,
  thirty: 30,
  forty: 40,
  fifty: 50,
  sixty: 60,
  seventy: 70,
  eighty: 80,
  ninety: 90,
  dozen: 12,
  half: 0.5,
  twice: 2,
  thrice: 3,
  teens: 13,
  twenties: 20,
  thirties: 30,
  forties: 40,
  fifties: 50,
  sixties: 60,
  seventies: 70,
  eighties: 80,
  nineties: 90,
});
const SCALE: Record<string, number> = Object.assign(Object.create(null), {
  hundred: 100,
  thousand: 1e3,
  k: 1e3,
  million: 1e6,
  mn: 1e6,
  billion: 1e9,
  bn: 1e9,
  trillion: 1e12,
  lakh: 1e5,
  crore: 1e7,
});
const ORDINAL: Record<string, number> = Object.assign(Object.create(null), {
  first: 1,
  second: 2,
  third: 3,
  fourth: 4,
  fifth: 5,
  sixth: 6,
  seventh: 7,
  eighth: 8,
  ninth: 9,
  tenth: 10,
  eleventh: 11,
  twelfth: 12,
  thirteenth: 13,
  fourteenth: 14,
  fifteenth: 15,
  sixteenth: 16,
  seventeenth: 17,
  eighteenth: 18,
  nineteenth: 19,
  twentieth: 20,
  thirtieth: 30,
  fortieth: 40,
  fiftieth: 50,
  hundredth: 100,
  thousandth: 1000,
  millionth: 1e6,
});
const ROMAN = /^(?:II|III|IV|VI|VII|VIII|IX|XI|XII|XIII|XIV|XV|XX)$/;
const ROMAN_VALUE: Record<string, number> = { I: 1, V: 5, X: 10 };

/** Unit spellings → canonical unit. Dimension is implied by the canonical name. */
const UNITS: Record<string, string> = Object.create(null);
const unit = (canon: string, ...names: string[]) => {
  for (const n of [canon, ...names]) UNITS[n] = canon;
};
unit('km', 'kms', 'kilometer', 'kilometers', 'kilometre', 'kilometres');
unit('mile', 'miles', 'mi');
unit('meter', 'meters', 'metre', 'metres');
unit('cm', 'centimeter', 'centimeters', 'centimetre', 'centimetres');
unit('mm', 'millimeter', 'millimeters', 'millimetre', 'millimetres');
unit('foot', 'feet', 'ft');
unit('inch', 'inches');
unit('yard', 'yards', 'yd');
unit('hectare', 'hectares', 'ha');
unit('acre', 'acres');
unit('km2', 'sqkm');
unit('kg', 'kgs', 'kilo', 'kilos', 'kilogram', 'kilograms');
unit('gram', 'grams', 'g');
unit('pound', 'pounds', 'lb', 'lbs');
unit('ounce', 'ounces', 'oz');
unit('stone', 'stones');
unit('ton', 'tons', 'tonne', 'tonnes');
unit('liter', 'liters', 'litre', 'litres', 'l');
unit('ml', 'milliliter', 'milliliters', 'millilitre', 'millilitres');
unit('gallon', 'gallons', 'gal');
unit('celsius', '°c', 'centigrade');
unit('fahrenheit', '°f');
unit('kelvin');
unit('mph');
unit('kph', 'kmh');
unit('kb', 'kilobyte', 'kilobytes');
unit('mb', 'megabyte', 'megabytes');
unit('gb', 'gigabyte', 'gigabytes', 'gig', 'gigs');
unit('tb', 'terabyte', 'terabytes');
unit('mbps');
unit('gbps');
unit('hz', 'hertz');
unit('mhz');
unit('ghz');
unit('watt', 'watts', 'w');
unit('kw', 'kilowatt', 'kilowatts');
unit('kwh');
unit('volt', 'volts', 'v');
unit('mah');
unit('percent', '%', 'percentage', 'pct');
unit('second', 'seconds', 'sec', 'secs');
unit('minute', 'minutes', 'min', 'mins');
unit('hour', 'hours', 'hr', 'hrs', 'h');
unit('day', 'days');
unit('week', 'weeks');
unit('month', 'months');
unit('year', 'years', 'yr', 'yrs');
unit('decade', 'decades');
unit('century', 'centuries');
unit('usd', '$', 'dollar', 'dollars', 'buck', 'bucks');
unit('eur', '€', 'euro', 'euros');
unit('gbp', '£', 'sterling');
unit('jpy', '¥', 'yen');
unit('inr', 'rupee', 'rupees', 'rs');
unit('cent', 'cents');
unit('btc', 'bitcoin', 'bitcoins');
unit('bhk');
unit('seat', 'seats');
unit('people', 'persons');
unit('calorie', 'calories', 'kcal', 'cal');
unit('mg', 'milligram', 'milligrams');
unit('mcg');
unit('px', 'pixel', 'pixels');
unit('dpi');
unit('fps');
unit('rpm');
unit('bit', 'bits');
unit('core', 'cores');
// Units that are also common words only count right after a number ("5 g", not "g-string").
const NUMERIC_ONLY = new Set([
  'ha',
  'g',
  'l',
  'w',
  'v',
  'h',
  'mi',
  'min',
  'mins',
  'sec',
  'secs',
  'gal',
  'yd',
  'rs',
  'cal',
  'core',
  'cores',
  'seat',
  'seats',
  'people',
  'persons',
  'bit',
  'bits',
  'stone',
  'stones',
  'buck',
  'bucks',
  'gig',
  'gigs',
  'kilo',
  'kilos',
  'second',
  'seconds',
  'pound',
  'pounds',
  'day',
  'week',
  'month',
  'year',
  'hour',
  'minute',
  'decade',
  'century',
]);

const MONTHS: Record<string, number> = Object.assign(Object.create(null), {
  january: 1,
  jan: 1,
  february: 2,
  feb: 2,
  march: 3,
  mar: 3,
  april: 4,
  apr: 4,
  may: 5,
  june: 6,
  jun: 6,
  july: 7,
  jul: 7,
  august: 8,
  aug: 8,
  september: 9,
  sep: 9,
  sept: 9,
  october: 10,
  oct: 10,
  november: 11,
  nov: 11,
  december: 12,
  dec: 12,
});
// Month names that are also ordinary words count only when capitalised mid-sentence or next to a number.
const AMBIGUOUS_MONTHS = new Set(['may', 'march', 'mar', 'jan', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec', 'apr', 'feb', 'sept']);
const WEEKDAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];
const RELATIVE_DAYS = new Set([
  'today',
  'tomorrow',
  'yesterday',
  'tonight',
  'weekend',
  'weekday',
  'weekdays',
  'morning',
  'afternoon',
  'evening',
  'night',
  'midnight',
  'noon',
]);
const SEASONS = new Set(['summer', 'winter', 'autumn']);
// Rates and billing periods: "monthly" = "per month" = "a month"; "per year" ≠ "per month".
const PERIOD_WORDS: Record<string, string> = Object.assign(Object.create(null), {
  hourly: 'hour',
  daily: 'day',
  nightly: 'night',
  weekly: 'week',
  biweekly: 'fortnight',
  fortnightly: 'fortnight',
  monthly: 'month',
  quarterly: 'quarter',
  yearly: 'year',
  annually: 'year',
  annual: 'year',
  annum: 'year',
  biannual: 'half-year',
  semiannual: 'half-year',
});
const PERIOD_NOUNS: Record<string, string> = Object.assign(Object.create(null), {
  hour: 'hour',
  day: 'day',
  night: 'night',
  week: 'week',
  fortnight: 'fortnight',
  month: 'month',
  quarter: 'quarter',
  year: 'year',
});
const PERIOD_CUES = new Set(['per', 'a', 'an', 'each', 'every']);

/** Value and attached suffix of a numeral token; version-like "1.2.3" keeps its text as the value. */
function parseNumeral(s: string): { value: number | string; suffix: string } {
  const m = /^([\d.,]*\d)([A-Za-z°%]*)$/.exec(s);
  if (!m) return { value: s, suffix: '' };
  const digits = m[1]!.replace(/,/g, '');
  const value = Number(digits);
  return { value: Number.isFinite(value) ? value : digits, suffix: m[2]!.toLowerCase() };
}

const fmt = (n: number | string) => (typeof n === 'string' ? n : String(Number(n.toPrecision(12))));

/**
 * Every quantity-like mention: numbers (digits or words, with scale words), ordinals, units
 * (with or without a number: "in km" vs "in miles"), months, weekdays and relative days, roman numerals.
 */
export function extractMentions(tokens: readonly Token[]): Mention[] {
  const out: Array<Mention & { at?: number; end?: number }> = [];
  const n = tokens.length;
  let i = 0;
  while (i < n) {
    const t = tokens[i]!;
    const lw = t.lower;
    // Digits with optional attached suffix.
    if (t.kind === 'number') {
      const p = parseNumeral(t.raw);
      let value = p.value;
      let j = i + 1;
      let suffix = p.suffix;
      if (typeof value === 'number') {
        if (suffix && SCALE[suffix] && suffix !== 'm') {
          value *= SCALE[suffix]!;
          suffix = '';
        }
        while (j < n && SCALE[tokens[j]!.lower] && tokens[j]!.lower !== 'k') {
          value *= SCALE[tokens[j]!.lower]!;
          j++;
        }
      }
      if (/^(?:st|nd|rd|th)$/.test(suffix)) out.push({ key: `ord:${fmt(value)}`, text: t.raw });
      else if (suffix === 'am' || suffix === 'pm') out.push({ key: `time:${fmt(value)}${suffix}`, text: t.raw });
      else {
        out.push({
          key: `n:${fmt(value)}`,
          text: tokens
            .slice(i, j)
            .map((x) => x.raw)
            .join(' '),
          at: i,
        });
        if (suffix) {
          const u = UNITS[suffix] ?? (suffix === 'm' ? 'meter' : suffix === 'x' ? 'times' : undefined);
          if (u) out.push({ key: `unit:${u}`, text: suffix, bare: true, end: j });
          else if (suffix === 'd' || suffix === 'p' || suffix === 'g') out.push({ key: `unit:${suffix}`, text: suffix, bare: true }); // 3d, 1080p, 4g/5g
        }
        // Unit written as the next word: "5 km", "30 seats", "10 seconds".
        const next = tokens[j];
        if (!suffix && next && UNITS[next.lower]) {
          out.push({ key: `unit:${UNITS[next.lower]}`, text: next.raw, bare: true, end: j + 1 });
          j++;
        }
      }
      i = j;
      continue;
    }
    // Number words, composed: "twenty five", "two hundred", "three million".
    if (SMALL[lw] !== undefined || (SCALE[lw] && lw !== 'k' && lw !== 'mn' && lw !== 'bn')) {
      let total = 0;
      let current = 0;
      let j = i;
      let words = 0;
      while (j < n) {
        const w = tokens[j]!.lower;
        if (SMALL[w] !== undefined) current += SMALL[w]!;
        else if (w === 'hundred') current = (current || 1) * 100;
        else if (SCALE[w] && w !== 'k') {
          total += (current || 1) * SCALE[w]!;
          current = 0;
        } else if (w === 'and' && words > 0 && j + 1 < n && SMALL[tokens[j + 1]!.lower] !== undefined && tokens[j - 1]!.lower === 'hundred') {
          // "two hundred and five"
        } else break;
        words++;
        j++;
      }
      const value = total + current;
      const text = tokens
        .slice(i, j)
        .map((x) => x.raw)
        .join(' ');
      out.push({ key: `n:${fmt(value)}`, text, ...(value === 1 && words === 1 ? { weak: true } : {}) });
      const next = tokens[j];
      if (next && UNITS[next.lower]) {
        out.push({ key: `unit:${UNITS[next.lower]}`, text: next.raw, bare: true });
        j++;
      }
      i = j;
      continue;
    }
    if (ORDINAL[lw] !== undefined) {
      // "second" right after a number is the unit (handled above); "a second" is time too.
      out.push({ key: `ord:${ORDINAL[lw]}`, text: t.raw, ...(lw === 'first' ? { weak: true } : {}) });
      i++;
      continue;
    }
    if (lw === 'last' || lw === 'final') {
      // "last" as an ordinal position only next to a unit/ordinal-ish noun is too fiddly; direction guard owns it.
      i++;
      continue;
    }
    if (ROMAN.test(t.raw)) {
      let v = 0;
      for (let k = 0; k < t.raw.length; k++) {
        const cur = ROMAN_VALUE[t.raw[k]!]!;
        const nxt = ROMAN_VALUE[t.raw[k + 1] ?? ''] ?? 0;
        v += cur < nxt ? -cur : cur;
      }
      out.push({ key: `n:${v}`, text: t.raw });
      i++;
      continue;
    }
    if (MONTHS[lw] !== undefined) {
      const prevNum = tokens[i - 1]?.kind === 'number';
      const nextNum = tokens[i + 1]?.kind === 'number';
      const capitalMid = !t.sentenceStart && /^[A-Z]/.test(t.raw);
      if (!AMBIGUOUS_MONTHS.has(lw) || prevNum || nextNum || (capitalMid && lw !== 'may')) {
        out.push({ key: `month:${MONTHS[lw]}`, text: t.raw });
      }
      i++;
      continue;
    }
    if (WEEKDAYS.includes(lw.replace(/s$/, ''))) {
      out.push({ key: `day:${lw.replace(/s$/, '')}`, text: t.raw });
      i++;
      continue;
    }
    if (PERIOD_WORDS[lw] !== undefined) {
      out.push({ key: `per:${PERIOD_WORDS[lw]}`, text: t.raw, bare: true });
      i++;
      continue;
    }
    if (PERIOD_CUES.has(lw) && i + 1 < n && PERIOD_NOUNS[tokens[i + 1]!.lower] !== undefined) {
      out.push({ key: `per:${PERIOD_NOUNS[tokens[i + 1]!.lower]}`, text: `${t.raw} ${tokens[i + 1]!.raw}`, bare: true });
      i += 2;
      continue;
    }
    if (RELATIVE_DAYS.has(lw) || SEASONS.has(lw)) {
      out.push({ key: `when:${lw}`, text: t.raw, bare: true });
      i++;
      continue;
    }
    if (UNITS[lw] && !NUMERIC_ONLY.has(lw)) {
      out.push({ key: `unit:${UNITS[lw]}`, text: t.raw, bare: true });
      i++;
      continue;
    }
    i++;
  }
  return dropRestatements(out);
}

const CURRENCIES = new Set(['usd', 'eur', 'gbp', 'jpy', 'inr', 'cent', 'btc']);

/** Currencies, months, weekdays and relative days: capitalised words the numbers guard already compares. */
export function isQuantityWord(lower: string): boolean {
  const u = UNITS[lower];
  return (u !== undefined && CURRENCIES.has(u)) || MONTHS[lower] !== undefined || WEEKDAYS.includes(lower.replace(/s$/, '')) || RELATIVE_DAYS.has(lower);
}

// Contractions other than the negative ones (which the tokenizer expands): "it's" = "it is".
const CONTRACTION_RE =
  /\b(it|that|what|there|here|where|who|how|he|she|this|when|why)['’]s\b|\b(i)['’]m\b|\b(you|we|they|who|what)['’]re\b|\b(i|you|we|they|would|could|should|might|must)['’]ve\b|\b(i|you|we|they|he|she|it|that|there)['’]ll\b|\b(i|you|we|they|he|she|it|that|there)['’]d\b|\blet['’]s\b/gi;
const expandContraction = (m: string, ...g: Array<string | undefined>): string => {
  const [is, am, are, have, will, would] = g;
  if (is) return `${is} is`;
  if (am) return `${am} am`;
  if (are) return `${are} are`;
  if (have) return `${have} have`;
  if (will) return `${will} will`;
  if (would) return `${would} would`;
  return /^let/i.test(m) ? 'let us' : m;
};

/**
 * A canonical form of a text for identity: lower-case words in order (contractions expanded,
 * punctuation and spacing ignored) plus the quantities it mentions in canonical form (so "8,000" =
 * "8000" = "eight thousand", and a restatement in other units is dropped). Two texts with the same
 * canonical form ask the same thing in the same words: "Where is my order?" / "where is my order",
 * "It's not a good idea." / "It is not a good idea.".
 */
export function canonicalForm(text: string, tokenize: (t: string) => readonly Token[]): string {
  const tokens = tokenize(text.normalize('NFKC').replace(CONTRACTION_RE, expandContraction as (m: string, ...g: string[]) => string));
  const words: string[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.kind !== 'word') continue;
    const lw = t.lower;
    if (SMALL[lw] !== undefined || SCALE[lw] !== undefined || ORDINAL[lw] !== undefined) continue;
    const prev = tokens[i - 1];
    if (UNITS[lw] !== undefined && prev && (prev.kind === 'number' || SMALL[prev.lower] !== undefined || SCALE[prev.lower] !== undefined)) continue;
    words.push(lw);
  }
  const keys = extractMentions(tokens)
    .map((m) => m.key)
    .sort();
  return `${words.join(' ')} | ${keys.join(' ')}`;
}
