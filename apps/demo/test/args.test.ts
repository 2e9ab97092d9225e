import { describe, expect, it } from 'vitest';
import { parseDemoArgs } from '../src/args.js';

describe('demo command line', () => {
  it('accepts the options after the literal `--` that `pnpm demo -- …` passes through', () => {
    const parsed = parseDemoArgs(['--', '--requests', '300', '--seed', '7', '--no-semantic'], {});
    expect(parsed).toEqual({ options: expect.objectContaining({ requests: 300, seed: 7, semantic: false }) });
  });

  it('parses options given without `--` the same way', () => {
    expect(parseDemoArgs(['--requests', '300'], {})).toEqual({ options: expect.objectContaining({ requests: 300 }) });
  });

  it('takes the Redis URL from --redis, else from REDIS_URL', () => {
    expect(parseDemoArgs([], { REDIS_URL: 'redis://a:1' })).toEqual({ options: expect.objectContaining({ redisUrl: 'redis://a:1' }) });
    expect(parseDemoArgs(['--redis', 'redis://b:2'], { REDIS_URL: 'redis://a:1' })).toEqual({
      options: expect.objectContaining({ redisUrl: 'redis://b:2' }),
    });
    expect(parseDemoArgs([], {})).toEqual({ options: expect.not.objectContaining({ redisUrl: expect.anything() }) });
  });

  it('--workers needs a Redis, a whole number, and does not combine with --instances', () => {
    expect(parseDemoArgs(['--workers', '4', '--redis', 'redis://a:1'], {})).toEqual({
      options: expect.objectContaining({ workers: 4, redisUrl: 'redis://a:1' }),
    });
    expect(parseDemoArgs(['--workers', '4', '--no-compare'], { REDIS_URL: 'redis://a:1' })).toEqual({
      options: expect.objectContaining({ workers: 4, compare: false }),
    });
    expect(parseDemoArgs(['--workers', '4'], {})).toEqual({ error: expect.stringMatching(/--workers needs --redis/) });
    expect(parseDemoArgs(['--workers', '2.5', '--redis', 'redis://a:1'], {})).toEqual({ error: expect.stringMatching(/--workers must be a whole number/) });
    expect(parseDemoArgs(['--workers', '2', '--instances', '2', '--redis', 'redis://a:1'], {})).toEqual({ error: expect.stringMatching(/do not combine/) });
  });

  it('returns help and errors instead of exiting', () => {
    expect(parseDemoArgs(['--', '-h'], {})).toEqual({ help: expect.stringContaining('--requests N') });
    expect(parseDemoArgs(['--requests', 'many'], {})).toEqual({ error: expect.stringMatching(/--requests must be a number/) });
    expect(parseDemoArgs(['--fault', 'other'], {})).toEqual({ error: expect.stringMatching(/--fault must be/) });
    expect(parseDemoArgs(['stray'], {})).toEqual({ error: expect.stringMatching(/stray/) });
  });
});
