// Identical concurrent streamed requests share one upstream stream (core's begin()): what every
// caller receives when the stream completes, fails, is cut, or when callers leave.
import {
  type ProviderServer,
  chatCompletionChunks,
  httpError,
  memoryCache,
  openAIError,
  sse,
  startOpenAIServer,
  stored,
} from '@strata-cache/provider-test-servers';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type EndpointSpec, type FetchLike, SseParser, createProviderFetch, getCacheInfo } from '../src/index.js';
import { chatEndpoint, testSpec } from './spec.js';

let server: ProviderServer;
beforeAll(async () => {
  server = await startOpenAIServer({ latencyMs: 30, intervalMs: 10 });
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => server.reset());

const chat = chatEndpoint((events) => ({ value: events.map((e) => e.data).join('') }));
const SPEC = testSpec(chat);

/** The caching fetch over a fetch that remembers the signal of every upstream call. */
function setup() {
  const { cache, layer } = memoryCache();
  const signals: AbortSignal[] = [];
  const upstream: FetchLike = (input, init) => {
    if (init?.signal) signals.push(init.signal);
    return globalThis.fetch(input, init);
  };
  return { cache, layer, signals, fetch: createProviderFetch({ cache }, SPEC, upstream) };
}

const request = (content: string, signal?: AbortSignal): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ model: 'gpt-4o-mini', temperature: 0, stream: true, messages: [{ role: 'user', content }] }),
  ...(signal ? { signal } : {}),
});
const url = () => `${server.baseURL}/chat/completions`;
const chunks = (content: string) => chatCompletionChunks({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }] }, 0);

/** Every event of a response body, or what reading it threw; `stopAfter` events it cancels, `onEvent` sees each. */
async function events(res: Response, stopAfter = Infinity, onEvent?: (n: number) => void): Promise<{ data: string[]; error?: unknown }> {
  const parser = new SseParser();
  const reader = res.body!.getReader();
  const data: string[] = [];
  try {
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      for (const e of parser.push(r.value, 0)) {
        data.push(e.data);
        onEvent?.(data.length);
      }
      if (data.length >= stopAfter) {
        await reader.cancel();
        break;
      }
    }
  } catch (error) {
    return { data, error };
  }
  return { data };
}

