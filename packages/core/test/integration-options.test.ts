import { describe, expect, it } from 'vitest';
import { InvalidOptionError, MultiLayerCache } from '../src/index.js';
import { checkCacheOption, checkIntegrationOptions, checkSemanticOption, checkStringListOption, checkTtlOption } from '../src/layer-kit.js';
import { TestLayer } from './helpers.js';

const PKG = '@strata-cache/example';
const known = ['cache', 'scope', 'ttlMs', 'tags', 'extra'];

function fieldOf(fn: () => void): string | undefined {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect((error as Error).message.startsWith(PKG + ': ')).toBe(true);
    return (error as InvalidOptionError).field;
  }
  throw new Error('no error thrown');
}

describe('integration option checks (shared by http, the adapters, ai-sdk, langchain)', () => {
  const cache = new MultiLayerCache({ layers: [new TestLayer('l1')] });

  it('accepts a cache and every shared option in its valid forms', () => {
    for (const scope of [undefined, 'acme', { tenant: 'acme', namespace: 'docs' }, () => 'acme']) {
      checkIntegrationOptions(PKG, { cache, scope, ttlMs: 1_000, tags: ['a', 'b'], extra: 1 }, { takenBy: 'withCache', known });
    }
    checkIntegrationOptions(PKG, { cache }, { takenBy: 'withCache', known: ['cache'] });
  });

  it('refuses what is not an options object, naming what takes it', () => {
    for (const bad of [undefined, null, 5, 'x', [cache]]) {
      expect(() => checkIntegrationOptions(PKG, bad, { takenBy: 'strataCache', known })).toThrow(/strataCache needs an options object with "cache"/);
    }
  });

  it('refuses unknown names and lists the known ones', () => {
    expect(() => checkIntegrationOptions(PKG, { cache, ttl: 5 }, { takenBy: 'withCache', known })).toThrow(
      /unknown option "ttl" \(known: cache, scope, ttlMs, tags, extra\)/,
    );
  });

  it('names the field of each bad shared option', () => {
    const take = (o: object) => () => checkIntegrationOptions(PKG, { cache, ...o }, { takenBy: 'withCache', known });
    expect(fieldOf(() => checkIntegrationOptions(PKG, {}, { takenBy: 'withCache', known }))).toBe('cache');
    expect(fieldOf(take({ cache: { getOrLoad() {} } }))).toBe('cache');
    expect(fieldOf(take({ scope: 5 }))).toBe('scope');
    expect(fieldOf(take({ scope: null }))).toBe('scope');
    for (const ttlMs of [0, -1, Number.POSITIVE_INFINITY, Number.NaN, '5']) expect(fieldOf(take({ ttlMs }))).toBe('ttlMs');
    for (const tags of ['a', [''], [1], {}]) expect(fieldOf(take({ tags }))).toBe('tags');
  });

  it('checks the extra cache methods an integration calls', () => {
    const shaped = { getOrLoad() {}, lookup() {}, store() {} };
    checkCacheOption(PKG, shaped);
    expect(() => checkCacheOption(PKG, shaped, ['keyFor'])).toThrow(/option "cache" must be a MultiLayerCache/);
    checkCacheOption(PKG, cache, ['keyFor']);
  });

  it('single checks keep the field they are given', () => {
    expect(fieldOf(() => checkTtlOption(PKG, 0, 'providerOptions.strata.ttlMs'))).toBe('providerOptions.strata.ttlMs');
    expect(fieldOf(() => checkStringListOption(PKG, ['ok', ''], 'keyHeaders'))).toBe('keyHeaders');
    checkSemanticOption(PKG, true);
    checkSemanticOption(PKG, { threshold: 0.9 });
    checkSemanticOption(PKG, {});
    for (const bad of [{ threshold: 2 }, { threshold: -1 }, { threshold: '0.9' }, null, 1])
      expect(fieldOf(() => checkSemanticOption(PKG, bad))).toBe('semantic');
  });
});
