// Byte-identical requests reuse what was built from the first (key request, fingerprint): the
// answer must be exactly what building it afresh gives — per scope, key header, control header.
import { chatProfile } from '@strata-cache/core';
import { type ProviderServer, memoryCache, startOpenAIServer } from '@strata-cache/provider-test-servers';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { KeptRequests } from '../src/call.js';
import {
  type CachingOptions,
  type EndpointSpec,
  type FetchLike,
  type ProviderSpec,
  cacheControl,
  createProviderFetch,
  fetchAnswer,
  getCacheInfo,
} from '../src/index.js';

let server: ProviderServer;
beforeAll(async () => {
  server = await startOpenAIServer();
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => server.reset());

const chat: EndpointSpec = {
  path: '/chat/completions',
  profile: chatProfile,
  streams: true,
  usage: () => undefined,
  complete: (events) => events.at(-1)?.data === '[DONE]',
  fromEvents: () => ({ value: null }),
};

const SPEC: ProviderSpec<any> = {
  packageName: '@strata-cache/test',
  clientHint: 'new Client()',
  isClient: () => false,
  endpoints: () => [chat],
  keyHeaders: ['x-version', 'x-beta'],
  requestIdHeader: 'x-request-id',
};

function setup(options: Partial<CachingOptions> = {}) {
  const { cache } = memoryCache();
  const seen: unknown[] = [];
  const getOrLoad = cache.getOrLoad.bind(cache);
  cache.getOrLoad = ((request: unknown, ...rest: unknown[]) => {
    seen.push(request);
    return (getOrLoad as (...a: unknown[]) => unknown)(request, ...rest);
  }) as typeof cache.getOrLoad;
  const fetch = createProviderFetch({ cache, ...options }, SPEC, globalThis.fetch as FetchLike);
  return { cache, fetch, seen };
}

const url = () => `${server.baseURL}/chat/completions`;
const text = JSON.stringify({ model: 'gpt-4o-mini', temperature: 0, messages: [{ role: 'user', content: 'What is the refund window?' }] });
const post = (fetch: FetchLike, headers: Record<string, string> = {}, body = text) =>
  fetch(url(), { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });

describe('a request seen before', () => {
  it('is keyed from what was built for the first: one sealed key request, the same entry', async () => {
    const { fetch, cache, seen } = setup();
    expect(getCacheInfo(await post(fetch))?.hit).toBe(false);
    await cache.flush();
    for (let i = 0; i < 3; i++) expect(getCacheInfo(await post(fetch))?.hit).toBe(true);
    expect(new Set(seen).size).toBe(1);
    const kept = seen[0] as { messages: unknown[] };
    expect(Object.isFrozen(kept)).toBe(true);
    expect(Object.isFrozen(kept.messages[0])).toBe(true);
    expect(server.count('/chat/completions')).toBe(1);
  });

  it('a scope function still decides per call: the same body for two tenants is two entries', async () => {
    let tenant = 'acme';
    const { fetch, cache } = setup({ scope: ({ body }) => ({ tenant: `${tenant}-${(body as { model: string }).model}` }) });
    expect(getCacheInfo(await post(fetch))?.hit).toBe(false);
    await cache.flush();
    tenant = 'globex';
    expect(getCacheInfo(await post(fetch))?.hit).toBe(false);
    await cache.flush();
    tenant = 'acme';
    expect(getCacheInfo(await post(fetch))?.hit).toBe(true);
    expect(server.count('/chat/completions')).toBe(2);
  });

  it('key headers tell requests apart, value by value (no value can shift into the next)', async () => {
    const { fetch, cache } = setup();
    const variants = [{}, { 'x-version': 'ab', 'x-beta': 'c' }, { 'x-version': 'a', 'x-beta': 'bc' }, { 'x-version': 'abc' }, { 'x-beta': 'abc' }];
    for (const h of variants) {
      expect(getCacheInfo(await post(fetch, h))?.hit).toBe(false);
      await cache.flush();
    }
    for (const h of variants) expect(getCacheInfo(await post(fetch, h))?.hit).toBe(true);
    expect(server.count('/chat/completions')).toBe(variants.length);
  });

  it("control headers stay the call's own", async () => {
    const { fetch, cache } = setup();
    await post(fetch);
    await cache.flush();
    expect(getCacheInfo(await post(fetch, cacheControl({ bypass: true })))?.status).toBe('bypass');
    expect(getCacheInfo(await post(fetch, cacheControl({ tenant: 'other' })))?.hit).toBe(false);
    expect(getCacheInfo(await post(fetch))?.hit).toBe(true);
  });

  it("a caller's parsed body is never frozen (the kept parts get a parse of their own)", async () => {
    const { fetch } = setup();
    const parsed = JSON.parse(text) as { messages: unknown[] };
    await fetchAnswer(fetch, url(), { method: 'POST', headers: { 'content-type': 'application/json' }, body: text }, parsed as Record<string, unknown>);
    expect(Object.isFrozen(parsed)).toBe(false);
    expect(Object.isFrozen(parsed.messages)).toBe(false);
  });
});

describe('KeptRequests', () => {
  const config = { keyHeaders: [] as string[] } as never;
  const read = (body: string, href = 'http://x/v1/chat/completions') => ({
    url: new URL(href),
    headers: { get: () => null, keys: () => [] },
    text: body,
    init: {},
  });
  const parts = (n: number) => ({ n }) as never;

  it('keeps at most maxEntries and maxChars, dropping the oldest; a body over 64 KiB is not kept', () => {
    const kept = new KeptRequests(3, 1000);
    const ids = ['a', 'bb', 'cc', 'dd'].map((b) => kept.idOf(config, read(b))!);
    ids.forEach((id, i) => kept.keep(id, parts(i)));
    expect(kept.size).toBe(3);
    expect(kept.get(ids[0]!)).toBeUndefined();
    expect(kept.get(ids[3]!)).toEqual({ n: 3 });
    // Same text, another URL: another request.
    expect(kept.get(kept.idOf(config, read('dd', 'http://y/v1/chat/completions'))!)).toBeUndefined();
    const big = kept.idOf(config, read('x'.repeat(999)))!;
    kept.keep(big, parts(9));
    expect(kept.size).toBe(1);
    expect(kept.get(big)).toEqual({ n: 9 });
    expect(kept.idOf(config, read('x'.repeat(64 * 1024 + 1)))).toBeUndefined();
  });
});

describe('hit ids', () => {
  it('read back exactly, for any layer name and age, exact and semantic', async () => {
    const { computeKey, resolveScope } = await import('@strata-cache/core');
    const { encodeHitId } = await import('../src/hit-info.js');
    const key = computeKey({ q: 'x' }, resolveScope('t'));
    for (const layer of ['l1', 'l2', 'memory', 'é', '日本', 'a"b\\c', '']) {
      for (const ageMs of [0, 7, 26.4, 12_345_678]) {
        for (const similarity of [undefined, 0.9123]) {
          const id = encodeHitId({ key, layer, ageMs, ...(similarity !== undefined ? { similarity } : {}) });
          expect(getCacheInfo(new Headers({ 'x-strata-cache': 'hit', 'x-request-id': id }))).toEqual({
            hit: true,
            status: 'hit',
            layer,
            ageMs: Math.round(ageMs),
            key: key.hash,
            ...(similarity !== undefined ? { similarity } : {}),
          });
        }
      }
    }
  });
});
