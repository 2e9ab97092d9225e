import { canonicalize, InvalidOptionError, type CandidateSelector, type SelectorCandidate, type SelectorVerdict } from '@strata-cache/core';
import { answerTextOf } from './answer-text.js';
import { analyze } from './text.js';

export interface LexicalSelectorOptions {
  /**
   * Weight of word overlap (Jaccard of word stems, 0..1) added to the cosine similarity when
   * ranking candidates: between two near-equal matches, the one that shares more of the query's
   * words wins. 0 ranks by similarity alone.
   * @default 0.3
   */
  weight?: number | undefined;
  /**
   * Decline when the runner-up scores within this much of the best candidate: two different stored
   * prompts that match about equally well make the nearest one a coin toss. 0 never declines.
   * @default 0.02
   */
  margin?: number | undefined;
  /**
   * Whether two candidates hold the same answer (then they are not rivals: serving either is the
   * same). Receives the candidates' `value`s as the semantic layer supplies them.
   * @default structural equality of the values (canonical JSON); candidates without a value never match
   */
  sameAnswer?: ((a: unknown, b: unknown) => boolean) | undefined;
}

/**
 * Whether two stored answers say the same thing: the same readable text (`answerTextOf`: the
 * message text and tool calls of an OpenAI or Anthropic response, a string as it is — ids,
 * timestamps and token counts of a response do not count), whitespace runs aside; values without
 * such text compare structurally (canonical JSON). Values that cannot be serialised compare by
 * identity; a missing value never matches.
 */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a === undefined || b === undefined) return false;
  if (a === b) return true;
  if (typeof a !== typeof b) return false;
  const ta = answerTextOf(a, Number.POSITIVE_INFINITY);
  const tb = answerTextOf(b, Number.POSITIVE_INFINITY);
  if (ta !== undefined && tb !== undefined && ta.replace(WS, ' ') === tb.replace(WS, ' ')) return true;
  try {
    return canonicalize(a) === canonicalize(b);
  } catch {
    return false;
  }
}

const WS = /\s+/g;

function stems(text: string): Set<string> {
  const out = new Set<string>();
  for (const t of analyze(text).tokens) if (t.kind !== 'symbol') out.add(t.stem);
  return out;
}

/** Jaccard overlap of the word stems of two texts (0..1). */
export function wordOverlap(a: string, b: string): number {
  const sa = stems(a);
  const sb = stems(b);
  let shared = 0;
  for (const s of sa) if (sb.has(s)) shared++;
  const union = sa.size + sb.size - shared;
  return union === 0 ? 1 : shared / union;
}

const clip = (s: string) => JSON.stringify(s.length > 60 ? s.slice(0, 57) + '…' : s);

/**
 * Ranks candidates by similarity + weight × word overlap and declines an ambiguous best match: a
 * runner-up within `margin` that holds a different answer. Candidates holding the same answer
 * (`SelectorCandidate.value`, compared by `sameAnswer`) are never ambiguous with each other.
 * Only meaningful with several stored prompts per partition; with one candidate it always picks it.
 */
export function lexicalSelector(options: LexicalSelectorOptions = {}): CandidateSelector {
  if (typeof options !== 'object' || options === null)
    throw new InvalidOptionError('@strata-cache/semantic-guards: lexicalSelector(options) expects an object');
  for (const k of Object.keys(options)) {
    if (k !== 'weight' && k !== 'margin' && k !== 'sameAnswer')
      throw new InvalidOptionError(`@strata-cache/semantic-guards: unknown option "${k}" of lexicalSelector (known: weight, margin, sameAnswer)`, { field: k });
  }
  if (options.sameAnswer !== undefined && typeof options.sameAnswer !== 'function') {
    throw new InvalidOptionError('@strata-cache/semantic-guards: option "sameAnswer" of lexicalSelector must be a function (a, b) => boolean', {
      field: 'sameAnswer',
    });
  }
  const same = options.sameAnswer ?? sameValue;
  const weight = options.weight ?? 0.3;
  const margin = options.margin ?? 0.02;
  for (const [k, v] of [
    ['weight', weight],
    ['margin', margin],
  ] as const) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
      throw new InvalidOptionError(`@strata-cache/semantic-guards: option "${k}" of lexicalSelector must be a non-negative number`, { field: k });
  }
  return {
    name: 'ambiguous',
    select(query: string, candidates: readonly SelectorCandidate[]): SelectorVerdict {
      if (candidates.length === 0) return { pick: undefined, reason: 'no candidate' };
      if (candidates.length === 1) return { pick: 0 };
      const scores = candidates.map((c) => c.similarity + (weight > 0 ? weight * wordOverlap(query, c.text) : 0));
      let best = 0;
      for (let i = 1; i < scores.length; i++) if (scores[i]! > scores[best]!) best = i;
      if (margin > 0) {
        // The best rival is the best-scoring candidate holding a different answer: candidates with
        // the same answer as the best are not a coin toss, whichever is served.
        let rival = -1;
        for (let i = 0; i < scores.length; i++) {
          if (i === best || (rival >= 0 && scores[i]! <= scores[rival]!)) continue;
          if (scores[best]! - scores[i]! >= margin) continue;
          if (same(candidates[best]!.value, candidates[i]!.value)) continue;
          rival = i;
        }
        if (rival >= 0) {
          return { pick: undefined, reason: `ambiguous: ${clip(candidates[best]!.text)} and ${clip(candidates[rival]!.text)} score within ${margin}` };
        }
      }
      return { pick: best };
    },
  };
}
