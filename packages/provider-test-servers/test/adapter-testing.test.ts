import { describe, expect, it } from 'vitest';
import { renderMarkdown, sdkChoice } from '../src/index.js';

describe('sdkChoice', () => {
  it('runs openai 7 on Node >= 22 and openai 6 below, unless STRATA_OPENAI_SDK says otherwise', () => {
    expect(sdkChoice({}, '20.20.2').openai).toEqual({ major: 6, specifier: 'openai-v6' });
    expect(sdkChoice({}, '22.12.0').openai).toEqual({ major: 7, specifier: 'openai' });
    expect(sdkChoice({}, '24.1.0').openai).toEqual({ major: 7, specifier: 'openai' });
    expect(sdkChoice({ STRATA_OPENAI_SDK: '7' }, '20.20.2').openai.major).toBe(7);
    expect(sdkChoice({ STRATA_OPENAI_SDK: '6' }, '24.1.0').openai.major).toBe(6);
    expect(() => sdkChoice({ STRATA_OPENAI_SDK: '8' }, '24.1.0')).toThrow(/must be 6 or 7/);
  });
});

describe('renderMarkdown', () => {
  it('renders one table per section with the ratios to the bare SDK', () => {
    const md = renderMarkdown({
      description: 'd',
      openai: {
        sdk: 'openai@7.59.0',
        endpoint: 'chat.completions',
        iterations: 3,
        node: 'v22',
        cpus: 2,
        measuredAt: 't',
        results: {
          'json.bare': { medianMs: 1, p95Ms: 2, meanMs: 1 },
          'json.hit': { medianMs: 0.4, p95Ms: 1, meanMs: 0.5, vsBareMedian: 0.4, overheadMedianMs: -0.6 },
        },
      },
    });
    expect(md).toContain('## openai');
    expect(md).toContain('| json.hit | 0.4 | 1 | 0.5 | 0.4 | -0.6 |');
  });
});
