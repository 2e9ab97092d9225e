/**
 * The seam between finding a semantic candidate and returning it: a candidate above the
 * similarity threshold is handed to each guard in turn; any guard can turn it down.
 */
export interface GuardInput {
  /** The new request's compared text (last user turn). */
  readonly query: string;
  /** The stored entry's compared text. */
  readonly candidate: string;
  /** Cosine similarity of the two. */
  readonly similarity: number;
  /** Threshold in force for this lookup. */
  readonly threshold: number;
  /**
   * The query's embedding. Supplied by semantic layers to guards that set `needsVectors`
   * (fetching a stored vector back out of an index is not free, so others do without).
   */
  readonly queryVector?: Float32Array | undefined;
  /** The candidate's stored embedding (see `queryVector`). */
  readonly candidateVector?: Float32Array | undefined;
}

export type GuardVerdict = { readonly accept: true } | { readonly accept: false; readonly reason: string };

export interface SemanticGuard {
  /** Stable name, reported with every rejection (`numbers`, `negation`, ...). */
  readonly name: string;
  /** Set when `check` needs `queryVector` and `candidateVector`. */
  readonly needsVectors?: boolean;
  /**
   * The embedder this guard's judgement is only valid for (a learned model, say): a semantic layer
   * refuses, at construction, an embedder whose id does not start with `family` or whose
   * dimensions differ.
   */
  readonly embedder?: { readonly family: string; readonly dimensions: number };
  check(input: GuardInput): GuardVerdict;
}

/**
 * True when an embedder matches a guard's binding (`SemanticGuard.embedder`): its id starts with
 * the family and its dimensions agree. No binding fits every embedder.
 */
export function embedderFits(
  binding: { readonly family: string; readonly dimensions: number } | undefined,
  embedder: { readonly id: string; readonly dimensions: number },
): boolean {
  return binding === undefined || (embedder.id.startsWith(binding.family) && embedder.dimensions === binding.dimensions);
}

/** A candidate that passed the threshold and every guard, offered to a `CandidateSelector`. */
export interface SelectorCandidate {
  /** The stored entry's compared text. */
  readonly text: string;
  /** Cosine similarity to the query. */
  readonly similarity: number;
  /**
   * The answer stored with the candidate (the entry's value), when the layer has it: two
   * candidates holding the same answer are not ambiguous.
   */
  readonly value?: unknown;
}

export type SelectorVerdict = { readonly pick: number } | { readonly pick: undefined; readonly reason: string };

/** One of the nearest stored prompts a lookup fetched, whether or not it became a candidate. */
export interface SelectorNeighbour extends SelectorCandidate {
  /**
   * `true`: passed every guard (it is among the candidates); `false`: a guard turned it down (a
   * different question); `undefined`: too far below the threshold for the guards to run on it.
   */
  readonly accepted: boolean | undefined;
}

/**
 * What a semantic layer knows around the candidates: every neighbour it fetched (most similar
 * first, the candidates among them), and the threshold in force (candidates below it were offered
 * only because the selector's `reach` asked for them). A selector reads the
 * neighbourhood for evidence the candidates alone do not carry — e.g. how many stored prompts
 * near the query hold the same answer, and how close the nearest one holding another answer is.
 */
export interface SelectorContext {
  readonly neighbours: readonly SelectorNeighbour[];
  readonly threshold: number;
}

/**
 * Chooses among the candidates that passed the threshold and the guards (most similar first),
 * or declines them all — e.g. when two different stored prompts match about equally well, so
 * the nearest one is a coin toss. Without a selector the most similar accepted candidate wins.
 */
export interface CandidateSelector {
  /** Stable name, reported with a declined lookup. */
  readonly name: string;
  /**
   * How far below the similarity threshold this selector may serve a candidate, on evidence from
   * its neighbourhood: a semantic layer runs the guards on, and offers, candidates down to
   * `threshold − reach`, and the selector decides which of those below the threshold to serve.
   * @default 0 (only candidates at or above the threshold are offered)
   */
  readonly reach?: number;
  /** `context` is supplied by semantic layers that fetch a neighbourhood (layer-semantic does). */
  select(query: string, candidates: readonly SelectorCandidate[], context?: SelectorContext): SelectorVerdict;
}
