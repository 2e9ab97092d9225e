import { InvalidOptionError, type CandidateSelector, type SelectorCandidate, type SelectorContext, type SelectorVerdict } from '@strata-cache/core';
import { lexicalSelector, sameValue } from './selector.js';
import { sameText } from './verifier.js';

const PKG = '@strata-cache/semantic-guards';

export interface ConsensusSelectorOptions {
  /**
   * How far below the layer's threshold a match may be served on neighbourhood evidence. At or
   * above the threshold the best candidate is served on its own (the bar a lone stored prompt
   * must clear: pairs of questions that merely look alike reach 0.9 and more with sentence
   * encoders); in the `reach` below it, only with support and without a close rival.
   * @default 0.105 (with the recommended threshold 0.965: from 0.86)
   */
  reach?: number | undefined;
  /**
   * Below the threshold, how many OTHER stored prompts near the query must hold the best
   * candidate's answer: independent questions that were answered the same way. (With 1, a query
   * whose own question is not stored yet was served a neighbouring question's answer whenever that
   * question was stored in two wordings: "restore an archived project" → "archive a project".)
   * @default 2
   */
  support?: number | undefined;
  /** How far below the best candidate's similarity a supporting prompt may be. @default 0.35 */
  window?: number | undefined;
  /**
   * Below the threshold, the nearest stored prompt holding ANOTHER answer must be at least this much
   * less similar than the best candidate: a close rival means the query sits between two answers.
   * @default 0.12
   */
  margin?: number | undefined;
  /**
   * Whether two stored answers are the same (`SelectorCandidate.value`).
   * @default structural equality of the values (`sameValue`); candidates without a value never match
   */
  sameAnswer?: ((a: unknown, b: unknown) => boolean) | undefined;
  /** How the best candidate is ranked, and a near tie declined, among the accepted ones (`lexicalSelector`'s options). */
  weight?: number | undefined;
  /** `lexicalSelector`'s `margin`: decline when a candidate holding another answer scores within it. @default 0.02 */
  tieMargin?: number | undefined;
}

/** The measured defaults (see the package README: chosen on the BANKING77 development simulation). */
export const CONSENSUS_DEFAULTS = Object.freeze({ reach: 0.105, support: 2, window: 0.35, margin: 0.12, weight: 0.3, tieMargin: 0.02 });

const OPTION_NAMES = { reach: true, support: true, window: true, margin: true, sameAnswer: true, weight: true, tieMargin: true } satisfies Record<
  keyof ConsensusSelectorOptions,
  true
>;

const clip = (s: string) => JSON.stringify(s.length > 60 ? s.slice(0, 57) + '…' : s);

/**
 * Serves a match in the `reach` below the threshold only on neighbourhood evidence, the way a
 * nearest-neighbour classifier trusts a vote: at least `support` other stored prompts near the
 * query hold the same answer, and no stored prompt holding another answer comes within `margin`
 * of the best candidate. At or above the threshold (or when the texts are the same but for case,
 * punctuation, contractions and number formatting) the best candidate is served on its own, as
 * `lexicalSelector` would. Among the accepted candidates the best is ranked, and a near tie
 * declined, by `lexicalSelector`.
 *
 * Needs the layer's neighbourhood (`SelectorContext`, supplied by `@strata-cache/layer-semantic`,
 * which also offers the candidates in the `reach`); with one stored prompt (a pair) there is no
 * neighbourhood: only the threshold applies.
 */
export function consensusSelector(options: ConsensusSelectorOptions = {}): CandidateSelector {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError(`${PKG}: consensusSelector(options) expects an object`);
  for (const k of Object.keys(options)) {
    if (!(k in OPTION_NAMES))
      throw new InvalidOptionError(`${PKG}: unknown option "${k}" of consensusSelector (known: ${Object.keys(OPTION_NAMES).join(', ')})`, { field: k });
  }
  const o = { ...CONSENSUS_DEFAULTS, ...stripUndefined(options) };
  for (const k of ['reach', 'window', 'margin', 'weight', 'tieMargin'] as const) {
    const v = o[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (k === 'reach' && v > 1)) {
      throw new InvalidOptionError(
        `${PKG}: option "${k}" of consensusSelector must be a ${k === 'reach' ? 'similarity difference from 0 to 1' : 'non-negative number'}`,
        { field: k },
      );
    }
  }
  if (!Number.isSafeInteger(o.support) || o.support < 0)
    throw new InvalidOptionError(`${PKG}: option "support" of consensusSelector must be a non-negative integer`, { field: 'support' });
  if (options.sameAnswer !== undefined && typeof options.sameAnswer !== 'function') {
    throw new InvalidOptionError(`${PKG}: option "sameAnswer" of consensusSelector must be a function (a, b) => boolean`, { field: 'sameAnswer' });
  }
  const same = options.sameAnswer ?? sameValue;
  const rank = lexicalSelector({ weight: o.weight, margin: o.tieMargin, sameAnswer: same });
  return {
    name: 'consensus',
    reach: o.reach,
    select(query: string, candidates: readonly SelectorCandidate[], context?: SelectorContext): SelectorVerdict {
      const ranked = rank.select(query, candidates);
      if (ranked.pick === undefined) return ranked;
      const best = candidates[ranked.pick]!;
      // A layer without a neighbourhood offers only candidates at or above its threshold.
      if (!context || best.similarity >= context.threshold || sameText(query, best.text)) return ranked;
      let support = 0;
      let rival: SelectorCandidate | undefined;
      let self = false;
      for (const n of context.neighbours) {
        // A stored prompt a guard turned down is a different question: it neither supports nor rivals.
        if (n.accepted === false) continue;
        if (!self && n.text === best.text && n.similarity === best.similarity) {
          self = true;
          continue;
        }
        if (same(best.value, n.value)) {
          if (n.similarity >= best.similarity - o.window) support++;
        } else if (!rival || n.similarity > rival.similarity) rival = n;
      }
      if (rival && best.similarity - rival.similarity < o.margin) {
        return {
          pick: undefined,
          reason: `contested: ${clip(rival.text)} holds another answer at similarity ${rival.similarity.toFixed(4)}, within ${o.margin} of ${best.similarity.toFixed(4)}`,
        };
      }
      if (support < o.support) {
        return {
          pick: undefined,
          reason: `similarity ${best.similarity.toFixed(4)} is below the threshold ${context.threshold} and ${support} other stored prompt(s) near the query hold its answer (needs ${o.support})`,
        };
      }
      return ranked;
    },
  };
}

function stripUndefined<T extends object>(o: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  const out: { [K in keyof T]?: Exclude<T[K], undefined> } = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
