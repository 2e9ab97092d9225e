import { InvalidOptionError, type CandidateSelector, type SelectorCandidate, type SelectorVerdict } from '@strata-cache/core';
import { analyze } from './text.js';

export interface LexicalSelectorOptions {
  /**
   * Weight of word overlap (Jaccard of word stems, 0..1) added to the cosine similarity when
   * ranking candidates: between two near-equal matches, the one that shares more of the query's
   * words wins. 0 ranks by similarity alone.
   * @default 0.3
   */
  weight?: number;
  /**
   * Decline when the runner-up scores within this much of the best candidate: two different stored
   * prompts that match about equally well make the nearest one a coin toss. 0 never declines.
   * @default 0.02
   */
  margin?: number;
}

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
 * Ranks candidates by similarity + weight × word overlap and declines an ambiguous best match.
 * Only meaningful with several stored prompts per partition; with one candidate it always picks it.
 */
export function lexicalSelector(options: LexicalSelectorOptions = {}): CandidateSelector {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('@strata-cache/semantic-guards: lexicalSelector(options) expects an object');
  for (const k of Object.keys(options)) {
    if (k !== 'weight' && k !== 'margin') throw new InvalidOptionError(`@strata-cache/semantic-guards: unknown option "${k}" of lexicalSelector (known: weight, margin)`, { field: k });
  }
  const weight = options.weight ?? 0.3;
  const margin = options.margin ?? 0.02;
  for (const [k, v] of [['weight', weight], ['margin', margin]] as const) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new InvalidOptionError(`@strata-cache/semantic-guards: option "${k}" of lexicalSelector must be a non-negative number`, { field: k });
  }
  return {
    name: 'ambiguous',
    select(query: string, candidates: readonly SelectorCandidate[]): SelectorVerdict {
      if (candidates.length === 0) return { pick: undefined, reason: 'no candidate' };
      if (candidates.length === 1) return { pick: 0 };
      let best = -1;
      let bestScore = -Infinity;
      let second = -Infinity;
      let secondAt = -1;
      candidates.forEach((c, i) => {
        const score = c.similarity + (weight > 0 ? weight * wordOverlap(query, c.text) : 0);
        if (score > bestScore) {
          second = bestScore;
          secondAt = best;
          bestScore = score;
          best = i;
        } else if (score > second) {
          second = score;
          secondAt = i;
        }
      });
      if (margin > 0 && bestScore - second < margin) {
        return { pick: undefined, reason: `ambiguous: ${clip(candidates[best]!.text)} and ${clip(candidates[secondAt]!.text)} score within ${margin}` };
      }
      return { pick: best };
    },
  };
}
