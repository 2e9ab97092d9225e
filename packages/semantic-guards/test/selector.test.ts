import { InvalidOptionError } from '@strata-cache/core';
import { describe, expect, it } from 'vitest';
import { lexicalSelector, wordOverlap } from '../src/index.js';

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
    expect(v.pick === undefined && v.reason).toMatch(/^ambiguous: "what does the basic plan cost per (month|year)" and "what does the basic plan cost per (month|year)" score within 0\.02$/);
    // margin 0 never declines
    expect(lexicalSelector({ margin: 0 }).select('x', [{ text: 'a', similarity: 0.9 }, { text: 'b', similarity: 0.9 }]).pick).toBe(0);
  });

  it('validates its options', () => {
    expect(() => lexicalSelector({ weight: -1 })).toThrow(InvalidOptionError);
    expect(() => lexicalSelector({ margin: Number.NaN })).toThrow(/margin/);
    expect(() => lexicalSelector({ wieght: 1 } as never)).toThrow(/unknown option "wieght"/);
  });
});
