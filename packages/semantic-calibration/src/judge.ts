/**
 * Answer judges: did the stored answer say what a fresh answer to the same request says?
 * The calibrator learns from their scores; it models their noise, so a judge only has to rank
 * right answers above wrong ones, not be calibrated itself.
 */
import { InvalidOptionError, type Embedder, type SemanticGuard } from '@strata-cache/core';
import { analyze, runGuards } from '@strata-cache/semantic-guards';
import type { JudgedOutcome } from './types.js';

export interface AnswerJudgeInput {
  /** The new request's compared text. */
  readonly query: string;
  /** The prompt stored with the candidate. */
  readonly cachedPrompt?: string | undefined;
  /** The candidate's stored answer, as text. */
  readonly cachedAnswer: string;
  /** The fresh upstream answer, as text. */
  readonly freshAnswer: string;
  /** Embeddings of the two answers when the caller already has them (skips embedding). */
  readonly cachedAnswerVector?: Float32Array | undefined;
  readonly freshAnswerVector?: Float32Array | undefined;
  /**
   * Stored answers of the lookup's other candidates that differ from the cached one (the
   * nearest rivals). A fresh answer that is closer to a rival than to the cached answer says the
   * cached one answers another question: the contrast catches answers that overlap (the same
   * facts, a different point) which a plain comparison calls the same.
   */
  readonly rivals?: ReadonlyArray<{ readonly text: string; readonly vector?: Float32Array | undefined }> | undefined;
  readonly signal?: AbortSignal | undefined;
}

export interface AnswerVerdict extends JudgedOutcome {
  /** Score in [0, 1]: higher means the answers agree. */
  readonly score: number;
  /** The answers are (near-)verbatim the same: the stored one was certainly right. */
  readonly certain?: boolean;
  readonly reason?: string;
}

/** Compares a stored answer with a fresh one. Pluggable: embeddings (default), an LLM, a rule. */
export interface AnswerJudge {
  readonly name: string;
  judge(input: AnswerJudgeInput): Promise<AnswerVerdict>;
}

export interface EmbeddingAnswerJudgeOptions {
  /** The embedder for answers (usually the semantic layer's). */
  embedder: Embedder;
  /**
   * Guards run on the two answers; a rejection halves the score. Off by default: on multi-sentence
   * answers the look-alike guards fire on wording far more often than on a different answer
   * (measured in the support-bot simulation: the judge's AUC drops from 0.97 to 0.94 with the numbers
   * guard and to 0.89 with the negation guard). Useful for short, fact-like answers.
   * @default []
   */
  guards?: readonly SemanticGuard[] | undefined;
  /**
   * Weight of the lexical agreement (distinctive words both answers use, weighted by how rare
   * they are among the answers this judge has seen) against the embedding cosine.
   * @default 0.5
   */
  lexicalWeight?: number | undefined;
  /**
   * Answers remembered for the word-rarity statistics (oldest forgotten first).
   * @default 5000
   */
  maxDocuments?: number | undefined;
  /**
   * How strongly a rival answer (`AnswerJudgeInput.rivals`) that agrees with the fresh answer
   * about as well as the cached one does lowers the score: the score drops by this much per unit
   * of agreement the rival has beyond `agreement − contrastMargin`. 0 ignores rivals.
   * @default 2
   */
  contrastWeight?: number | undefined;
  /**
   * A rival must come this close (in agreement with the fresh answer) to the cached answer
   * before it lowers the score.
   * @default 0.05
   */
  contrastMargin?: number | undefined;
}

/**
 * The default judge: cosine of the two answers' embeddings, blended with a lexical agreement score
 * (TF-IDF cosine; rarity learned from the answers it has judged, so boilerplate every answer shares
 * counts for little); optionally guards on the answers.
 */
