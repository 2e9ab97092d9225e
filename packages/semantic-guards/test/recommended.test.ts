import { describe, expect, it } from 'vitest';
import { RECOMMENDED_THRESHOLD, recommendedSetting, runGuards, verifierFits } from '../src/index.js';

describe('recommendedSetting', () => {
  it('is the rule-based guards and the consensus selector at the measured threshold, for every embedder', () => {
    for (const embedder of [
      { id: 'use-lite-512/t128', dimensions: 512 },
      { id: 'openai:text-embedding-3-small', dimensions: 1536 },
    ]) {
      const s = recommendedSetting(embedder);
      expect(s.threshold).toBe(RECOMMENDED_THRESHOLD.guardsOnly);
      expect(s.selector.reach).toBeCloseTo(RECOMMENDED_THRESHOLD.guardsOnly - RECOMMENDED_THRESHOLD.consensusFloor, 6);
      expect(s.guards.map((g) => g.name)).toEqual(['symbols', 'numbers', 'negation', 'direction', 'opposites', 'argument-order', 'entities']);
      expect(s.selector.name).toBe('consensus');
    }
    // The verifier still fits USE-lite, for those who add it themselves.
    expect(verifierFits({ id: 'use-lite-512/t128', dimensions: 512 })).toBe(true);
    expect(verifierFits({ id: 'other', dimensions: 512 })).toBe(false);
  });

  it('turns down the look-alike no similarity can: "after 30 days" / "within 30 days" (0.985 with USE-lite)', () => {
    const s = recommendedSetting({ id: 'use-lite-512', dimensions: 512 });
    const v = runGuards(s.guards, {
      query: 'Can I return an item after 30 days?',
      candidate: 'Can I return an item within 30 days?',
      similarity: 0.985,
      threshold: s.threshold,
    });
    expect(v).toMatchObject({ accept: false, guard: 'direction' });
  });
});
