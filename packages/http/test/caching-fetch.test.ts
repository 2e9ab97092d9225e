// The caching fetch on its own, as any fetch caller (not an SDK) uses it: every body form, a
// Request as input, control headers, pass-through counting and option checks.
import { InvalidOptionError } from '@strata-cache/core';
import { type ProviderServer, memoryCache, startOpenAIServer, stored } from '@strata-cache/provider-test-servers';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type CachingOptions,
  type FetchLike,
  type ProviderSpec,
  cacheControl,
  createCachedClient,
  createProviderCachingFetch,
  createProviderFetch,
  describeRequest,
  fetchAnswer,
  getCacheInfo,
  uncachedRequests,
  withCachingFetch,
} from '../src/index.js';
import { chatEndpoint, testSpec } from './spec.js';
import { KeptBudget, KeptRequests, MAX_SAME_LOOKUP, SEEN_ONCE, lookupKey } from '../src/call.js';

let server: ProviderServer;
beforeAll(async () => {
  server = await startOpenAIServer();
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => server.reset());

const SPEC = testSpec(chatEndpoint(), ['openai-beta']);

function setup(options: Partial<CachingOptions> = {}, spec: ProviderSpec<any> = SPEC) {
  const { cache, layer } = memoryCache();
  const fetch = createProviderFetch({ cache, ...options }, spec, globalThis.fetch as FetchLike);
  return { cache, layer, fetch };
}

const url = () => `${server.baseURL}/chat/completions`;
const body = (content: string) => JSON.stringify({ model: 'gpt-4o-mini', temperature: 0, messages: [{ role: 'user', content }] });
const headers = { 'content-type': 'application/json' };
type HeadersForm = NonNullable<RequestInit['headers']>;

describe('request forms the caching fetch caches', () => {
  it('a string body, a Uint8Array, an ArrayBuffer, a Blob and a stream body all share one entry', async () => {
    const { fetch, cache } = setup();
    const text = body('every body form');
    const first = await fetch(url(), { method: 'POST', headers, body: text });
    expect(getCacheInfo(first)).toEqual({ hit: false, status: 'miss' });
    const live = await first.json();
    await cache.flush();
    const bytes = new TextEncoder().encode(text);
    const forms: Array<NonNullable<RequestInit['body']>> = [
      bytes,
      bytes.buffer.slice(0),
      new DataView(bytes.buffer.slice(0)),
      new Blob([text]),
      new ReadableStream({ start: (c) => (c.enqueue(bytes), c.close()) }),
    ];
    for (const form of forms) {
      const init = { method: 'POST', headers, body: form, ...(form instanceof ReadableStream ? { duplex: 'half' } : {}) } as RequestInit;
      const r = await fetch(url(), init);
      expect(getCacheInfo(r)?.hit).toBe(true);
      expect(await r.json()).toEqual(live);
    }
    expect(server.count('/chat/completions')).toBe(1);
  });

  it('a Request object is cached like url + init; the provider receives the same request', async () => {
    const { fetch, cache, layer } = setup();
    const live = await (
      await fetch(new Request(url(), { method: 'POST', headers: { ...headers, 'openai-beta': 'assistants=v2' }, body: body('as a Request') }))
    ).json();
    expect(server.requests[0]!.body).toEqual(JSON.parse(body('as a Request')));
    expect(server.requests[0]!.headers['openai-beta']).toBe('assistants=v2');
    await cache.flush();
    expect(stored(layer)).toHaveLength(1);
    const hit = await fetch(url(), { method: 'POST', headers: { 'openai-beta': 'assistants=v2' }, body: body('as a Request') });
    expect(getCacheInfo(hit)?.hit).toBe(true);
    expect(await hit.json()).toEqual(live);
    // Its key headers count: without the beta header it is another request.
    await fetch(new Request(url(), { method: 'POST', headers, body: body('as a Request') }));
    expect(server.count()).toBe(2);
    // init given with a Request replaces the Request's own fields, as fetch does.
    const r = await fetch(new Request(url(), { method: 'POST', body: body('ignored') }), {
      method: 'POST',
      headers: { 'openai-beta': 'assistants=v2' },
      body: body('as a Request'),
    });
    expect(getCacheInfo(r)?.hit).toBe(true);
  });

  it('control headers steer a Request too and never reach the provider', async () => {
    const { fetch, cache, layer } = setup();
    await fetch(new Request(url(), { method: 'POST', headers: { ...cacheControl({ bypass: true }), ...headers }, body: body('control') }));
    await fetch(new Request(url(), { method: 'GET', headers: cacheControl({ ttlMs: 5 }) }));
    await cache.flush();
    expect(stored(layer)).toHaveLength(0);
    for (const r of server.requests) expect(Object.keys(r.headers).filter((h) => h.startsWith('x-strata-'))).toEqual([]);
  });

  it('headers as a record, a list of pairs or a Headers are read alike: same key headers, control headers obeyed and stripped', async () => {
    const { fetch, cache } = setup();
    const text = body('header forms');
    // Key headers as fetch reads them: any case, HTTP whitespace trimmed, a repeated name joined with ", ".
    const forms: HeadersForm[] = [
      { ...headers, 'openai-beta': 'a, b' },
      { ...headers, 'OpenAI-Beta': ' a, b\t' },
      [
        ['content-type', 'application/json'],
        ['openai-beta', 'a'],
        ['OPENAI-BETA', 'b'],
      ],
      new Headers({ ...headers, 'openai-beta': 'a, b' }),
      // Any iterable of pairs, as fetch takes it.
      new Map([['openai-beta', 'a, b']]) as unknown as HeadersForm,
    ];
    const first = await fetch(url(), { method: 'POST', headers: forms[0]!, body: text });
    expect(getCacheInfo(first)?.hit).toBe(false);
    await cache.flush();
    for (const form of forms.slice(1)) expect(getCacheInfo(await fetch(url(), { method: 'POST', headers: form, body: text }))?.hit).toBe(true);
    // Another value of a key header is another request.
    expect(getCacheInfo(await fetch(url(), { method: 'POST', headers: { 'openai-beta': 'a' }, body: text }))?.hit).toBe(false);
    // A control header in any form and case is obeyed and never sent.
    for (const form of [{ 'X-Strata-Cache-Mode': 'bypass' }, [['x-strata-cache-mode', 'bypass']], new Headers({ 'x-strata-cache-mode': 'bypass' })]) {
      const r = await fetch(url(), { method: 'POST', headers: form as HeadersForm, body: text });
      expect(getCacheInfo(r)).toEqual({ hit: false, status: 'bypass' });
    }
    expect(server.count()).toBe(5);
    for (const r of server.requests) expect(Object.keys(r.headers).filter((h) => h.startsWith('x-strata-'))).toEqual([]);
    expect(server.requests[0]!.headers['openai-beta']).toBe('a, b');
    // A malformed list is refused as fetch refuses it.
    await expect(fetch(url(), { method: 'POST', headers: [['openai-beta']] as unknown as [string, string][], body: text })).rejects.toThrow(TypeError);
  });

  it('what cannot be cached passes through unchanged and is counted by reason', async () => {
    const { fetch, cache, layer } = setup();
    const form = new FormData();
    form.set('model', 'gpt-4o-mini');
    await fetch(url(), { method: 'POST', body: form });
    await fetch(url(), { method: 'POST', body: new URLSearchParams({ model: 'gpt-4o-mini' }) });
    await fetch(url(), { method: 'POST', headers, body: new Uint8Array([0x7b, 0xff, 0x7d]) });
    await fetch(url(), { method: 'POST', headers, body: '[1, 2]' });
    await fetch(url(), { method: 'POST', headers, body: '{"model":' });
    // A stream body that is not JSON still reaches the provider in full.
    await fetch(url(), {
      method: 'POST',
      headers,
      body: new ReadableStream({ start: (c) => (c.enqueue(new TextEncoder().encode('not json')), c.close()) }),
      duplex: 'half',
    } as RequestInit);
    // Not candidates at all, so not counted: another path, another method.
    await fetch(`${server.baseURL}/models`, { method: 'POST', headers, body: body('x') });
    await fetch(url(), { method: 'GET' });
    await cache.flush();
    expect(stored(layer)).toHaveLength(0);
    expect(server.count()).toBe(8);
    expect(server.requests[0]!.headers['content-type']).toMatch(/^multipart\/form-data/);
    expect(server.requests[5]!.raw).toBe('not json');
    expect(uncachedRequests(fetch)).toEqual({ 'body-form': 2, 'body-not-utf8': 1, 'body-not-json': 3 });
  });
});

describe('status of a streamed request', () => {
  it('miss, then hit; a stream asked to bypass the cache says so and is not recorded', async () => {
    const { fetch, cache, layer } = setup();
    const stream = JSON.stringify({ ...JSON.parse(body('streamed')), stream: true });
    const first = await fetch(url(), { method: 'POST', headers, body: stream });
    expect(getCacheInfo(first)).toEqual({ hit: false, status: 'miss' });
    const live = await first.text();
    await cache.flush();
    const second = await fetch(url(), { method: 'POST', headers, body: stream });
    expect(getCacheInfo(second)).toMatchObject({ hit: true, status: 'hit', layer: 'l1' });
    expect(await second.text()).toBe(live);
    const bypassed = await fetch(url(), {
      method: 'POST',
      headers: { ...headers, ...cacheControl({ bypass: true }) },
      body: JSON.stringify({ ...JSON.parse(body('other')), stream: true }),
    });
    expect(getCacheInfo(bypassed)).toEqual({ hit: false, status: 'bypass' });
    await bypassed.text();
    await cache.flush();
    expect(stored(layer)).toHaveLength(1);
    expect(server.count()).toBe(2);
  });
});

describe('withCachingFetch', () => {
  class Client {
    constructor(readonly fetch: FetchLike = globalThis.fetch as FetchLike) {}
    withOptions(o: { fetch: FetchLike }) {
      return new Client(o.fetch);
    }
  }

  it('returns a copy whose fetch caches; the original is left alone; counts are read off the copy', async () => {
    const { cache } = memoryCache();
    const original = new Client();
    const copy = withCachingFetch(original, { cache }, SPEC);
    expect(copy).not.toBe(original);
    expect(original.fetch).toBe(globalThis.fetch);
    for (let i = 0; i < 2; i++) {
      await copy.fetch(url(), { method: 'POST', headers, body: body('copy') });
      await cache.flush();
    }
    expect(server.count()).toBe(1);
    await copy.fetch(url(), { method: 'POST', body: new URLSearchParams() });
    expect(uncachedRequests(copy)).toEqual({ 'body-form': 1 });
    expect(uncachedRequests(original)).toEqual({});
  });

  it('refuses a client that would keep sending its requests through a fetch of its own', () => {
    const { cache } = memoryCache();
    const own = (async () => new Response('{}')) as FetchLike;
    const stubborn = { fetch: own, withOptions: () => ({ fetch: own }) };
    expect(() => withCachingFetch(stubborn, { cache }, SPEC)).toThrow(/sends its requests through a fetch of its own/);
  });

  it('validates the client and every option, naming the package and the option', () => {
    const { cache } = memoryCache();
    expect(() => withCachingFetch({}, { cache }, SPEC)).toThrow(/@strata-cache\/test: withCache needs a client instance \(new Client\(\)\)/);
    const bad: Array<[object, RegExp]> = [
      [{}, /option "cache"/],
      [{ cache, ttl: 5 }, /unknown option "ttl" \(known: cache, scope, replay, ttlMs, tags, reasoningModels/],
      [{ cache, ttlMs: 0 }, /option "ttlMs"/],
      [{ cache, ttlMs: Number.POSITIVE_INFINITY }, /option "ttlMs"/],
      [{ cache, scope: 5 }, /option "scope"/],
      [{ cache, tags: 'a' }, /option "tags"/],
      [{ cache, reasoningModels: [''] }, /option "reasoningModels"/],
      [{ cache, replay: { pacing: 'fast' } }, /replay.pacing/],
      [{ cache, replay: { maxGapMs: -1 } }, /replay.maxGapMs/],
      [{ cache, replay: { rebuildStreams: 'yes' } }, /replay.rebuildStreams/],
    ];
    for (const [options, message] of bad) {
      expect(() => withCachingFetch(new Client(), options as CachingOptions, SPEC)).toThrow(InvalidOptionError);
      expect(() => withCachingFetch(new Client(), options as CachingOptions, SPEC)).toThrow(message);
    }
  });

  it('createCachedClient: a caching copy of the client given, or of a new one from clientOptions; never both, no unknown option', async () => {
    const { cache } = memoryCache();
    const made: unknown[] = [];
    const newClient = (o: { tag: string } | undefined) => (made.push(o), new Client());
    const given = new Client();
    const fromClient = createCachedClient(SPEC, { cache, client: given }, 'createCachedTest', newClient);
    expect(fromClient).toBeInstanceOf(Client);
    expect(fromClient).not.toBe(given);
    expect(made).toEqual([]);
    const fromOptions = createCachedClient(SPEC, { cache, clientOptions: { tag: 'a' } }, 'createCachedTest', newClient);
    expect(made).toEqual([{ tag: 'a' }]);
    for (let i = 0; i < 2; i++) {
      await fromOptions.fetch(url(), { method: 'POST', headers, body: body('created') });
      await cache.flush();
    }
    expect(server.count()).toBe(1);
    expect(() => createCachedClient(SPEC, { cache, client: given, clientOptions: { tag: 'b' } }, 'createCachedTest', newClient)).toThrow(
      /@strata-cache\/test: pass either "client" or "clientOptions", not both/,
    );
    expect(() => createCachedClient(SPEC, { cache, clinet: given } as never, 'createCachedTest', newClient)).toThrow(
      /unknown option "clinet" \(known: .*, client, clientOptions\)/,
    );
    expect(made).toEqual([{ tag: 'a' }]);
  });

  it('createProviderCachingFetch: the caching fetch in front of the fetch given', async () => {
    const { cache } = memoryCache();
    let upstreamCalls = 0;
    const upstream = ((input: string | URL | Request, init?: RequestInit) => (upstreamCalls++, globalThis.fetch(input, init))) as FetchLike;
    const fetch = createProviderCachingFetch(SPEC, { cache, fetch: upstream });
    for (let i = 0; i < 2; i++) {
      await fetch(url(), { method: 'POST', headers, body: body('own fetch') });
      await cache.flush();
    }
    expect(upstreamCalls).toBe(1);
    expect(() => createProviderCachingFetch(SPEC, { cache, ttl: 5 } as never)).toThrow(/unknown option "ttl"/);
  });
});

describe('describeRequest', () => {
  it('gives the key a call would have, without calling the provider or the cache', async () => {
    const { fetch, cache } = setup({ scope: { tenant: 'acme' } });
    const init = { method: 'POST', headers: { ...headers, 'openai-beta': 'x', ...cacheControl({ ttlMs: 5000 }) }, body: body('describe me') };
    const d = await describeRequest(fetch, url(), init);
    expect(d.cached).toBe(true);
    if (!d.cached) throw new Error('unreachable');
    expect(d.keyRequest['strata_http']).toEqual({ endpoint: url(), mode: 'json', headers: { 'openai-beta': 'x' } });
    expect(d.options).toMatchObject({ scope: { tenant: 'acme' }, ttlMs: 5000 });
    expect(server.requests).toHaveLength(0);
    expect(cache.stats().requests).toBe(0);
    // The key it describes is the key the call then uses.
    const res = await fetch(url(), init);
    await res.json();
    await cache.flush();
    expect(getCacheInfo(await fetch(url(), init))?.key).toBe(cache.keyFor(d.keyRequest, { scope: d.options.scope, profile: d.options.profile }).hash);
  });

  it('says why a request would pass through, and refuses what is not a caching fetch', async () => {
    const { fetch } = setup();
    await expect(describeRequest(fetch, url(), { method: 'POST', headers, body: 'not json' })).resolves.toEqual({ cached: false, reason: 'body-not-json' });
    await expect(describeRequest(fetch, url(), { method: 'GET' })).resolves.toEqual({ cached: false });
    await expect(describeRequest(globalThis.fetch, url())).rejects.toBeInstanceOf(InvalidOptionError);
  });
});

describe('a request seen before', () => {
  // Byte-identical requests reuse what was built from the first (key request, fingerprint): the
  // answer must be exactly what building it afresh gives — per scope, key header, control header.
  const KEYED: ProviderSpec<any> = { ...SPEC, keyHeaders: ['x-version', 'x-beta'] };
  const keptSetup = (options: Partial<CachingOptions> = {}) => {
    const s = setup(options, KEYED);
    const seen: unknown[] = [];
    const getOrLoad = s.cache.getOrLoad.bind(s.cache);
    s.cache.getOrLoad = ((request: unknown, ...rest: unknown[]) => {
      seen.push(request);
      return (getOrLoad as (...a: unknown[]) => unknown)(request, ...rest);
    }) as typeof s.cache.getOrLoad;
    return { ...s, seen };
  };
  const text = JSON.stringify({ model: 'gpt-4o-mini', temperature: 0, messages: [{ role: 'user', content: 'What is the refund window?' }] });
  const post = (fetch: FetchLike, h: Record<string, string> = {}) => fetch(url(), { method: 'POST', headers: { ...headers, ...h }, body: text });

  it('is kept from its second sight: the first is keyed as built, every later one from one sealed key request, the same entry', async () => {
    const { fetch, cache, seen } = keptSetup();
    expect(getCacheInfo(await post(fetch))?.hit).toBe(false);
    await cache.flush();
    for (let i = 0; i < 4; i++) expect(getCacheInfo(await post(fetch))?.hit).toBe(true);
    // The first sight is not sealed (nothing of it is kept); the second builds the kept parts, the rest reuse them.
    expect(Object.isFrozen(seen[0])).toBe(false);
    expect(new Set(seen.slice(1)).size).toBe(1);
    const kept = seen[1] as { messages: unknown[] };
    expect(kept).not.toBe(seen[0]);
    expect(kept).toEqual(seen[0]);
    expect(Object.isFrozen(kept)).toBe(true);
    expect(Object.isFrozen(kept.messages[0])).toBe(true);
    expect(server.count('/chat/completions')).toBe(1);
  });

  it('a scope function still decides per call: the same body for two tenants is two entries', async () => {
    let tenant = 'acme';
    const { fetch, cache } = keptSetup({ scope: ({ body }) => ({ tenant: `${tenant}-${(body as { model: string }).model}` }) });
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
    const { fetch, cache } = keptSetup();
    const variants = [{}, { 'x-version': 'ab', 'x-beta': 'c' }, { 'x-version': 'a', 'x-beta': 'bc' }, { 'x-version': 'abc' }, { 'x-beta': 'abc' }];
    for (const h of variants) {
      expect(getCacheInfo(await post(fetch, h))?.hit).toBe(false);
      await cache.flush();
    }
    for (const h of variants) expect(getCacheInfo(await post(fetch, h))?.hit).toBe(true);
    expect(server.count('/chat/completions')).toBe(variants.length);
  });

  it("control headers stay the call's own", async () => {
    const { fetch, cache } = keptSetup();
    await post(fetch);
    await cache.flush();
    expect(getCacheInfo(await post(fetch, cacheControl({ bypass: true })))?.status).toBe('bypass');
    expect(getCacheInfo(await post(fetch, cacheControl({ tenant: 'other' })))?.hit).toBe(false);
    expect(getCacheInfo(await post(fetch))?.hit).toBe(true);
  });

  it("a caller's parsed body is never frozen (the kept parts get a parse of their own)", async () => {
    const { fetch } = keptSetup();
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

  it('keeps at most the budget of entries and characters (three per body character, plus URL and headers), dropping the oldest; a body over 64 Ki characters is not kept', () => {
    const kept = new KeptRequests(new KeptBudget(3, 3040));
    const ids = ['a', 'bb', 'cc', 'dd'].map((b) => kept.idOf(config, read(b))!);
    ids.forEach((id, i) => kept.keep(id, parts(i)));
    expect(kept.size).toBe(3);
    expect(kept.get(ids[0]!)).toBeUndefined();
    expect(kept.get(ids[3]!)).toEqual({ n: 3 });
    // Same text, another URL: another request.
    expect(kept.get(kept.idOf(config, read('dd', 'http://y/v1/chat/completions'))!)).toBeUndefined();
    // 999 characters weigh 3 × 999 + 28 (the URL): the three others go.
    const big = kept.idOf(config, read('x'.repeat(999)))!;
    kept.keep(big, parts(9));
    expect(kept.size).toBe(1);
    expect(kept.get(big)).toEqual({ n: 9 });
    expect(kept.idOf(config, read('x'.repeat(64 * 1024 + 1)))).toBeUndefined();
  });

  it('a body noted once weighs its text and holds nothing; kept, it weighs three times its text and is the newest', () => {
    // 3,040 characters: the URL (28) and 999 characters kept (3,025) fit; noted bodies weigh 28 + their length.
    const budget = new KeptBudget(100, 3040);
    const kept = new KeptRequests(budget);
    const first = kept.idOf(config, read('x'.repeat(999)))!;
    const other = kept.idOf(config, read('y'.repeat(999)))!;
    kept.note(first);
    kept.note(other);
    expect(kept.find(first)).toBe(SEEN_ONCE);
    expect(kept.get(first)).toBeUndefined();
    expect(kept.size).toBe(2);
    // Noting again changes nothing; keeping the first makes it heavy and newest: the other goes.
    kept.note(first);
    kept.keep(first, parts(1));
    expect(kept.find(first)).toEqual({ n: 1 });
    expect(kept.find(other)).toBeUndefined();
    expect(kept.size).toBe(1);
    expect(budget.entries).toBe(1);
    // A kept body is not replaced by another keep.
    kept.keep(first, parts(2));
    expect(kept.get(first)).toEqual({ n: 1 });
  });

  it('finds a body only by its whole text: bodies with the same UTF-8 bytes or the same length are other requests, short or long', () => {
    const kept = new KeptRequests(new KeptBudget(100, 10_000_000));
    // A lone surrogate and U+FFFD encode to the same UTF-8 bytes (hence the same SHA-256).
    const [lone, replaced] = ['{"q":"\ud800"}', '{"q":"\ufffd"}'];
    kept.keep(kept.idOf(config, read(lone))!, parts(1));
    expect(kept.get(kept.idOf(config, read(replaced))!)).toBeUndefined();
    kept.keep(kept.idOf(config, read(replaced))!, parts(2));
    expect(kept.get(kept.idOf(config, read(lone))!)).toEqual({ n: 1 });
    expect(kept.get(kept.idOf(config, read(replaced))!)).toEqual({ n: 2 });
    // Short and long bodies that differ in their last character only.
    for (const length of [16_382, 16_383, 16_384, 40_000]) {
      const a = 'a'.repeat(length - 1);
      kept.keep(kept.idOf(config, read(`${a}x`))!, parts(length));
      expect(kept.get(kept.idOf(config, read(`${a}x`))!)).toEqual({ n: length });
      expect(kept.get(kept.idOf(config, read(`${a}y`))!)).toBeUndefined();
      kept.keep(kept.idOf(config, read(`${a}y`))!, parts(-length));
      expect(kept.get(kept.idOf(config, read(`${a}y`))!)).toEqual({ n: -length });
      expect(kept.get(kept.idOf(config, read(`${a}x`))!)).toEqual({ n: length });
    }
    expect(kept.size).toBe(10);
  });

  it('bodies that share a lookup key (same length, same sampled characters) are told apart by their whole text; a key holds at most a few', () => {
    const kept = new KeptRequests(new KeptBudget(100, 10_000_000));
    const base = `{"messages":[{"role":"system","content":"${'You answer questions about orders. '.repeat(40)}"},{"role":"user","content":"Where is my order?"}]}`;
    // A position between the samples: changing it keeps the lookup key.
    let at = -1;
    for (let p = 100; p < base.length - 40 && at < 0; p++) {
      if (lookupKey(`${base.slice(0, p)}#${base.slice(p + 1)}`) === lookupKey(base)) at = p;
    }
    expect(at).toBeGreaterThan(0);
    const variants = Array.from({ length: MAX_SAME_LOOKUP + 3 }, (_, i) => `${base.slice(0, at)}${String.fromCharCode(65 + i)}${base.slice(at + 1)}`);
    expect(new Set(variants.map(lookupKey)).size).toBe(1);
    variants.forEach((v, i) => kept.keep(kept.idOf(config, read(v))!, parts(i)));
    // The first MAX_SAME_LOOKUP are kept and each finds its own parts; the rest are not kept.
    variants.forEach((v, i) => expect(kept.get(kept.idOf(config, read(v))!)).toEqual(i < MAX_SAME_LOOKUP ? { n: i } : undefined));
    expect(kept.size).toBe(MAX_SAME_LOOKUP);
    // A body with the same samples that was never kept finds nothing.
    expect(kept.get(kept.idOf(config, read(`${base.slice(0, at)}~${base.slice(at + 1)}`))!)).toBeUndefined();
  });

  it("tables share the process's budget, never their entries", () => {
    const budget = new KeptBudget(4, 1_000_000);
    const [acme, globex] = [new KeptRequests(budget), new KeptRequests(budget)];
    const id = acme.idOf(config, read('same body'))!;
    acme.keep(id, parts(1));
    expect(globex.get(id)).toBeUndefined();
    for (const b of ['b1', 'b2', 'b3', 'b4']) globex.keep(globex.idOf(config, read(b))!, parts(2));
    // globex's entries pushed acme's oldest out of the shared budget.
    expect(acme.get(id)).toBeUndefined();
    expect(budget.entries).toBe(4);
  });
});

describe('hit ids', () => {
  it("encode the age part as Buffer's base64url does", async () => {
    const { asciiBase64url } = await import('../src/hit-info.js');
    const ages = [...Array.from({ length: 3000 }, (_, i) => String(i)), '12345678', '9007199254740991', 'null'];
    for (const age of ages) {
      const s = `"a":${age}}`;
      expect(asciiBase64url(s)).toBe(Buffer.from(s).toString('base64url'));
    }
    for (const s of ['', 'a', 'ab', 'abc', 'abcd', '~~~', '\u007f']) expect(asciiBase64url(s)).toBe(Buffer.from(s).toString('base64url'));
  });

  it('read back exactly, for any layer name and age, exact and semantic', async () => {
    const { computeKey, resolveScope } = await import('@strata-cache/core');
    const { encodeHitId } = await import('../src/hit-info.js');
    const key = computeKey({ q: 'x' }, resolveScope('t'));
    for (const layer of ['l1', 'l2', 'memory', 'é', '日本', 'a"b\\c', '']) {
      for (const ageMs of [0, 7, 26.4, 12_345_678, Number.NaN]) {
        for (const similarity of [undefined, 0.9123]) {
          const id = encodeHitId({ key, layer, ageMs, ...(similarity !== undefined ? { similarity } : {}) });
          expect(getCacheInfo(new Headers({ 'x-strata-cache': 'hit', 'x-request-id': id }))).toEqual({
            hit: true,
            status: 'hit',
            layer,
            ...(Number.isNaN(ageMs) ? {} : { ageMs: Math.round(ageMs) }),
            key: key.hash,
            ...(similarity !== undefined ? { similarity } : {}),
          });
        }
      }
    }
  });
});
