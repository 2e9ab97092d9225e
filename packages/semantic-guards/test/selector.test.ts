import { InvalidOptionError } from '@strata-cache/core';
import { describe, expect, it } from 'vitest';
import { lexicalSelector, sameValue, wordOverlap } from '../src/index.js';

describe('wordOverlap', () => {
  it('is the Jaccard overlap of word stems (function words included)', () => {
    expect(wordOverlap('Reset my password', 'reset my passwords')).toBe(1);
    expect(wordOverlap('reset my password', 'change my password')).toBeCloseTo(2 / 4);
    expect(wordOverlap('', '')).toBe(1);
    expect(wordOverlap('alpha', 'beta')).toBe(0);
  });
});

describe('lexicalSelector', () => {
  const sel = lexicalSelector({ weight: 0.3, margin: 0.02 });

  it('picks a lone candidate and has nothing to pick from none', () => {
    expect(sel.select('q', [{ text: 'x', similarity: 0.9 }])).toEqual({ pick: 0 });
    expect(sel.select('q', []).pick).toBeUndefined();
  });

  it('prefers, between near-equal matches, the one sharing more of the query words', () => {
    const v = sel.select('The `field` method selects a schema field by column name', [
      { text: 'The `column` method returns a column', similarity: 0.93 },
      { text: 'The `field` method selects a schema field by its column name or index', similarity: 0.92 },
    ]);
    expect(v).toEqual({ pick: 1 });
  });

  it('keeps the clearly nearer candidate when word overlap does not overturn it', () => {
    const v = sel.select('how do I reset my password', [
      { text: 'how can I reset my password', similarity: 0.97 },
      { text: 'how do I reset my router', similarity: 0.8 },
    ]);
    expect(v).toEqual({ pick: 0 });
  });

  it('declines when two different stored prompts score within the margin, naming both', () => {
    const v = sel.select('what does the basic plan cost', [
      { text: 'what does the basic plan cost per month', similarity: 0.95 },
      { text: 'what does the basic plan cost per year', similarity: 0.95 },
    ]);
    expect(v.pick).toBeUndefined();
    expect(v.pick === undefined && v.reason).toMatch(
      /^ambiguous: "what does the basic plan cost per (month|year)" and "what does the basic plan cost per (month|year)" score within 0\.02$/,
    );
    // margin 0 never declines
    expect(
      lexicalSelector({ margin: 0 }).select('x', [
        { text: 'a', similarity: 0.9 },
        { text: 'b', similarity: 0.9 },
      ]).pick,
    ).toBe(0);
  });

  it('validates its options', () => {
    expect(() => lexicalSelector({ weight: -1 })).toThrow(InvalidOptionError);
    expect(() => lexicalSelector({ margin: Number.NaN })).toThrow(/margin/);
    expect(() => lexicalSelector({ wieght: 1 } as never)).toThrow(/unknown option "wieght"/);
  });

  it('does not call two candidates holding the same answer ambiguous (SelectorCandidate.value)', () => {
    const answer = { choices: [{ message: { role: 'assistant', content: 'Tap Settings, then Reset password.' } }] };
    const same = structuredClone(answer);
    const other = { choices: [{ message: { role: 'assistant', content: 'Go to Billing.' } }] };
    const near = (value: unknown, value2: unknown) =>
      sel.select('how do I reset my password', [
        { text: 'how can I reset my password', similarity: 0.93, value },
        { text: 'how do I reset the password', similarity: 0.929, value: value2 },
      ]);
    // Same answer (structurally equal, not the same object): serve the better match.
    expect(near(answer, same).pick).toBeDefined();
    // Different answers within the margin: a coin toss, declined.
    expect(near(answer, other).pick).toBeUndefined();
    // No values (a layer that does not supply them): as before, declined.
    expect(near(undefined, undefined).pick).toBeUndefined();
  });

  it('looks past same-answer candidates for the real rival', () => {
    const v = sel.select('q', [
      { text: 'first', similarity: 0.95, value: 'A' },
      { text: 'second', similarity: 0.949, value: 'A' },
      { text: 'third', similarity: 0.948, value: 'B' },
    ]);
    expect(v.pick).toBeUndefined();
    expect(v.pick === undefined && v.reason).toMatch(/"third"/);
  });

  it('takes a sameAnswer of your own (e.g. answers judged equivalent)', () => {
    const byIntent = lexicalSelector({ sameAnswer: (a, b) => (a as { intent: string }).intent === (b as { intent: string }).intent });
    const v = byIntent.select('card arrival', [
      { text: 'when does my card arrive', similarity: 0.9, value: { intent: 'card_arrival', text: 'Cards arrive in 3-5 days.' } },
      { text: 'when will the card arrive', similarity: 0.899, value: { intent: 'card_arrival', text: 'It takes 3 to 5 working days.' } },
    ]);
    expect(v.pick).toBeDefined();
    expect(() => lexicalSelector({ sameAnswer: 3 as never })).toThrow(InvalidOptionError);
  });
});

describe('sameValue', () => {
  it('compares stored answers structurally, never equal without a value', () => {
    expect(sameValue({ a: 1, b: [2, 3] }, { b: [2, 3], a: 1 })).toBe(true);
    expect(sameValue('x', 'x')).toBe(true);
    expect(sameValue('x', 'y')).toBe(false);
    expect(sameValue(undefined, undefined)).toBe(false);
    expect(sameValue(1, '1')).toBe(false);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(sameValue(cyclic, { self: {} })).toBe(false);
  });
});
