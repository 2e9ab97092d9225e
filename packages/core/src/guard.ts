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
}

export type GuardVerdict = { readonly accept: true } | { readonly accept: false; readonly reason: string };

export interface SemanticGuard {
  /** Stable name, reported with every rejection (`numbers`, `negation`, ...). */
  readonly name: string;
  check(input: GuardInput): GuardVerdict;
}
