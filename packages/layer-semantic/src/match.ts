import { type CandidateSelector, type GuardInput, type RejectedCandidate, type SelectorNeighbour, type SemanticGuard, StrataError } from '@strata-cache/core';

/** One nearest neighbour of a query, as `matchCandidates` judges it. */
export interface MatchCandidate {
  /** The stored entry's compared text. */
  readonly text: string;
  /** Cosine similarity to the query. */
  readonly similarity: number;
  /** The stored answer, offered to the selector (two candidates with the same answer are not ambiguous). */
  readonly value?: unknown;
  /** The stored vector, fetched only when a guard sets `needsVectors`. */
  readonly vector?: () => Float32Array | undefined;
}

/** The matching setting: what a candidate must pass to be served. */
export interface MatchSetting {
  readonly threshold: number;
  readonly guards: readonly SemanticGuard[];
  /** Chooses among the accepted candidates, or declines them all; none = the most similar accepted one. */
  readonly selector?: CandidateSelector | undefined;
}

export interface MatchOutcome {
  /** Index (into the candidates passed in) of the one to serve; undefined = a miss. */
  readonly pick: number | undefined;
  /**
   * Why candidates were not served, most similar first: guard and selector rejections, and — on
   * a miss — the nearest candidate below the threshold (`guard: 'threshold'`), so a miss
   * explains itself.
   */
  readonly rejected: RejectedCandidate[];
}

/**
 * Runs the guards in order on one candidate (vectors only when a guard sets `needsVectors`): the
 * first turn-down, or undefined when every guard accepts.
 */
export function checkGuards(
  query: { readonly text: string; readonly vector?: Float32Array | undefined },
  c: MatchCandidate,
  threshold: number,
  guards: readonly SemanticGuard[],
  needsVectors = guards.some((g) => g.needsVectors === true),
): RejectedCandidate | undefined {
  const input: GuardInput = needsVectors
    ? { query: query.text, candidate: c.text, similarity: c.similarity, threshold, queryVector: query.vector, candidateVector: c.vector?.() }
    : { query: query.text, candidate: c.text, similarity: c.similarity, threshold };
  for (const g of guards) {
    const v = g.check(input);
    if (!v.accept) return { similarity: c.similarity, text: c.text, guard: g.name, reason: v.reason };
  }
  return undefined;
}

/**
 * The semantic layer's matching, as one function: candidates (most similar first) → threshold
 * → each guard in order → the selector. `SemanticLayer.search` runs exactly this on the
 * nearest neighbours of its index; a quality benchmark can run it on its own neighbour lists
 * and measure the very loop the layer serves with.
 */
export function matchCandidates(
  query: { readonly text: string; readonly vector?: Float32Array },
  candidates: readonly MatchCandidate[],
  setting: MatchSetting,
): MatchOutcome {
  const { threshold, guards, selector } = setting;
  // A selector that weighs the neighbourhood may serve candidates somewhat below the threshold.
  const floor = threshold - (selector?.reach ?? 0);
  const needsVectors = guards.some((g) => g.needsVectors === true);
  const rejected: RejectedCandidate[] = [];
  const accepted: number[] = [];
  let below: MatchCandidate | undefined;
  for (let i = 0; i < candidates.length; i++) {
    const c = candidates[i]!;
    if (c.similarity < floor) {
      below = c; // most similar first: every later one is below too
      break;
    }
    const turnedDown = checkGuards(query, c, threshold, guards, needsVectors);
    if (turnedDown) {
      rejected.push(turnedDown);
      continue;
    }
    accepted.push(i);
    if (!selector) break;
  }
  let pick = accepted[0];
  if (selector && accepted.length > 0) {
    const offer = (c: MatchCandidate) =>
      c.value === undefined ? { text: c.text, similarity: c.similarity } : { text: c.text, similarity: c.similarity, value: c.value };
    const offered = accepted.map((i) => offer(candidates[i]!));
    // The whole neighbourhood, for selectors that weigh evidence around the candidates.
    const verdicts = new Map<number, boolean>();
    for (const i of accepted) verdicts.set(i, true);
    const neighbours: SelectorNeighbour[] = candidates.map((c, i) => ({
      ...offer(c),
      accepted: verdicts.get(i) ?? (c.similarity >= floor ? false : undefined),
    }));
    const v = selector.select(query.text, offered, { neighbours, threshold });
    if (v.pick === undefined) {
      pick = undefined;
      for (const i of accepted) rejected.push({ similarity: candidates[i]!.similarity, text: candidates[i]!.text, guard: selector.name, reason: v.reason });
    } else {
      pick = accepted[v.pick];
      if (pick === undefined)
        throw new StrataError('STRATA_LAYER', `@strata-cache/layer-semantic: selector "${selector.name}" picked candidate ${v.pick} of ${accepted.length}`);
    }
  }
  if (pick === undefined && below) {
    rejected.push({
      similarity: below.similarity,
      text: below.text,
      guard: 'threshold',
      reason: `similarity ${below.similarity.toFixed(4)} is below the threshold ${threshold}${floor < threshold ? ` (and the selector's reach, down to ${floor.toFixed(4)})` : ''}`,
    });
  }
  return { pick, rejected };
}
