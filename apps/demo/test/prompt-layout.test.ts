import { describe, expect, it } from 'vitest';
import { PrefixCache } from '../src/prefix-cache.js';
import { measurePromptLayout } from '../src/prompt-layout-run.js';

const words = (n: number, seed: string) => Array.from({ length: n }, (_, i) => `${seed}${i}`).join(' ');

describe('the simulated provider prompt cache', () => {
  it('OpenAI: the longest prefix seen before, from 1,024 tokens in 128-token steps, per namespace', () => {
    const c = new PrefixCache();
    const rules = words(900, 'rule'); // about 1,300 tokens
    expect(c.automatic('p1', [rules, 'user: first question'])).toBe(0);
    const cached = c.automatic('p1', [rules, 'user: another question']);
    expect(cached).toBeGreaterThanOrEqual(1024);
    expect(cached % 128).toBe(0);
    expect(cached).toBeLessThanOrEqual(Math.round(rules.length / 4));
    expect(c.automatic('p2', [rules, 'user: another question'])).toBe(0); // another organisation
    expect(c.automatic('p1', ['system: today is Tuesday', rules, 'user: another question'])).toBe(0); // the prefix moved
    expect(c.automatic('p1', ['short prompt'])).toBe(0);
  });

  it('Anthropic: only prefixes ending at a breakpoint; written first, read after', () => {
    const c = new PrefixCache();
    const rules = words(900, 'rule');
    const blocks = (q: string, mark = true) => [
      { text: rules, breakpoint: mark },
      { text: q, breakpoint: false },
    ];
    const first = c.breakpoints('a', blocks('q1'));
    expect(first.read).toBe(0);
    expect(first.write).toBeGreaterThanOrEqual(1024);
    expect(c.breakpoints('a', blocks('q2'))).toEqual({ read: first.write, write: 0 });
    expect(c.breakpoints('b', blocks('q2', false))).toEqual({ read: 0, write: 0 });
  });
});

describe('prompt layout measurement', () => {
  for (const api of ['openai', 'anthropic'] as const) {
    it(`${api}: the laid-out prompts get most of their tokens from the provider cache, the templated ones none`, async () => {
      const r = await measurePromptLayout({ api, requests: 40, seed: 7 });
      expect(r.without.upstreamCalls).toBe(40);
      expect(r.with.upstreamCalls).toBe(40);
      expect(r.without.cachedShare).toBe(0);
      expect(r.with.cachedShare).toBeGreaterThan(0.5);
      expect(r.with.promptUsd).toBeLessThan(r.without.promptUsd);
    }, 30_000);
  }
});