const until = async (check: () => boolean, ms = 2000) => {
  const end = Date.now() + ms;
  while (!check() && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
};

describe('identical concurrent streams share one upstream stream', () => {
  it('one upstream call; every caller gets the same events; one entry; the next request replays it', async () => {
    const { fetch, cache, layer } = setup();
    const responses = await Promise.all(Array.from({ length: 6 }, () => fetch(url(), request('share me'))));
    const got = await Promise.all(responses.map((r) => events(r)));
    expect(server.count('/chat/completions')).toBe(1);
    expect(got[0]!.data.at(-1)).toBe('[DONE]');
    for (const g of got) expect(g).toEqual(got[0]);
    expect(responses.map((r) => getCacheInfo(r)?.status)).toEqual(Array(6).fill('miss'));
    await cache.flush();
    expect(stored(layer)).toHaveLength(1);
    const hit = await fetch(url(), request('share me'));
    expect(getCacheInfo(hit)?.hit).toBe(true);
    expect(await events(hit)).toEqual(got[0]);
    expect(cache.stats().coalesced).toBe(5);
  });

  it('the leading caller leaves mid-stream: the others still get the whole stream, and it is stored', async () => {
    const { fetch, cache, layer, signals } = setup();
    const ac = new AbortController();
    const leader = await fetch(url(), request('leader leaves', ac.signal));
    const others = Array.from({ length: 3 }, () => fetch(url(), request('leader leaves')));
    const first = events(leader, 2).then((r) => (ac.abort(), r));
    const got = await Promise.all((await Promise.all(others)).map((r) => events(r)));
    expect((await first).data).toHaveLength(2);
    expect(server.count('/chat/completions')).toBe(1);
    expect(signals[0]!.aborted).toBe(false);
    for (const g of got) {
      expect(g.error).toBeUndefined();
      expect(g.data.at(-1)).toBe('[DONE]');
    }
    await cache.flush();
    expect(stored(layer)).toHaveLength(1);
  });

  it('a caller that aborts while following gets an AbortError at once; the rest are unaffected', async () => {
    const { fetch } = setup();
    const ac = new AbortController();
    const [a, b] = await Promise.all([fetch(url(), request('one follower leaves')), fetch(url(), request('one follower leaves', ac.signal))]);
    const left = await events(b!, Infinity, (n) => n === 1 && ac.abort());
    expect((left.error as Error).name).toBe('AbortError');
    expect((await events(a!)).data.at(-1)).toBe('[DONE]');
  });

  it('when every caller left, the upstream stream is cancelled and nothing is stored', async () => {
    const { fetch, cache, layer, signals } = setup();
    const responses = await Promise.all(Array.from({ length: 3 }, () => fetch(url(), request('everybody leaves'))));
    await Promise.all(responses.map((r) => events(r, 2)));
    await until(() => signals[0]?.aborted === true);
    expect(signals[0]!.aborted).toBe(true);
    await cache.flush();
    expect(stored(layer)).toHaveLength(0);
    expect(server.count('/chat/completions')).toBe(1);
  });

  it('a request made right after the only reader aborted is not handed the stream it left: it goes upstream', async () => {
    const { fetch, cache, layer } = setup();
    const ac = new AbortController();
    const leader = await fetch(url(), request('left behind', ac.signal));
    const reader = leader.body!.getReader();
    await reader.read();
    ac.abort();
    const next = await fetch(url(), request('left behind'));
    const got = await events(next);
    expect(got.error).toBeUndefined();
    expect(got.data.at(-1)).toBe('[DONE]');
    expect(server.count('/chat/completions')).toBe(2);
    await cache.flush();
    expect(stored(layer)).toHaveLength(1);
  });

  it('an endpoint that fails to judge a recording cut by its only reader leaving: the load is settled all the same', async () => {
    const { cache, layer } = memoryCache();
    const judge: EndpointSpec = {
      ...chat,
      complete: () => {
        throw new Error('cannot judge');
      },
    };
    const fetch = createProviderFetch({ cache }, { ...SPEC, endpoints: () => [judge] }, globalThis.fetch as FetchLike);
    const ac = new AbortController();
    const leader = await fetch(url(), request('judge me', ac.signal));
    await leader.body!.getReader().read();
    ac.abort();
    const next = await fetch(url(), request('judge me'));
    const got = await events(next);
    expect(got.error).toBeUndefined();
    expect(got.data.at(-1)).toBe('[DONE]');
    expect(server.count('/chat/completions')).toBe(2);
    await cache.flush();
    expect(stored(layer)).toHaveLength(0);
  });

  it('an error status reaches every identical caller as sent, from one upstream call, and is not stored', async () => {
    const { fetch, cache, layer } = setup();
    server.enqueue(httpError(429, openAIError('slow down', 'rate_limit_error'), { 'retry-after': '1' }));
    const responses = await Promise.all(Array.from({ length: 4 }, () => fetch(url(), request('rate limited'))));
    expect(server.count('/chat/completions')).toBe(1);
    for (const r of responses) {
      expect(r.status).toBe(429);
      expect(r.headers.get('retry-after')).toBe('1');
      expect(await r.json()).toEqual(openAIError('slow down', 'rate_limit_error'));
    }
    await cache.flush();
    expect(stored(layer)).toHaveLength(0);
  });

  it('a stream cut mid-way fails for every caller at the same event; nothing is stored', async () => {
    const { fetch, cache, layer } = setup();
    server.enqueue(sse(chunks('cut me'), { intervalMs: 10, cutAfter: { events: 3, how: 'destroy' } }));
    const got = await Promise.all((await Promise.all(Array.from({ length: 3 }, () => fetch(url(), request('cut me'))))).map((r) => events(r)));
    for (const g of got) {
      expect(g.error).toBeDefined();
      expect(g.data).toEqual(got[0]!.data);
    }
    expect(got[0]!.data).toHaveLength(3);
    await cache.flush();
    expect(stored(layer)).toHaveLength(0);
    expect(server.count('/chat/completions')).toBe(1);
  });

  it('a stream that ends early ends there for every caller; nothing is stored', async () => {
    const { fetch, cache, layer } = setup();
    server.enqueue(sse(chunks('end early'), { intervalMs: 10, cutAfter: { events: 3, how: 'end' } }));
    const got = await Promise.all((await Promise.all(Array.from({ length: 3 }, () => fetch(url(), request('end early'))))).map((r) => events(r)));
    for (const g of got) expect(g).toEqual({ data: got[0]!.data });
    expect(got[0]!.data).toHaveLength(3);
    await cache.flush();
    expect(stored(layer)).toHaveLength(0);
  });

  it('a leading stream that breaks before its first event: the callers that waited load again', async () => {
    const { fetch, cache, layer } = setup();
    server.enqueue(sse(chunks('again'), { cutAfter: { events: 0, how: 'destroy' } }));
    const responses = await Promise.all(Array.from({ length: 3 }, () => fetch(url(), request('again'))));
    const got = await Promise.all(responses.map((r) => events(r)));
    expect(got.filter((g) => g.error !== undefined)).toHaveLength(1); // the caller whose stream broke
    const whole = got.filter((g) => g.error === undefined);
    expect(whole).toHaveLength(2);
    for (const g of whole) expect(g.data.at(-1)).toBe('[DONE]');
    expect(server.count('/chat/completions')).toBe(2);
    await cache.flush();
    expect(stored(layer)).toHaveLength(1);
  });
});

describe('streams the cache is not consulted for', () => {
  it('a stream the policy declines says bypass, is not shared and not stored', async () => {
    const { cache, layer } = memoryCache({ policy: 'deterministic', warnOnPolicySkip: false });
    const fetch = createProviderFetch({ cache }, SPEC, globalThis.fetch as FetchLike);
    const body = (s: RequestInit) => ({ ...s, body: JSON.stringify({ ...JSON.parse(s.body as string), temperature: 1 }) });
    const responses = await Promise.all([fetch(url(), body(request('warm'))), fetch(url(), body(request('warm')))]);
    expect(responses.map((r) => getCacheInfo(r)?.status)).toEqual(['bypass', 'bypass']);
    await Promise.all(responses.map((r) => events(r)));
    expect(server.count('/chat/completions')).toBe(2);
    await cache.flush();
    expect(stored(layer)).toHaveLength(0);
  });
});