export function embeddingAnswerJudge(options: EmbeddingAnswerJudgeOptions): AnswerJudge {
  if (!options || typeof options !== 'object' || !options.embedder || typeof options.embedder.embed !== 'function') {
    throw new InvalidOptionError('@strata-cache/semantic-calibration: embeddingAnswerJudge({ embedder }) needs an Embedder', { field: 'embedder' });
  }
  const known = ['embedder', 'guards', 'lexicalWeight', 'maxDocuments', 'contrastWeight', 'contrastMargin'];
  for (const k of Object.keys(options)) {
    if (!known.includes(k)) {
      throw new InvalidOptionError(`@strata-cache/semantic-calibration: unknown option "${k}" of embeddingAnswerJudge (known: ${known.join(', ')})`, {
        field: k,
      });
    }
  }
  const range = (field: string, v: unknown, lo: number, hi: number, def: number): number => {
    if (v === undefined) return def;
    if (typeof v !== 'number' || !(v >= lo && v <= hi))
      throw new InvalidOptionError(`@strata-cache/semantic-calibration: option "${field}" must be a number from ${lo} to ${hi}`, { field });
    return v;
  };
  const lexicalWeight = range('lexicalWeight', options.lexicalWeight, 0, 1, 0.5);
  const contrastWeight = range('contrastWeight', options.contrastWeight, 0, 100, 2);
  const contrastMargin = range('contrastMargin', options.contrastMargin, 0, 1, 0.05);
  if (options.maxDocuments !== undefined && !(Number.isSafeInteger(options.maxDocuments) && options.maxDocuments >= 1)) {
    throw new InvalidOptionError('@strata-cache/semantic-calibration: option "maxDocuments" must be a positive integer', { field: 'maxDocuments' });
  }
  const guards = options.guards ?? [];
  const lexical = new LexicalAgreement(options.maxDocuments ?? 5000);
  const { embedder } = options;
  return {
    name: 'embedding',
    async judge(input: AnswerJudgeInput): Promise<AnswerVerdict> {
      // An answer the embedder cannot represent (a script it never learned) has a vector that
      // agrees with any other such answer, and the word statistics miss the same words: the
      // judge cannot tell such answers apart, so only the same text agrees.
      const blind = embedder.represents !== undefined && (!embedder.represents(input.cachedAnswer) || !embedder.represents(input.freshAnswer));
      let u = input.cachedAnswerVector;
      let v = input.freshAnswerVector;
      const rivals = contrastWeight > 0 ? (input.rivals ?? []) : [];
      const rivalVecs: Array<Float32Array | undefined> = rivals.map((r) => r.vector);
      const need: string[] = [];
      if (!u) need.push(input.cachedAnswer);
      if (!v) need.push(input.freshAnswer);
      rivals.forEach((r, i) => {
        if (!rivalVecs[i]) need.push(r.text);
      });
      if (need.length > 0 && !blind) {
        const out = await embedder.embed(need, input.signal ? { signal: input.signal } : undefined);
        if (out.length < need.length)
          throw new InvalidOptionError('@strata-cache/semantic-calibration: the embedder returned too few vectors', { field: 'embedder' });
        let i = 0;
        if (!u) u = out[i++];
        if (!v) v = out[i++];
        rivals.forEach((_, j) => {
          if (!rivalVecs[j]) rivalVecs[j] = out[i++];
        });
      }
      const cos = blind ? 0 : cosine(u!, v!);
      const lex = lexical.score(input.cachedAnswer, input.freshAnswer);
      const agreement = blind ? sameText(input.cachedAnswer, input.freshAnswer) : Math.max(0, Math.min(1, (1 - lexicalWeight) * cos + lexicalWeight * lex));
      // Contrast: how well the fresh answer agrees with the best rival, against the cached answer.
      let rivalBest = 0;
      rivals.forEach((r, i) => {
        const a = blind
          ? sameText(r.text, input.freshAnswer)
          : (1 - lexicalWeight) * cosine(rivalVecs[i]!, v!) + lexicalWeight * lexical.score(r.text, input.freshAnswer);
        if (a > rivalBest) rivalBest = a;
      });
      const penalty = rivals.length > 0 ? contrastWeight * Math.max(0, rivalBest - (agreement - contrastMargin)) : 0;
      let score = Math.max(0, Math.min(1, agreement - penalty));
      const g = runGuards(guards, { query: input.freshAnswer, candidate: input.cachedAnswer, similarity: cos, threshold: 0 });
      if (!g.accept) score /= 2;
      // Near-verbatim answers: the stored answer is what a fresh call says (unless a rival says it as well).
      const certain = g.accept && penalty === 0 && cos >= 0.97 && lex >= 0.9;
      const why = `${blind ? 'an answer the embedder cannot represent (only the same text agrees)' : `answer cosine ${cos.toFixed(3)}`}, lexical ${lex.toFixed(3)}${rivals.length ? `, best rival ${rivalBest.toFixed(3)}` : ''}`;
      return { score, certain, reason: g.accept ? why : `${g.guard}: ${g.reason}` };
    },
  };
}

export interface LlmAnswerJudgeOptions {
  /**
   * Sends a prompt to a model and resolves its text reply (wire it to your provider client, with a
   * small, cheap model). The judge asks for one word: SAME or DIFFERENT.
   */
  ask: (prompt: string, options: { signal?: AbortSignal }) => Promise<string>;
  /** Characters of each answer included in the prompt. @default 2000 */
  maxAnswerChars?: number | undefined;
}

