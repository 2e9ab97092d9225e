import type { SelectorCandidate, SelectorContext, SelectorNeighbour } from '@strata-cache/core';
import { InvalidOptionError } from '@strata-cache/core';
import { describe, expect, it } from 'vitest';
import { CONSENSUS_DEFAULTS, consensusSelector } from '../src/index.js';

const n = (text: string, similarity: number, value: unknown, accepted: boolean | undefined = true): SelectorNeighbour => ({
  text,
  similarity,
  value,
  accepted,
});
const ctx = (threshold: number, ...neighbours: SelectorNeighbour[]): SelectorContext => ({ threshold, neighbours });
const cand = (x: SelectorNeighbour): SelectorCandidate => ({ text: x.text, similarity: x.similarity, value: x.value });

describe('consensusSelector', () => {
  const sel = consensusSelector();
  const q = 'how can I get a new card';

  it('serves a lone candidate only from the threshold up; it reaches `reach` below it', () => {
    expect(sel.reach).toBe(CONSENSUS_DEFAULTS.reach);
    const best = n('I need a replacement card', 0.9, 'card-replacement');
    expect(sel.select(q, [cand(best)], ctx(0.965, best)).pick).toBeUndefined();
    expect(sel.select(q, [cand(best)], ctx(0.9, best))).toEqual({ pick: 0 });
    const strong = n('how can I get a new card?', 0.97, 'card-replacement');
    expect(sel.select('how can i get a new card please', [cand(strong)], ctx(0.965, strong))).toEqual({ pick: 0 });
    // A layer that gives no neighbourhood offers only candidates at or above its threshold.
    expect(sel.select(q, [cand(best)])).toEqual({ pick: 0 });
  });

  it('serves below the threshold when other stored prompts near the query hold the same answer and no rival is close', () => {
    const best = n('I need a replacement card', 0.9, 'card-replacement');
    const other = n('my card is broken, can I get another one', 0.8, 'card-replacement', undefined);
    const third = n('can you send me a new card', 0.75, 'card-replacement', undefined);
    const far = n('what is the exchange rate', 0.6, 'exchange-rate', undefined);
    expect(sel.select(q, [cand(best)], ctx(0.965, best, other, third, far))).toEqual({ pick: 0 });
    // One supporting prompt is not enough by default; it is with support: 1.
    expect(sel.select(q, [cand(best)], ctx(0.965, best, other, far)).pick).toBeUndefined();
    expect(consensusSelector({ support: 1 }).select(q, [cand(best)], ctx(0.965, best, other, far))).toEqual({ pick: 0 });
  });

  it('declines when a stored prompt holding another answer comes within `margin`', () => {
    const best = n('I need a replacement card', 0.9, 'card-replacement');
    const other = n('my card is broken, can I get another one', 0.85, 'card-replacement', undefined);
    const rival = n('when will my new card arrive', 0.8, 'card-arrival', undefined);
    const v = sel.select(q, [cand(best)], ctx(0.965, best, other, rival));
    expect(v.pick).toBeUndefined();
    expect(v.pick === undefined && v.reason).toMatch(/contested/);
  });

  it('a rival a guard turned down is a different question: it neither supports nor contests', () => {
    const best = n('I need a replacement card', 0.9, 'card-replacement');
    const other = n('my card is broken, can I get another one', 0.85, 'card-replacement', undefined);
    const third = n('can you send me a new card', 0.75, 'card-replacement', undefined);
    const rejected = n('I do not need a replacement card', 0.88, 'cancel-card', false);
    expect(sel.select(q, [cand(best)], ctx(0.965, best, rejected, other, third))).toEqual({ pick: 0 });
    const rejectedSame = n('I need 2 replacement cards', 0.89, 'card-replacement', false);
    expect(sel.select(q, [cand(best)], ctx(0.965, best, rejectedSame)).pick).toBeUndefined();
  });

  it('without support (no other prompt holding the answer) a match below the threshold is declined', () => {
    const best = n('I need a replacement card', 0.9, 'card-replacement');
    const unrelated = n('what is the exchange rate', 0.5, 'exchange-rate', undefined);
    const v = sel.select(q, [cand(best)], ctx(0.965, best, unrelated));
    expect(v.pick).toBeUndefined();
    expect(v.pick === undefined && v.reason).toMatch(/0 other stored prompt/);
  });

  it('texts the same but for case and punctuation are served on their own', () => {
    const best = n('Where is my order?', 0.913, 'order-status');
    expect(sel.select('where is my order', [cand(best)], ctx(0.965, best))).toEqual({ pick: 0 });
  });

  it('supporting prompts must lie within `window` of the best candidate', () => {
    const best = n('I need a replacement card', 0.9, 'card-replacement');
    const low = n('card', 0.65, 'card-replacement', undefined);
    expect(sel.select(q, [cand(best)], ctx(0.965, best, low)).pick).toBeUndefined();
    expect(consensusSelector({ window: 0.3, support: 1 }).select(q, [cand(best)], ctx(0.965, best, low))).toEqual({ pick: 0 });
  });

  it('validates its options', () => {
    expect(() => consensusSelector({ reach: 2 })).toThrow(InvalidOptionError);
    expect(() => consensusSelector({ support: 1.5 })).toThrow(InvalidOptionError);
    expect(() => consensusSelector({ margin: -1 })).toThrow(InvalidOptionError);
    expect(() => consensusSelector({ sameAnswer: 'x' as never })).toThrow(InvalidOptionError);
    expect(() => consensusSelector({ typo: 1 } as never)).toThrow(/unknown option "typo"/);
    expect(CONSENSUS_DEFAULTS).toMatchObject({ reach: 0.105, support: 2, window: 0.35, margin: 0.12 });
  });
});