/** A judge backed by a language model: asks whether the stored answer is an acceptable answer in place of the fresh one. */
export function llmAnswerJudge(options: LlmAnswerJudgeOptions): AnswerJudge {
  if (!options || typeof options.ask !== 'function') {
    throw new InvalidOptionError('@strata-cache/semantic-calibration: llmAnswerJudge({ ask }) needs an ask(prompt) function', { field: 'ask' });
  }
  const max = options.maxAnswerChars ?? 2000;
  const clip = (s: string) => (s.length > max ? s.slice(0, max) + ' […]' : s);
  return {
    name: 'llm',
    async judge(input: AnswerJudgeInput): Promise<AnswerVerdict> {
      const prompt = [
        'A user asked a question. Answer A was given to an earlier, similar question; answer B is a fresh answer to this one.',
        "Would answer A be an acceptable answer to the user's question, giving the same information as answer B?",
        'Reply with exactly one word: SAME or DIFFERENT.',
        '',
        `Question: ${clip(input.query)}`,
        '',
        `Answer A: ${clip(input.cachedAnswer)}`,
        '',
        `Answer B: ${clip(input.freshAnswer)}`,
      ].join('\n');
      const reply = (await options.ask(prompt, input.signal ? { signal: input.signal } : {})).trim().toUpperCase();
      const same = /\bSAME\b/.test(reply) && !/\bDIFFERENT\b/.test(reply);
      return { score: same ? 1 : 0, reason: `model replied ${JSON.stringify(reply.slice(0, 40))}` };
    },
  };
}

function cosine(a: Float32Array, b: Float32Array): number {
  let s = 0;
  let na = 0;
  let nb = 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    s += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return na === 0 || nb === 0 ? 0 : s / Math.sqrt(na * nb);
}

/**
 * TF-IDF cosine of two answers, with document frequencies learned from the answers judged so far:
 * words every answer uses ("app", "please", an assistant's sign-off) weigh little, the words that
 * carry an answer's substance weigh a lot.
 */
export class LexicalAgreement {
  private readonly df = new Map<string, number>();
  private readonly seen = new Map<string, { readonly all: readonly string[]; readonly distinct: readonly string[] }>();

  constructor(private readonly maxDocuments = 5000) {}

  private terms(text: string): string[] {
    const known = this.seen.get(text);
    if (known) return [...known.all];
    const t: string[] = [];
    for (const tok of analyze(text).tokens) if (tok.kind !== 'symbol') t.push(tok.stem);
    const distinct = [...new Set(t)];
    for (const w of distinct) this.df.set(w, (this.df.get(w) ?? 0) + 1);
    this.seen.set(text, { all: t, distinct });
    if (this.seen.size > this.maxDocuments) {
      const [oldText, old] = this.seen.entries().next().value as [string, { readonly distinct: readonly string[] }];
      this.seen.delete(oldText);
      for (const w of old.distinct) {
        const n = (this.df.get(w) ?? 1) - 1;
        if (n <= 0) this.df.delete(w);
        else this.df.set(w, n);
      }
    }
    return t;
  }

  private vector(terms: readonly string[]): Map<string, number> {
    const tf = new Map<string, number>();
    for (const w of terms) tf.set(w, (tf.get(w) ?? 0) + 1);
    const n = this.seen.size;
    const v = new Map<string, number>();
    let norm = 0;
    for (const [w, c] of tf) {
      const x = (1 + Math.log(c)) * Math.log((n + 1) / ((this.df.get(w) ?? 0) + 0.5));
      if (x <= 0) continue;
      v.set(w, x);
      norm += x * x;
    }
    norm = Math.sqrt(norm) || 1;
    for (const [w, x] of v) v.set(w, x / norm);
    return v;
  }

  /** Agreement in [0, 1]. Also records both texts in the statistics. */
  score(a: string, b: string): number {
    const ta = this.terms(a);
    const tb = this.terms(b);
    const va = this.vector(ta);
    const vb = this.vector(tb);
    let s = 0;
    for (const [w, x] of va) s += x * (vb.get(w) ?? 0);
    return Math.max(0, Math.min(1, s));
  }
}

/** Agreement of two answers the embedder cannot represent: 1 for the same text, else 0. */
function sameText(a: string, b: string): number {
  return a.trim() === b.trim() ? 1 : 0;
}
